/**
 * The Istio exporter, checked by Istio's own CRDs (strict openAPIV3Schema and
 * CEL rules, test/harness/crd-validate.ts): golden files from the fixture that
 * sets every field, each zero/int32/duration edge case, the round trip through
 * the importer, and the CLI.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { runCli } from '../../../src/cli/index.ts';
import { readPolicyFile } from '../../../src/config/load.ts';
import { exportPolicy, renderFile, type ExportResult } from '../../../src/export/index.ts';
import { importIstio } from '../../../src/export/istio-import.ts';
import { percentWeights } from '../../../src/export/istio.ts';
import { parsePolicy, resolvePolicy } from '../../../src/policy/index.ts';
import type { ResolvedPolicy } from '../../../src/policy/types.ts';
import { validateCrdObject } from '../../harness/crd-validate.ts';
import { expectGolden } from './golden.ts';

const CRDS = 'test/fixtures/istio-crds/networking.istio.io.yaml';
const FIXTURE = 'test/fixtures/export/full-policy.yaml';
const GOLDEN = 'test/fixtures/export/istio';

const resolve = (doc: unknown, source = 'test policy'): ResolvedPolicy => resolvePolicy(parsePolicy(doc, source), source);
const fixture = (): ResolvedPolicy => resolve(readPolicyFile(FIXTURE), FIXTURE);

function exportDoc(doc: unknown, options: { service?: string; targetVersion?: string } = {}): ExportResult {
  return exportPolicy('istio', [{ source: 'test policy', policy: resolve(doc) }], options);
}

function problemsOf(result: ExportResult): string[] {
  return result.files.flatMap((f) => f.documents.flatMap((d) => validateCrdObject(CRDS, d).map((p) => `${f.name}: ${p}`)));
}

type Doc = Record<string, any>;
const docOf = (result: ExportResult, kind: string, upstream = 'svc'): Doc =>
  result.files.find((f) => f.name === `${upstream}.yaml`)?.documents.find((d) => (d as Doc)['kind'] === kind) as Doc;
const entry = (result: ExportResult, field: string) => result.report.fields.find((e) => e.field === field);

const tmp = mkdtempSync(join(tmpdir(), 'inmesh-istio-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('istio export of the full fixture', () => {
  const result = exportPolicy('istio', [{ source: FIXTURE, policy: fixture() }]);

  it('matches the golden files byte for byte (UPDATE_GOLDEN=1 npx vitest run test/integration/export/istio.test.ts regenerates them)', () => {
    const outputs = new Map(result.files.map((f) => [f.name, renderFile(f)]));
    expectGolden(GOLDEN, outputs, 'test/integration/export/istio.test.ts', { wholeDirectory: true });
  });

  it('passes the Istio CRDs, schema and CEL rules, with zero problems', () => {
    expect(problemsOf(result)).toEqual([]);
    for (const f of readdirSync(GOLDEN)) {
      for (const d of parseAllDocuments(readFileSync(join(GOLDEN, f), 'utf8'))) expect(validateCrdObject(CRDS, d.toJSON())).toEqual([]);
    }
  });

  it('reports every field explicitly, with a reason for each lossy or dropped one', () => {
    const unmapped = result.report.fields.filter((e) => e.why?.includes('does not map this field'));
    expect(unmapped.map((e) => e.field)).toEqual([]);
    for (const e of result.report.fields) {
      if (e.verdict === 'exact') expect(e.to, e.field).toBeTruthy();
      else expect(e.why, e.field).toBeTruthy();
    }
    expect(result.report.exact).toBeGreaterThan(100);
  });

  it('states the scope of each file', () => {
    for (const f of result.report.files) expect(f.scope).toMatch(/^every caller of .* in the mesh/);
  });

  it('round-trips: export, validate, import back: every exact field has the same resolved value', () => {
    const original = fixture();
    const docs = result.files.flatMap((f) => parseAllDocuments(renderFile(f)).map((d) => d.toJSON() as unknown));
    for (const d of docs) expect(validateCrdObject(CRDS, d)).toEqual([]);
    expect(result.report.fields.filter((e) => e.verdict === 'exact').length).toBeGreaterThan(100);
    expect(roundTripMismatches(result, docs, original)).toEqual([]);
  });

  it('the round trip comparison catches a changed value (so the check above can fail)', () => {
    const docs = result.files.flatMap((f) => parseAllDocuments(renderFile(f)).map((d) => d.toJSON() as Doc));
    const dr = docs.find((d) => d['kind'] === 'DestinationRule' && d['metadata']['name'] === 'orders') as Doc;
    dr['spec']['trafficPolicy']['connectionPool']['tcp']['maxConnections'] = 201;
    expect(roundTripMismatches(result, docs, fixture())).toEqual(['upstreams.orders.limits.maxConnections: exported 200, imported 201']);
  });
});

/** Every field reported exact whose value differs after importing `docs` back. */
function roundTripMismatches(result: ExportResult, docs: readonly unknown[], original: ResolvedPolicy): string[] {
  const imported = resolve(importIstio(docs), 'imported');
  const mismatches: string[] = [];
  for (const e of result.report.fields.filter((f) => f.verdict === 'exact')) {
    const back = valueAt(imported, e.field, original);
    if (JSON.stringify(back) !== JSON.stringify(e.value)) mismatches.push(`${e.field}: exported ${JSON.stringify(e.value)}, imported ${JSON.stringify(back)}`);
  }
  return mismatches;
}

/**
 * The value at a report path in the imported policy. Header matches are ANDed,
 * so their order carries no meaning and Istio's maps do not keep it: a header
 * field is looked up by the header's name instead of its index.
 */
function valueAt(policy: ResolvedPolicy, field: string, original: ResolvedPolicy): unknown {
  const parts = field.split('.');
  const h = parts.indexOf('headers');
  if (h > 0 && parts[h - 1] === 'match') {
    const routeIndex = Number(parts[h - 2]);
    const up = parts[1] ?? '';
    const name = original.upstreams[up]?.routes[routeIndex]?.match.headers[Number(parts[h + 1])]?.name;
    const found = policy.upstreams[up]?.routes[routeIndex]?.match.headers.find((x) => x.name === name);
    return (found as Record<string, unknown> | undefined)?.[parts[h + 2] ?? ''];
  }
  let v: unknown = policy;
  for (const p of parts) v = (v as Record<string, unknown> | undefined)?.[p];
  return v;
}

describe('istio export: zero, int32 and duration edge cases', () => {
  const upstream = (svc: Doc) => ({ apiVersion: 'inmesh/v1', upstreams: { svc } });

  it('a 0s request and per-try timeout is no field (Istio refuses 0s, its default is none)', () => {
    const r = exportDoc(upstream({ timeouts: { request: '0s', perTry: '0s' } }));
    const http = docOf(r, 'VirtualService')['spec']['http'][0];
    expect(http.timeout).toBeUndefined();
    expect(http.retries.perTryTimeout).toBeUndefined();
    expect(entry(r, 'upstreams.svc.timeouts.request')?.verdict).toBe('exact');
    expect(problemsOf(r)).toEqual([]);
  });

  it('durations are rebuilt from ms: 1ms and 250ms pass the CEL rule', () => {
    const r = exportDoc(upstream({ timeouts: { connect: '1ms', request: '250ms', perTry: '1ms', idle: '1500ms' }, retries: { backoff: { base: '1ms', max: '10ms' } } }));
    const dr = docOf(r, 'DestinationRule')['spec']['trafficPolicy'];
    const http = docOf(r, 'VirtualService')['spec']['http'][0];
    expect([dr.connectionPool.tcp.connectTimeout, http.timeout, http.retries.perTryTimeout, dr.connectionPool.http.idleTimeout, http.retries.backoff]).toEqual([
      '0.001s',
      '0.250s',
      '0.001s',
      '1.500s',
      '0.001s',
    ]);
    expect(entry(r, 'upstreams.svc.retries.backoff.max')?.verdict).toBe('exact');
    expect(problemsOf(r)).toEqual([]);
  });

  it('maxPendingRequests 0 (no queue) is written as 1: Istio reads 0 as unlimited', () => {
    const r = exportDoc(upstream({ limits: { maxPendingRequests: 0 } }));
    expect(docOf(r, 'DestinationRule')['spec']['trafficPolicy']['connectionPool']['http']['http1MaxPendingRequests']).toBe(1);
    expect(entry(r, 'upstreams.svc.limits.maxPendingRequests')?.verdict).toBe('lossy');
    expect(problemsOf(r)).toEqual([]);
  });

  it('maxEjectionPercent 0 is written as 1: Istio reads 0 as 10 %', () => {
    const r = exportDoc(upstream({ outlierDetection: { maxEjectionPercent: 0, panicThresholdPercent: 0, consecutive5xx: 0 } }));
    const od = docOf(r, 'DestinationRule')['spec']['trafficPolicy']['outlierDetection'];
    expect(od).toMatchObject({ maxEjectionPercent: 1, minHealthPercent: 0, consecutive5xxErrors: 0 });
    expect(entry(r, 'upstreams.svc.outlierDetection.maxEjectionPercent')?.verdict).toBe('lossy');
    expect(entry(r, 'upstreams.svc.outlierDetection.panicThresholdPercent')?.verdict).toBe('exact');
    // Only 100 % matches the model's "at least one endpoint may be ejected" without Envoy's always_eject_one_host.
    expect(entry(exportDoc(upstream({ outlierDetection: { maxEjectionPercent: 100 } })), 'upstreams.svc.outlierDetection.maxEjectionPercent')?.verdict).toBe('exact');
    expect(entry(exportDoc(upstream({ outlierDetection: { maxEjectionPercent: 40 } })), 'upstreams.svc.outlierDetection.maxEjectionPercent')?.verdict).toBe('lossy');
    expect(problemsOf(r)).toEqual([]);
  });

  it('limits off (Infinity) become 0, Istio\'s unlimited, never an out-of-range int32', () => {
    const r = exportDoc(upstream({ limits: { enabled: false } }));
    const http = docOf(r, 'DestinationRule')['spec']['trafficPolicy']['connectionPool']['http'];
    expect([http.http1MaxPendingRequests, http.http2MaxRequests]).toEqual([0, 0]);
    expect(problemsOf(r)).toEqual([]);
  });

  it('values above int32 are capped at 2^31-1 and reported lossy', () => {
    const r = exportDoc(upstream({ limits: { maxConnections: 4294967295, maxRequests: 2147483648, maxRequestsPerConnection: 2147483647 } }));
    const pool = docOf(r, 'DestinationRule')['spec']['trafficPolicy']['connectionPool'];
    expect([pool.tcp.maxConnections, pool.http.http2MaxRequests, pool.http.maxRequestsPerConnection]).toEqual([2147483647, 2147483647, 2147483647]);
    expect(entry(r, 'upstreams.svc.limits.maxConnections')?.verdict).toBe('lossy');
    expect(entry(r, 'upstreams.svc.limits.maxRequestsPerConnection')?.verdict).toBe('exact');
    expect(problemsOf(r)).toEqual([]);
  });

  it('retries 0 writes attempts 0 (no retries in Istio) and the retriable codes inside retryOn', () => {
    const r = exportDoc(upstream({ retries: { attempts: 0, retryOn: ['5xx', 'retriable-status-codes'], retriableStatusCodes: [409, 429] } }));
    const retries = docOf(r, 'VirtualService')['spec']['http'][0]['retries'];
    expect(retries).toMatchObject({ attempts: 0, retryOn: '5xx,retriable-status-codes,409,429' });
    expect(problemsOf(r)).toEqual([]);
  });

  it('the balancer is always written: round_robin is ROUND_ROBIN, not Istio\'s LEAST_REQUEST default', () => {
    const r = exportDoc(upstream({}));
    expect(docOf(r, 'DestinationRule')['spec']['trafficPolicy']['loadBalancer']).toEqual({ simple: 'ROUND_ROBIN' });
  });

  it('weights become percentages adding to 100, lossy when not exact', () => {
    expect(percentWeights([90, 10])).toEqual({ percents: [90, 10], exact: true });
    expect(percentWeights([1, 1, 1])).toEqual({ percents: [34, 33, 33], exact: false });
    expect(percentWeights([3])).toEqual({ percents: [100], exact: true });
    const r = exportDoc(upstream({ subsets: { a: { tags: ['a'] }, b: { meta: { track: 'b' } }, c: { tags: ['c'] } }, split: [{ subset: 'a', weight: 1 }, { subset: 'b', weight: 1 }, { subset: 'c', weight: 1 }] }));
    const route = docOf(r, 'VirtualService')['spec']['http'][0]['route'];
    expect(route.map((d: Doc) => d['weight'])).toEqual([34, 33, 33]);
    expect(entry(r, 'upstreams.svc.split.0.weight')?.verdict).toBe('lossy');
    expect(entry(r, 'upstreams.svc.subsets.b.meta.track')?.verdict).toBe('exact');
    expect(entry(r, 'upstreams.svc.subsets.a.tags')?.verdict).toBe('lossy');
    expect(problemsOf(r)).toEqual([]);
  });

  it('--service scopes the files to the caller (workloadSelector, exportTo ".", sourceLabels) and says so', () => {
    const r = exportDoc(upstream({ routes: [{ name: 'a', match: { pathPrefix: '/a' } }] }), { service: 'web' });
    const dr = docOf(r, 'DestinationRule')['spec'];
    const vs = docOf(r, 'VirtualService')['spec'];
    expect(dr.workloadSelector).toEqual({ matchLabels: { app: 'web' } });
    expect(dr.exportTo).toEqual(['.']);
    expect(vs.http[0].match[0].sourceLabels).toEqual({ app: 'web' });
    expect(vs.http.at(-1)).toEqual({ name: 'other-callers', route: [{ destination: { host: 'svc.default.svc.cluster.local' } }] });
    expect(r.report.files[0]?.scope).toMatch(/^workloads labelled app=web in namespace default/);
    expect(problemsOf(r)).toEqual([]);
  });

  it('refuses route and subset names that collide with the ones the exporter writes, naming the field', () => {
    expect(() => exportDoc(upstream({ routes: [{ name: 'default', match: { pathPrefix: '/a' } }] }))).toThrow(/upstreams\.svc\.routes: a route named "default"/);
    expect(() => exportDoc(upstream({ subsets: { 'route-a': { tags: ['a'] } } }))).toThrow(/upstreams\.svc\.subsets\.route-a/);
  });

  it('writes every served version the CRD has and refuses others', () => {
    for (const v of ['v1', 'v1beta1', 'v1alpha3']) expect(problemsOf(exportDoc(upstream({}), { targetVersion: v }))).toEqual([]);
    expect(() => exportDoc(upstream({}), { targetVersion: 'v2' })).toThrow(/not supported/);
  });
});

describe('inmesh export --to istio', () => {
  const io = () => {
    const out: string[] = [];
    const err: string[] = [];
    return { io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s) }, out, err };
  };

  it('writes the files and the JSON report; exits 2 on lossy fields and 0 with --allow-lossy', async () => {
    const dir = join(tmp, 'out');
    const reportFile = join(tmp, 'report.json');
    const first = io();
    expect(await runCli(['export', '--to', 'istio', '--out', dir, '--report', reportFile, FIXTURE], first.io)).toBe(2);
    expect(readdirSync(dir).sort()).toEqual(readdirSync(GOLDEN).sort());
    for (const f of readdirSync(dir)) expect(readFileSync(join(dir, f), 'utf8')).toBe(readFileSync(join(GOLDEN, f), 'utf8'));
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as { target: string; lossy: number; fields: unknown[] };
    expect(report.target).toBe('istio');
    expect(report.lossy).toBeGreaterThan(0);
    expect(first.err.join('\n')).toMatch(/lossy +upstreams\.orders\.discovery\.tags/);
    const second = io();
    expect(await runCli(['export', '--to', 'istio', '--out', dir, '--report', reportFile, '--allow-lossy', FIXTURE], second.io)).toBe(0);
  });
});
