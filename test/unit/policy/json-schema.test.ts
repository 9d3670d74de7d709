import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { policySchema } from '../../../src/policy/json-schema.ts';
import { buildJsonSchema } from '../../../src/policy/schema.ts';
import { policyIssues } from '../../../src/policy/validate.ts';

interface Case {
  name: string;
  valid: boolean;
  jsonSchema?: 'accepts';
  doc: unknown;
}

const cases = parse(readFileSync(new URL('../../fixtures/policy/cases.yaml', import.meta.url), 'utf8')) as Case[];
const committed = JSON.parse(readFileSync(new URL('../../../src/policy/policy.schema.json', import.meta.url), 'utf8'));

// strictRequired off: `oneOf: [{ required: [header] }, …]` names properties declared one level up, standard JSON Schema.
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
// Our annotation keywords; unknown keywords are errors in ajv's strict mode.
ajv.addKeyword('x-inmesh-maps');
ajv.addKeyword('x-inmesh-unit');
const validate = ajv.compile(committed);

describe('JSON Schema artefact', () => {
  it('is draft 2020-12 and the committed file is current (run npm run docs:policy otherwise)', () => {
    expect(committed.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(committed).toEqual(buildJsonSchema());
  });

  it('is what the package exports as policySchema, frozen', () => {
    expect(policySchema).toEqual(committed);
    expect(Object.isFrozen(policySchema)).toBe(true);
  });

  it('has a sizeable fixture table with both outcomes', () => {
    expect(cases.filter((c) => c.valid).length).toBeGreaterThanOrEqual(3);
    expect(cases.filter((c) => !c.valid && c.jsonSchema === undefined).length).toBeGreaterThanOrEqual(15);
  });
});

describe('JSON Schema and validator agree on the fixtures', () => {
  for (const c of cases) {
    it(`${c.valid ? 'accepts' : 'rejects'}: ${c.name}`, () => {
      const issues = policyIssues(c.doc);
      expect(issues.length === 0, JSON.stringify(issues)).toBe(c.valid);
      const schemaAccepts = validate(c.doc);
      if (c.jsonSchema === 'accepts') expect(schemaAccepts, 'a validator-only rule: JSON Schema cannot express it').toBe(true);
      else expect(schemaAccepts, JSON.stringify(validate.errors)).toBe(c.valid);
    });
  }
});
