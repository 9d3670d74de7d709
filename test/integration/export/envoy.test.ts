/**
 * Envoy export: golden files for the policy that sets every field, every
 * written document checked against Envoy's v3 protos (unknown fields refused,
 * protoc-gen-validate rules checked, see envoy-proto.ts), and each value whose
 * zero or "off" means something else in Envoy.
 *
 * Regenerate the golden files with `UPDATE_GOLDEN=1 npx vitest run test/integration/export/envoy.test.ts`.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readPolicyFile } from '../../../src/config/index.ts';
import { UINT32_MAX, tokenBucket } from '../../../src/export/envoy.ts';
import { exportPolicy, type ExportResult } from '../../../src/export/index.ts';
import { parsePolicy, resolvePolicy } from '../../../src/policy/index.ts';
import { envoyProtoErrors } from './envoy-proto.ts';
import { exportOutputs, expectGolden } from './golden.ts';

const FIXTURES = join(import.meta.dirname, '../../fixtures/export');
const GOLDEN = join(FIXTURES, 'envoy');
const DISCOVERY_RESPONSE = 'envoy.service.discovery.v3.DiscoveryResponse';

const fullPolicy = () => resolvePolicy(parsePolicy(readPolicyFile(join(FIXTURES, 'full-policy.yaml')), 'full-policy.yaml'), 'full-policy.yaml');
const resolve = (upstreams: Record<string, unknown>) => resolvePolicy(parsePolicy({ apiVersion: 'inmesh/v1', upstreams }, 'test'), 'test');
const exportEnvoy = (policy: ReturnType<typeof resolve>): ExportResult => exportPolicy('envoy', [{ source: 'test.yaml', policy }]);

type Json = Record<string, any>;
const clusters = (r: ExportResult): Json[] => (r.files[0]!.documents[0] as Json).resources;
const routeConfig = (r: ExportResult): Json => (r.files[1]!.documents[0] as Json).resources[0];
const vhost = (r: ExportResult, name: string): Json => routeConfig(r).virtual_hosts.find((v: Json) => v.name === name);
const route = (r: ExportResult, host: string, name: string): Json => vhost(r, host).routes.find((x: Json) => x.name === name);

function expectValid(r: ExportResult): void {
  for (const file of r.files) expect(envoyProtoErrors(DISCOVERY_RESPONSE, file.documents[0]), file.name).toEqual([]);
}

describe('envoy export of the full policy', () => {
  const result = exportPolicy('envoy', [{ source: 'full-policy.yaml', policy: fullPolicy() }]);

  it('matches the golden files byte for byte', () => {
    expectGolden(GOLDEN, exportOutputs(result.files, result.report), 'test/integration/export/envoy.test.ts');
  });

  it('parses against the v3 protos with no unknown field and no broken validation rule', () => {
    expectValid(result);
  });

  it('reports every field explicitly, with the scope of each file', () => {
    const unmapped = result.report.fields.filter((f) => f.why?.includes('does not map this field') === true);
    expect(unmapped.map((f) => f.field)).toEqual([]);
    expect(result.report.fields.length).toBeGreaterThan(300);
    expect(result.report.files.map((f) => f.name)).toEqual(['clusters.json', 'routes.json']);
    for (const f of result.report.files) expect(f.scope).toContain('full-policy.yaml');
  });

  it('keeps the subsets in one cluster and splits with weighted_clusters over metadata_match', () => {
    const orders = clusters(result).find((c) => c.name === 'orders')!;
    expect(orders.lb_subset_config.subset_selectors.map((s: Json) => s.keys)).toEqual([
      ['tag.http', 'tag.v1'],
      ['tag.http', 'tag.v2', 'track'],
    ]);
    const split = route(result, 'orders', 'items').route.weighted_clusters.clusters;
    expect(split.map((c: Json) => [c.name, c.weight, c.metadata_match.filter_metadata['envoy.lb']])).toEqual([
      ['orders', 90, { 'tag.http': true, 'tag.v1': true }],
      ['orders', 10, { 'tag.http': true, 'tag.v2': true, track: 'canary' }],
    ]);
  });
});

describe('envoy export: zero and "off" values', () => {
  it('writes a zero request timeout as "0s" (disabled, as in inmesh) rather than omitting it (15 s)', () => {
    const r = exportEnvoy(resolve({ a: { timeouts: { request: '0s' } } }));
    expect(route(r, 'a', 'default').route.timeout).toBe('0s');
    expectValid(r);
  });

  it('writes num_retries 0 (omitted means 1) and omits per_try_timeout for perTry 0', () => {
    const r = exportEnvoy(resolve({ a: { retries: { attempts: 0 }, timeouts: { perTry: '0s' } } }));
    const policy = route(r, 'a', 'default').route.retry_policy;
    expect(policy.num_retries).toBe(0);
    expect(policy).not.toHaveProperty('per_try_timeout');
    expectValid(r);
  });

  it('writes limits off as uint32 max (omitted means 1024) and no budget as max_retries uint32 max (omitted means 3)', () => {
    const r = exportEnvoy(resolve({ a: { limits: { enabled: false }, retries: { budget: false } } }));
    const t = clusters(r)[0]!.circuit_breakers.thresholds[0];
    expect(t.max_pending_requests).toBe(UINT32_MAX);
    expect(t.max_requests).toBe(UINT32_MAX);
    expect(t.max_retries).toBe(UINT32_MAX);
    expect(t).not.toHaveProperty('retry_budget');
    expectValid(r);
  });

  it('keeps maxPendingRequests 0 as 0 (no request waits) and omits maxRequestsPerConnection 0 (unlimited)', () => {
    const r = exportEnvoy(resolve({ a: { limits: { maxPendingRequests: 0, maxRequestsPerConnection: 0 } } }));
    const c = clusters(r)[0]!;
    expect(c.circuit_breakers.thresholds[0].max_pending_requests).toBe(0);
    const opts = c.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
    expect(opts.common_http_protocol_options).not.toHaveProperty('max_requests_per_connection');
    expectValid(r);
  });

  it('turns a detector off with enforcing 0, keeps maxEjectionPercent 0 with always_eject_one_host, and panic 0 as 0', () => {
    const r = exportEnvoy(resolve({ a: { outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 0, maxEjectionPercent: 0, panicThresholdPercent: 0 } } }));
    const c = clusters(r)[0]!;
    expect(c.outlier_detection).toMatchObject({ enforcing_consecutive_5xx: 0, enforcing_consecutive_gateway_failure: 0, max_ejection_percent: 0, always_eject_one_host: true, enforcing_success_rate: 0 });
    expect(c.common_lb_config.healthy_panic_threshold).toEqual({ value: 0 });
    expectValid(r);
  });

  it('omits rate_limited_retry_back_off when Retry-After is ignored (maxRetryAfter 0)', () => {
    const on = exportEnvoy(resolve({ a: { retries: { maxRetryAfter: '2s' } } }));
    expect(route(on, 'a', 'default').route.retry_policy.rate_limited_retry_back_off).toEqual({ reset_headers: [{ name: 'retry-after', format: 'SECONDS' }], max_interval: '2s' });
    const off = exportEnvoy(resolve({ a: { retries: { maxRetryAfter: '0s' } } }));
    expect(route(off, 'a', 'default').route.retry_policy).not.toHaveProperty('rate_limited_retry_back_off');
    expectValid(off);
  });

  it('writes durations from milliseconds with 0 or 3 fractional digits', () => {
    const r = exportEnvoy(resolve({ a: { timeouts: { connect: '1500ms', idle: '1m30s' }, retries: { backoff: { base: '5ms', max: '1s' } } } }));
    expect(clusters(r)[0]!.connect_timeout).toBe('1.500s');
    expect(route(r, 'a', 'default').route.retry_policy.retry_back_off).toEqual({ base_interval: '0.005s', max_interval: '1s' });
    expectValid(r);
  });
});

describe('envoy export: retries of idempotent methods only', () => {
  it('puts a no-retry route for non-idempotent methods before a route that can see them', () => {
    const r = exportEnvoy(resolve({ a: { retries: { attempts: 2, idempotentOnly: true } } }));
    const routes = vhost(r, 'a').routes;
    expect(routes.map((x: Json) => x.name)).toEqual(['default:non-idempotent', 'default']);
    expect(routes[0].match.headers).toEqual([{ name: ':method', string_match: { safe_regex: { regex: 'GET|HEAD|OPTIONS|PUT|DELETE|TRACE' } }, invert_match: true }]);
    expect(routes[0].route.retry_policy.num_retries).toBe(0);
    expect(routes[1].route.retry_policy.num_retries).toBe(2);
    expectValid(r);
  });

  it('needs no extra route when the route matches idempotent methods only, and retries everything when idempotentOnly is off', () => {
    const r = exportEnvoy(resolve({ a: { retries: { idempotentOnly: false }, routes: [{ name: 'get', match: { methods: ['GET'] }, retries: { idempotentOnly: true } }] } }));
    expect(vhost(r, 'a').routes.map((x: Json) => x.name)).toEqual(['get', 'default']);
  });
});

describe('envoy export: rate limit token bucket', () => {
  it('picks the shortest fill interval from 50 ms that holds whole tokens', () => {
    expect(tokenBucket(200, 50)).toEqual({ max_tokens: 50, tokens_per_fill: 10, fill_interval: '0.050s' });
    expect(tokenBucket(50, 50)).toEqual({ max_tokens: 50, tokens_per_fill: 3, fill_interval: '0.060s' });
    expect(tokenBucket(0.5, 1)).toEqual({ max_tokens: 1, tokens_per_fill: 1, fill_interval: '2s' });
  });
});

describe('envoy proto check', () => {
  const cluster = (extra: Json): Json => ({
    name: 'a',
    type: 'EDS',
    connect_timeout: '1s',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: 'a' },
    ...extra,
  });
  const CLUSTER = 'envoy.config.cluster.v3.Cluster';

  it('accepts a plain cluster', () => {
    expect(envoyProtoErrors(CLUSTER, cluster({}))).toEqual([]);
  });

  it('refuses an unknown field, naming its path', () => {
    expect(envoyProtoErrors(CLUSTER, cluster({ outlier_detection: { consecutive5xx: 3 } }))).toEqual([
      'envoy.config.cluster.v3.Cluster.outlier_detection.consecutive5xx: unknown field of .envoy.config.cluster.v3.OutlierDetection',
    ]);
  });

  it('refuses a zero connect timeout, a percent over 100, a uint32 out of range and an unknown enum value', () => {
    const errors = envoyProtoErrors(
      CLUSTER,
      cluster({
        connect_timeout: '0s',
        common_lb_config: { healthy_panic_threshold: { value: 101 } },
        circuit_breakers: { thresholds: [{ max_requests: 2 ** 32 }] },
        lb_policy: 'PEAK_EWMA',
      }),
    );
    expect(errors).toHaveLength(4);
    expect(errors.join('\n')).toMatch(/connect_timeout: duration \(ms\) 0 must be > 0/);
    expect(errors.join('\n')).toMatch(/healthy_panic_threshold\.value: double 101 must be <= 100/);
    expect(errors.join('\n')).toMatch(/max_requests: expected a uint32/);
    expect(errors.join('\n')).toMatch(/lb_policy: "PEAK_EWMA" is not a value/);
  });

  it('refuses a deprecated field, two members of one oneof, and a missing required oneof inside an Any', () => {
    const route = {
      name: 'r',
      virtual_hosts: [
        {
          name: 'v',
          domains: ['a'],
          routes: [{ match: { prefix: '/', path: '/x' }, route: { weighted_clusters: { clusters: [{ name: 'a', weight: 1 }], total_weight: 1 } } }],
        },
      ],
    };
    const errors = envoyProtoErrors('envoy.config.route.v3.RouteConfiguration', route);
    expect(errors.join('\n')).toMatch(/total_weight: deprecated field/);
    expect(errors.join('\n')).toMatch(/prefix and path are one of path_specifier/);
    const options = {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', common_http_protocol_options: { idle_timeout: '1s' } },
    };
    expect(envoyProtoErrors(CLUSTER, cluster({ typed_extension_protocol_options: options })).join('\n')).toMatch(/is required \(upstream_protocol_options\)/);
  });
});
