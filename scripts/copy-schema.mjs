// Placeholder until the policy schema lands: copies schema/policy.schema.json into dist/.
import { copyFileSync, existsSync } from 'node:fs';
if (existsSync('schema/policy.schema.json')) copyFileSync('schema/policy.schema.json', 'dist/policy.schema.json');
