/**
 * The Consul exporter against a real Consul 1.8.7 dev agent (own agent, ACLs on,
 * default deny: the token comes from CONSUL_HTTP_TOKEN as `inmesh export --apply`
 * reads it). Every entry exported from full-policy.yaml is written through the
 * CLI, read back equal, every destination's discovery chain compiles, every
 * subset Filter is accepted (and selects the right instances) by the agent's
 * own filter engine, and export → apply → read back → import resolves to the
 * same value for every field reported exact. Golden files pin the output of
 * 1.8.7 and 1.15 (regenerate with UPDATE_GOLDEN=1).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../../src/cli/index.ts';
import { ExportError } from '../../../src/errors.ts';
import { consulExporter } from '../../../src/export/consul.ts';
import { importConsulEntries } from '../../../src/export/consul-import.ts';
import { parseGoDuration } from '../../../src/export/duration.ts';
import { exportPolicy, policyFields, renderFile, type ExportReport } from '../../../src/export/index.ts';
import { readPolicyFile } from '../../../src/config/load.ts';
import { parsePolicy, resolvePolicy } from '../../../src/policy/index.ts';
import type { ResolvedPolicy } from '../../../src/policy/types.ts';
import { startConsulAgent, type ConsulAgent } from '../../harness/consul-agent.ts';
import { consulApi } from '../../harness/consul.ts';
import { exportOutputs, expectGolden } from './golden.ts';

const FIXTURE = 'test/fixtures/export/full-policy.yaml';
const GOLDEN = 'test/fixtures/export/consul';
const resolveFile = (file: string): ResolvedPolicy => resolvePolicy(parsePolicy(readPolicyFile(file), file), file);
const resolveDoc = (doc: unknown): ResolvedPolicy => resolvePolicy(parsePolicy(doc, 'test policy'), 'test policy');

type Entry = Record<string, unknown>;

/** An entry as Consul gives it back, with Consul's own additions removed and durations in ms. */
function normalize(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) return value.map((v) => normalize(v));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (['CreateIndex', 'ModifyIndex', 'Namespace', 'Meta'].includes(k)) continue;
      // Consul writes back empty defaults (e.g. "MeshGateway": {}); they carry nothing.
      if (v === '' || (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0)) continue;
      if (v === false || v === 0) continue;
      out[k] = normalize(v, k);
    }
    return out;
  }
  if (['ConnectTimeout', 'RequestTimeout'].includes(key)) return parseGoDuration(value, key);
  return value;
}

function fieldValue(policy: ResolvedPolicy, field: string): unknown {
  const v = policyFields(policy).get(field);
  // The order of retry conditions does not matter.
  return field.endsWith('.retryOn') && Array.isArray(v) ? [...(v as string[])].sort() : v;
}

/** The fields reported exact whose value the imported entries do not give back. */
function roundTripDiff(original: ResolvedPolicy, report: ExportReport, entries: readonly Entry[]) {
  const back = resolveDoc(importConsulEntries(entries));
  const exact = report.fields.filter((f) => f.verdict === 'exact');
  expect(exact.length).toBeGreaterThan(100);
  return exact
    .filter((f) => !isDeepStrictEqual(fieldValue(back, f.field), fieldValue(original, f.field)))
    .map((f) => ({ field: f.field, exported: fieldValue(original, f.field), imported: fieldValue(back, f.field) }));
}

function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  return Promise.resolve(runCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t) })).then((code) => ({ code, out: out.join('\n'), err: err.join('\n') }));
}

describe('consul export: golden files', () => {
  for (const [version, service] of [['1.8.7', undefined], ['1.15', 'web']] as const) {
    it(`writes ${version}${service ? ` (--service ${service})` : ''} exactly as the golden files, with every field reported`, () => {
      const { files, report } = exportPolicy('consul', [{ source: FIXTURE, policy: resolveFile(FIXTURE) }], { targetVersion: version, ...(service ? { service } : {}) });
      expect(report.fields.filter((f) => f.why?.includes('does not map this field'))).toEqual([]);
      const outputs = exportOutputs(files, { ...report, callers: ['full-policy.yaml'] });
      expectGolden(join(GOLDEN, version), outputs, 'test/integration/export/consul.test.ts', { wholeDirectory: true });
    });
  }
});

describe('consul export: round trip of the newer line (offline: no 1.15 agent here)', () => {
  it('1.15 with --service: the exported entries import to the same value for every field reported exact', () => {
    const original = resolveFile(FIXTURE);
    const { files, report } = exportPolicy('consul', [{ source: FIXTURE, policy: original }], { targetVersion: '1.15', service: 'web' });
    // JSON as written to disk: what `consul config write` would read.
    const entries = files.map((f) => JSON.parse(renderFile(f)) as Entry);
    expect(roundTripDiff(original, report, entries)).toEqual([]);
  });
});

describe('consul export: zero values and edge cases', () => {
  it('never sees a regex RE2 refuses: the model refuses lookaround before export (Consul passes Regex to Envoy\'s RE2)', () => {
    expect(() => resolveDoc({ apiVersion: 'inmesh/v1', upstreams: { svc: { routes: [{ match: { headers: [{ name: 'x', regex: '(?=a)b' }] } }] } } })).toThrow(/regex/i);
  });

  const exportOne = (upstream: unknown, version = '1.8.7', service?: string) =>
    exportPolicy('consul', [{ source: 't', policy: resolveDoc({ apiVersion: 'inmesh/v1', upstreams: { svc: upstream } }) }], { targetVersion: version, ...(service ? { service } : {}) });
  const doc = (files: ReturnType<typeof exportOne>['files'], kind: string): Entry => files.find((f) => f.name.endsWith(`${kind}.json`))?.documents[0] as Entry;
  const verdict = (report: ExportReport, field: string) => report.fields.find((f) => f.field === field);

  it('writes a request timeout of 0 (none) as 24h, lossy: Consul reads 0 as 15 s', () => {
    const { files, report } = exportOne({ timeouts: { request: '0s' } });
    const routes = doc(files, 'service-router').Routes as Entry[];
    expect((routes.at(-1)?.Destination as Entry).RequestTimeout).toBe('24h');
    expect(verdict(report, 'upstreams.svc.timeouts.request')).toMatchObject({ verdict: 'lossy' });
    expect(verdict(report, 'upstreams.svc.timeouts.request')?.why).toContain('15 s');
  });

  it('writes attempts 0 as NumRetries 0 with no retry condition (with one, Consul retries once)', () => {
    const { files, report } = exportOne({ retries: { attempts: 0, retryOn: ['connect-failure', 'retriable-status-codes'], retriableStatusCodes: [503] } });
    const dest = (doc(files, 'service-router').Routes as Entry[]).at(-1)?.Destination as Entry;
    expect(dest).toEqual({ Service: 'svc', RequestTimeout: '15s', NumRetries: 0 });
    expect(verdict(report, 'upstreams.svc.retries.attempts')).toMatchObject({ verdict: 'exact' });
  });

  it('writes attempts 1 with its conditions', () => {
    const { files } = exportOne({ retries: { attempts: 1, retryOn: ['connect-failure', 'gateway-error'] } });
    const dest = (doc(files, 'service-router').Routes as Entry[]).at(-1)?.Destination as Entry;
    expect(dest).toMatchObject({ NumRetries: 1, RetryOnConnectFailure: true, RetryOnStatusCodes: [502, 503, 504] });
  });

  it('turns 5xx ejection off with EnforcingConsecutive5xx 0 (MaxFailures 0 is Envoy\'s 5), and reports maxEjectionPercent 0 lossy (1.15)', () => {
    const { files, report } = exportOne({ outlierDetection: { consecutive5xx: 0, maxEjectionPercent: 0 } }, '1.15', 'web');
    const own = doc(files, '0-service-defaults');
    const [override] = (own.UpstreamConfig as Entry).Overrides as Entry[];
    expect(override?.PassiveHealthCheck).toMatchObject({ EnforcingConsecutive5xx: 0, MaxEjectionPercent: 0 });
    expect(override?.PassiveHealthCheck).not.toHaveProperty('MaxFailures');
    expect(verdict(report, 'upstreams.svc.outlierDetection.consecutive5xx')).toMatchObject({ verdict: 'exact' });
    expect(verdict(report, 'upstreams.svc.outlierDetection.maxEjectionPercent')).toMatchObject({ verdict: 'lossy' });
  });

  it('writes limits off as Envoy\'s largest threshold (lossy) and maxPendingRequests 0 as 0 (1.15)', () => {
    const off = exportOne({ limits: { enabled: false } }, '1.15', 'web');
    const [o1] = (doc(off.files, '0-service-defaults').UpstreamConfig as Entry).Overrides as Entry[];
    expect((o1?.Limits as Entry).MaxConcurrentRequests).toBe(4_294_967_295);
    expect(verdict(off.report, 'upstreams.svc.limits.maxRequests')).toMatchObject({ verdict: 'lossy' });
    const zero = exportOne({ limits: { maxPendingRequests: 0 } }, '1.15', 'web');
    const [o2] = (doc(zero.files, '0-service-defaults').UpstreamConfig as Entry).Overrides as Entry[];
    expect((o2?.Limits as Entry).MaxPendingRequests).toBe(0);
  });

  it('writes fields newer than the version only for the newer version, reporting them as needing it', () => {
    const old = exportOne({ loadBalancer: { policy: 'least_request', choiceCount: 4 } });
    expect(doc(old.files, 'service-resolver')).not.toHaveProperty('LoadBalancer');
    expect(verdict(old.report, 'upstreams.svc.loadBalancer.policy')?.why).toBe('needs Consul 1.9 (service-resolver LoadBalancer)');
    const newer = exportOne({ loadBalancer: { policy: 'least_request', choiceCount: 4 } }, '1.15');
    expect(doc(newer.files, 'service-resolver').LoadBalancer).toEqual({ Policy: 'least_request', LeastRequestConfig: { ChoiceCount: 4 } });
  });

  it('scales split weights to percentages summing to 100, lossy when not exact', () => {
    const { files, report } = exportOne({ subsets: { a: { tags: ['a'] }, b: { tags: ['b'] }, c: { tags: ['c'] } }, split: [{ subset: 'a', weight: 1 }, { subset: 'b', weight: 1 }, { subset: 'c', weight: 1 }] });
    const splits = doc(files, 'service-splitter').Splits as { Weight: number }[];
    expect(splits.map((s) => s.Weight)).toEqual([33.34, 33.33, 33.33]);
    expect(verdict(report, 'upstreams.svc.split.0.weight')).toMatchObject({ verdict: 'lossy' });
  });

  it('refuses a tag Consul\'s filter language cannot quote (both " and a backtick), naming the field', () => {
    expect(() => exportOne({ subsets: { a: { tags: ['a"b`c'] } }, split: [{ subset: 'a' }] })).toThrow(/upstreams\.svc\.subsets\.a\.tags: .*cannot quote/);
  });

  it("refuses a subset named like the exporter's own, naming the field", () => {
    expect(() => exportOne({ subsets: { all: { tags: ['x'] } }, split: [{ subset: 'all' }] })).toThrow(ExportError);
    expect(() => exportOne({ subsets: { all: { tags: ['x'] } }, split: [{ subset: 'all' }] })).toThrow(/upstreams\.svc\.subsets\.all/);
  });

  it('reports outbound rateLimit and timeouts.idle as dropped, not as RateLimits / IdleTimeout', () => {
    const { files, report } = exportOne({ rateLimit: { requestsPerSecond: 5 }, timeouts: { idle: '10s' } }, '1.15');
    const text = files.map(renderFile).join('\n');
    expect(text).not.toContain('RateLimits');
    expect(text).not.toContain('IdleTimeout');
    expect(verdict(report, 'upstreams.svc.rateLimit.requestsPerSecond')).toMatchObject({ verdict: 'dropped' });
    expect(verdict(report, 'upstreams.svc.timeouts.idle')).toMatchObject({ verdict: 'dropped' });
  });
});

describe('consul export --apply against a real Consul 1.8.7 agent', () => {
  const master = randomUUID();
  let agent: ConsulAgent;
  let out: string;
  const env = { ...process.env };

  beforeAll(async () => {
    agent = await startConsulAgent({ acl: { masterToken: master } });
    out = mkdtempSync(join(tmpdir(), 'inmesh-consul-export-'));
    vi.stubEnv('CONSUL_HTTP_ADDR', agent.httpAddr);
    vi.stubEnv('CONSUL_HTTP_TOKEN', master);
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    await agent.close();
    rmSync(out, { recursive: true, force: true });
    expect(process.env).toEqual(env);
  });

  const get = async <T = Entry>(path: string): Promise<T> => (await consulApi<T>(agent.url, 'GET', path, undefined, master)).data;

  it('writes every exported entry through the CLI, reads each back equal, and every discovery chain compiles', async () => {
    const run = await cli(['export', '--to', 'consul', '--apply', '--allow-lossy', '--out', out, FIXTURE]);
    expect(run.err).not.toContain(master);
    expect(run.out).not.toContain(master);
    expect(run.code, run.err).toBe(0);
    expect(run.err).toContain('applied 16 file(s) to consul');
    const { files } = exportPolicy('consul', [{ source: FIXTURE, policy: resolveFile(FIXTURE) }]);
    const services = new Set<string>();
    for (const file of files) {
      const entry = file.documents[0] as Entry;
      expect(JSON.parse(readFileSync(join(out, file.name), 'utf8'))).toEqual(entry);
      const stored = await get(`/v1/config/${String(entry.Kind)}/${String(entry.Name)}`);
      expect(normalize(stored), file.name).toEqual(normalize(entry));
      services.add(String(entry.Name));
    }
    for (const service of services) {
      const { Chain: chain } = await get<{ Chain: { Protocol: string; Nodes: Record<string, unknown>; Targets: Record<string, Entry> } }>(`/v1/discovery-chain/${service}`);
      expect(chain.Protocol, service).toBe('http');
      expect(Object.keys(chain.Nodes)).toContain(`router:${service}.default`);
    }
    const orders = await get<{ Chain: { Targets: Record<string, Entry> } }>('/v1/discovery-chain/orders');
    expect(Object.keys(orders.Chain.Targets).sort()).toEqual(['canary.orders.default.dc1', 'stable.orders.default.dc1']);
  });

  it("accepts every subset Filter in the agent's own filter engine, selecting the right instances", async () => {
    const register = (id: string, tags: string[], meta: Record<string, string>) =>
      consulApi(agent.url, 'PUT', '/v1/agent/service/register', { ID: id, Name: 'orders', Port: 9, Address: '127.0.0.1', Tags: tags, Meta: meta }, master);
    await register('orders-v1', ['http', 'v1'], {});
    await register('orders-v2', ['http', 'v2'], { track: 'canary' });
    await register('orders-v2-other', ['http', 'v2'], { track: 'other' });
    const resolver = await get<{ Subsets: Record<string, { Filter: string }> }>('/v1/config/service-resolver/orders');
    const ids: Record<string, string[]> = {};
    for (const [name, subset] of Object.entries(resolver.Subsets)) {
      const rows = await get<{ Service: { ID: string } }[]>(`/v1/health/service/orders?filter=${encodeURIComponent(subset.Filter)}`);
      ids[name] = rows.map((r) => r.Service.ID).sort();
    }
    expect(ids).toEqual({ all: ['orders-v1', 'orders-v2', 'orders-v2-other'], stable: ['orders-v1'], canary: ['orders-v2'] });
  });

  it('writes tags and meta values with quotes, backslashes and " and " as filter literals the agent reads back as written', async () => {
    const odd = { quote: 'has "quote"', and: 'x and y', slash: 'back\\slash' };
    const policy = resolveDoc({ apiVersion: 'inmesh/v1', upstreams: { odd: { subsets: { q: { tags: [odd.quote] }, a: { tags: [odd.and], meta: { k: odd.slash, 'k-2': 'v' } } }, split: [{ subset: 'q' }, { subset: 'a' }] } } });
    const { files, report } = exportPolicy('consul', [{ source: 'odd', policy }]);
    await consulExporter.apply?.(files, { CONSUL_HTTP_ADDR: agent.httpAddr, CONSUL_HTTP_TOKEN: master });
    const register = (id: string, tags: string[], meta: Record<string, string>) =>
      consulApi(agent.url, 'PUT', '/v1/agent/service/register', { ID: id, Name: 'odd', Port: 9, Address: '127.0.0.1', Tags: tags, Meta: meta }, master);
    await register('odd-q', [odd.quote], {});
    await register('odd-a', [odd.and], { k: odd.slash, 'k-2': 'v' });
    await register('odd-x', ['x', 'y'], { k: odd.slash });
    // Consul gives an empty Filter back as no field.
    const resolver = await get<{ Subsets: Record<string, { Filter?: string }> }>('/v1/config/service-resolver/odd');
    const ids: Record<string, string[]> = {};
    for (const [name, subset] of Object.entries(resolver.Subsets)) {
      const rows = await get<{ Service: { ID: string } }[]>(`/v1/health/service/odd?filter=${encodeURIComponent(subset.Filter ?? '')}`);
      ids[name] = rows.map((r) => r.Service.ID).sort();
    }
    expect(ids).toEqual({ q: ['odd-q'], a: ['odd-a'], all: ['odd-a', 'odd-q', 'odd-x'] });
    // And the import parses them back.
    const back = resolveDoc(importConsulEntries([resolver]));
    expect(back.upstreams.odd?.subsets).toEqual(policy.upstreams.odd?.subsets);
    expect(report.fields.find((f) => f.field === 'upstreams.odd.subsets.a.meta.k')).toMatchObject({ verdict: 'exact' });
  });

  it('round trip: the entries read back import to the same resolved value for every field reported exact', async () => {
    const original = resolveFile(FIXTURE);
    const { files, report } = exportPolicy('consul', [{ source: FIXTURE, policy: original }]);
    const stored: Entry[] = [];
    for (const file of files) {
      const entry = file.documents[0] as Entry;
      stored.push(await get(`/v1/config/${String(entry.Kind)}/${String(entry.Name)}`));
    }
    expect(roundTripDiff(original, report, stored)).toEqual([]);
  });

  it('a zero-retry route is stored without a retry condition, and its chain compiles', async () => {
    const policy = resolveDoc({ apiVersion: 'inmesh/v1', upstreams: { zero: { timeouts: { request: '0s' }, retries: { attempts: 0 }, routes: [{ match: { headers: [{ name: 'x-a', present: false }] } }] } } });
    const { files } = exportPolicy('consul', [{ source: 'zero', policy }]);
    await consulExporter.apply?.(files, { CONSUL_HTTP_ADDR: agent.httpAddr, CONSUL_HTTP_TOKEN: master });
    const router = await get<{ Routes: { Match: { HTTP: Entry }; Destination: Entry }[] }>('/v1/config/service-router/zero');
    for (const route of router.Routes) {
      expect(route.Destination).not.toHaveProperty('RetryOnConnectFailure');
      expect(route.Destination).not.toHaveProperty('RetryOnStatusCodes');
      expect(parseGoDuration(route.Destination.RequestTimeout, 'RequestTimeout')).toBe(86_400_000);
    }
    expect(router.Routes[0]?.Match.HTTP.Header).toEqual([{ Name: 'x-a', Present: true, Invert: true }]);
    await get('/v1/discovery-chain/zero');
  });

  it('the agent stores a Regex RE2 refuses: a write does not check regexes, the model\'s RE2 validation does', async () => {
    await consulApi(agent.url, 'PUT', '/v1/config', { Kind: 'service-defaults', Name: 're', Protocol: 'http' }, master);
    const router = { Kind: 'service-router', Name: 're', Routes: [{ Match: { HTTP: { Header: [{ Name: 'x', Regex: '(?=a)b' }] } }, Destination: { Service: 're' } }] };
    const answer = await consulApi(agent.url, 'PUT', '/v1/config', router, master);
    expect(answer.data).toBe(true);
    expect(() => resolveDoc({ apiVersion: 'inmesh/v1', upstreams: { re: { routes: [{ match: { headers: [{ name: 'x', regex: '(?=a)b' }] } }] } } })).toThrow(/regex/i);
  });

  it('writes a split entry of weight 0 (no calls) as Weight 0, which the agent stores and compiles', async () => {
    const policy = resolveDoc({ apiVersion: 'inmesh/v1', upstreams: { dark: { subsets: { a: { tags: ['a'] }, b: { tags: ['b'] } }, split: [{ subset: 'a', weight: 3 }, { subset: 'b', weight: 0 }] } } });
    const { files, report } = exportPolicy('consul', [{ source: 'dark', policy }]);
    expect(report.fields.find((f) => f.field === 'upstreams.dark.split.1.weight')).toMatchObject({ verdict: 'exact' });
    await consulExporter.apply?.(files, { CONSUL_HTTP_ADDR: agent.httpAddr, CONSUL_HTTP_TOKEN: master });
    const splitter = await get<{ Splits: { Weight?: number; ServiceSubset: string }[] }>('/v1/config/service-splitter/dark');
    expect(splitter.Splits.map((s) => [s.ServiceSubset, s.Weight ?? 0])).toEqual([['a', 100], ['b', 0]]);
    await get('/v1/discovery-chain/dark');
  });

  it("names the entry and Consul's answer when a write is refused, never the token; reads CONSUL_HTTP_TOKEN_FILE", async () => {
    const bad = { name: 'bad.4-service-router.json', format: 'json' as const, scope: 'test', documents: [{ Kind: 'service-router', Name: 'bad', Routes: [{ Match: { HTTP: { PathExact: 'no-slash' } } }] }] };
    const err = await consulExporter.apply?.([bad], { CONSUL_HTTP_ADDR: agent.httpAddr, CONSUL_HTTP_TOKEN: master }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ExportError);
    const message = (err as Error).message;
    expect(message).toContain('service-router bad (bad.4-service-router.json)');
    expect(message).toMatch(/answered 500: .*PathExact/);
    expect(message).not.toContain(master);
    const tokenFile = join(out, 'token');
    writeFileSync(tokenFile, `${master}\n`);
    const good = { ...bad, name: 'good.1-service-defaults.json', documents: [{ Kind: 'service-defaults', Name: 'good', Protocol: 'http' }] };
    await consulExporter.apply?.([good], { CONSUL_HTTP_ADDR: agent.httpAddr, CONSUL_HTTP_TOKEN_FILE: tokenFile });
    expect(await get('/v1/config/service-defaults/good')).toMatchObject({ Protocol: 'http' });
    const refused = await consulExporter.apply?.([bad], { CONSUL_HTTP_ADDR: agent.httpAddr, CONSUL_HTTP_TOKEN: randomUUID() }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(refused?.message).toMatch(/403/);
  });
});
