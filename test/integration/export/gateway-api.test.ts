/**
 * Gateway API export: golden file for the policy that sets every field, every
 * HTTPRoute checked against the HTTPRoute CRD (experimental channel) strictly,
 * CEL rules included (test/harness/crd-validate.ts), and each value whose zero
 * or format means something else in Gateway API.
 *
 * Regenerate the golden files with `UPDATE_GOLDEN=1 npx vitest run test/integration/export/gateway-api.test.ts`.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readPolicyFile } from '../../../src/config/index.ts';
import { ExportError } from '../../../src/errors.ts';
import { retryCodes } from '../../../src/export/gateway-api.ts';
import { exportPolicy, type ExportResult } from '../../../src/export/index.ts';
import { parsePolicy, resolvePolicy } from '../../../src/policy/index.ts';
import { validateCrdObject } from '../../harness/crd-validate.ts';
import { exportOutputs, expectGolden } from './golden.ts';

const FIXTURES = join(import.meta.dirname, '../../fixtures/export');
const GOLDEN = join(FIXTURES, 'gateway-api');
const CRD = join(import.meta.dirname, '../../fixtures/gateway-api-crds/httproutes.yaml');
const GEP_2257 = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;

const fullPolicy = () => resolvePolicy(parsePolicy(readPolicyFile(join(FIXTURES, 'full-policy.yaml')), 'full-policy.yaml'), 'full-policy.yaml');
const resolve = (upstreams: Record<string, unknown>) => resolvePolicy(parsePolicy({ apiVersion: 'inmesh/v1', upstreams }, 'test'), 'test');
const exportGw = (upstreams: Record<string, unknown>): ExportResult => exportPolicy('gateway-api', [{ source: 'test.yaml', policy: resolve(upstreams) }]);

type Json = Record<string, any>;
const routeOf = (r: ExportResult, name: string): Json => (r.files[0]!.documents as Json[]).find((d) => d.metadata.name === name)!;
const rules = (r: ExportResult, name: string): Json[] => routeOf(r, name).spec.rules;
const entry = (r: ExportResult, field: string) => r.report.fields.find((f) => f.field === field)!;

function expectValid(r: ExportResult): void {
  for (const doc of r.files[0]!.documents) expect(validateCrdObject(CRD, doc), (doc as Json).metadata.name).toEqual([]);
}

function durations(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => durations(v, out));
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (['request', 'backendRequest', 'backoff'].includes(k) && typeof v === 'string') out.push(v);
      else durations(v, out);
    }
  }
  return out;
}

describe('gateway-api export of the full policy', () => {
  const result = exportPolicy('gateway-api', [{ source: 'full-policy.yaml', policy: fullPolicy() }]);

  it('matches the golden files byte for byte', () => {
    expectGolden(GOLDEN, exportOutputs(result.files, result.report), 'test/integration/export/gateway-api.test.ts');
  });

  it('passes the HTTPRoute CRD: strict schema and CEL rules', () => {
    expect(result.files[0]!.documents).toHaveLength(5);
    expectValid(result);
  });

  it('reports every field explicitly and states the scope', () => {
    expect(result.report.fields.filter((f) => f.why?.includes('does not map this field') === true).map((f) => f.field)).toEqual([]);
    expect(result.report.files[0]!.scope).toMatch(/every caller of each Service/);
    expect(entry(result, 'upstreams.orders.retries.budget.percent').why).toMatch(/XBackendTrafficPolicy/);
  });

  it('writes only GEP-2257 durations', () => {
    const all = durations(result.files[0]!.documents);
    expect(all.length).toBeGreaterThan(10);
    for (const d of all) expect(d).toMatch(GEP_2257);
  });
});

describe('gateway-api export: zero values and durations', () => {
  it('writes a zero request timeout and perTry as "0s" (disabled), never a bare 0', () => {
    const r = exportGw({ a: { timeouts: { request: '0s', perTry: '0s' } } });
    expect(rules(r, 'a')[0]!.timeouts).toEqual({ request: '0s', backendRequest: '0s' });
    expectValid(r);
  });

  it('writes 1500 ms as 1s500ms, not 1.5s', () => {
    const r = exportGw({ a: { timeouts: { request: '1500ms', perTry: '250ms' }, retries: { backoff: { base: '1500ms', max: '3s' } } } });
    expect(rules(r, 'a')[0]!.timeouts).toEqual({ request: '1s500ms', backendRequest: '250ms' });
    expect(rules(r, 'a')[0]!.retry.backoff).toBe('1s500ms');
    expectValid(r);
  });

  it('cannot say "no retries" (attempts minimum 1): writes no retry stanza and reports it lossy', () => {
    const r = exportGw({ a: { retries: { attempts: 0 } } });
    expect(rules(r, 'a')[0]).not.toHaveProperty('retry');
    expect(entry(r, 'upstreams.a.retries.attempts')).toMatchObject({ verdict: 'lossy' });
    expect(entry(r, 'upstreams.a.retries.attempts').why).toMatch(/at least 1/);
    // What writing it would do: the CRD refuses attempts 0.
    const bad = structuredClone(routeOf(r, 'a'));
    bad.spec.rules[0].retry = { attempts: 0 };
    expect(validateCrdObject(CRD, bad).join('\n')).toMatch(/retry\.attempts/);
  });

  it('writes a per-try timeout equal to the request timeout, the most the CRD\'s CEL rule allows (the model refuses more)', () => {
    const r = exportGw({ a: { timeouts: { request: '1s', perTry: '1s' } } });
    expect(rules(r, 'a')[0]!.timeouts).toEqual({ request: '1s', backendRequest: '1s' });
    expectValid(r);
    const bad = structuredClone(routeOf(r, 'a'));
    bad.spec.rules[0].timeouts.backendRequest = '1s1ms';
    expect(validateCrdObject(CRD, bad).join('\n')).toMatch(/backendRequest timeout cannot be longer than request timeout/);
  });
});

describe('gateway-api export: matches', () => {
  const r = exportGw({
    a: {
      routes: [
        {
          name: 'm',
          match: {
            methods: ['GET', 'PUT'],
            pathPrefix: '/v1.0/',
            headers: [
              { name: 'x-p', prefix: 'a.b' },
              { name: 'x-on', present: true },
              { name: 'x-off', present: false },
            ],
          },
        },
      ],
    },
  });

  it('writes one match per method, a prefix as an escaped regular expression, presence as .*, and drops absence', () => {
    const matches = rules(r, 'a')[0]!.matches;
    expect(matches.map((m: Json) => m.method)).toEqual(['GET', 'PUT']);
    expect(matches[0].headers).toEqual([
      { type: 'RegularExpression', name: 'x-p', value: 'a\\.b.*' },
      { type: 'RegularExpression', name: 'x-on', value: '.*' },
    ]);
    expect(entry(r, 'upstreams.a.routes.0.match.headers.2.present')).toMatchObject({ verdict: 'dropped' });
    expect(entry(r, 'upstreams.a.routes.0.match.pathPrefix')).toMatchObject({ verdict: 'lossy' });
    expectValid(r);
  });

  it('reports a route that Gateway API precedence would put before an earlier overlapping one', () => {
    const p = exportGw({ a: { routes: [{ name: 'wide', match: { pathPrefix: '/api' } }, { name: 'narrow', match: { path: '/api/x' } }] } });
    expect(entry(p, 'upstreams.a.routes.1.name')).toMatchObject({ verdict: 'lossy' });
    expect(entry(p, 'upstreams.a.routes.1.name').why).toMatch(/wins over wide/);
    expect(entry(p, 'upstreams.a.routes.0.name')).toMatchObject({ verdict: 'exact' });
  });

  it('refuses more routes than HTTPRoute has rules for', () => {
    const many = Array.from({ length: 16 }, (_, i) => ({ name: `r${i}`, match: { path: `/${i}` } }));
    expect(() => exportGw({ a: { routes: many } })).toThrow(ExportError);
    expect(() => exportGw({ a: { routes: many } })).toThrow(/at most 16 rules/);
  });
});

describe('gateway-api export: splits and retries', () => {
  it('writes a split as weighted backendRefs to one Service per subset', () => {
    const r = exportGw({ a: { subsets: { v1: { tags: ['v1'] }, v2: { tags: ['v2'] } }, split: [{ subset: 'v1', weight: 3 }, { subset: 'v2', weight: 1 }] } });
    expect(rules(r, 'a')[0]!.backendRefs).toEqual([
      { group: '', kind: 'Service', name: 'a-v1', port: 80, weight: 3 },
      { group: '', kind: 'Service', name: 'a-v2', port: 80, weight: 1 },
    ]);
    expect(entry(r, 'upstreams.a.split.0.subset').verdict).toBe('lossy');
    expectValid(r);
  });

  it('turns retry conditions into status codes, reporting what is lost', () => {
    expect(retryCodes(['gateway-error'], [])).toEqual({ codes: [502, 503, 504], lost: [] });
    const mixed = retryCodes(['reset', 'retriable-4xx', 'retriable-status-codes'], [503, 302]);
    expect(mixed.codes).toEqual([409, 503]);
    expect(mixed.lost.join('\n')).toMatch(/reset: HTTPRoute retry lists status codes only/);
    expect(mixed.lost.join('\n')).toMatch(/302 are outside/);
    expect(retryCodes(['5xx'], []).codes).toHaveLength(100);
  });
});
