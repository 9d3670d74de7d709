/**
 * The JSON Schema (draft 2020-12) of the policy document. It is generated from
 * the zod schema (schema.ts) by `npm run docs:policy` into
 * src/policy/policy.schema.json, which is committed, shipped as
 * `inmesh/schema.json`, and checked to be current by `npm run docs:check` and
 * a unit test. Imported rather than built at load time, so that importing the
 * library does not run the zod-to-JSON-Schema conversion.
 */
import schema from './policy.schema.json' with { type: 'json' };
import { deepFreeze } from '../internal/deep-freeze.ts';

export const policySchema: Readonly<Record<string, unknown>> = deepFreeze(schema as Record<string, unknown>);
