/**
 * Envoy exporter: the resolved policy as the v3 xDS documents of the caller's
 * sidecar, written as two discovery responses Envoy reads from files
 * (`cds_config` / `rds` with `path_config_source`): `clusters.json` holds one
 * Cluster per upstream, `routes.json` one RouteConfiguration with a virtual
 * host per upstream (its routes in policy order, then a catch-all route that
 * carries the upstream's own call policy).
 *
 * Subsets are one cluster with `lb_subset_config`, and a route picks a subset
 * through `metadata_match` (a split is `weighted_clusters` naming the same
 * cluster with a different `metadata_match` per entry, which is what
 * ClusterWeight.metadata_match is for). Not one cluster per subset (Istio's
 * and Consul's way): Envoy's circuit breakers and retry budget are per
 * cluster, and inmesh applies its limits and budget per upstream, so one
 * cluster per subset would multiply every limit by the number of subsets.
 *
 * Endpoint metadata (filter `envoy.lb`) is what Envoy subsets select on: the
 * EDS server must publish each Consul tag `t` as `tag.t: true` and each meta
 * pair as itself. Every value is written explicitly, because Envoy's defaults
 * differ from inmesh's (route timeout 15 s, num_retries 1, max_retries 3,
 * circuit-breaker thresholds 1024, success-rate ejection on).
 */
import { RESOURCES_NOT_EXPRESSIBLE, scopedReporter } from './report.ts';
import { isIP } from 'node:net';
import { ExportError } from '../errors.ts';
import { IDEMPOTENT_METHODS } from '../policy/schema.ts';
import type {
  ResolvedCallPolicy,
  ResolvedHeaderMatch,
  ResolvedLoadBalancer,
  ResolvedRetries,
  ResolvedSplitTarget,
  ResolvedUpstream,
} from '../policy/types.ts';
import { protoDuration } from './duration.ts';
import { policyFields } from './fields.ts';
import type { ExportedFile, ExportInput, Reporter, TargetExporter } from './types.ts';

/** Largest uint32: Envoy's own "unlimited" for circuit-breaker thresholds (omitting one means 1024, or 3 for max_retries). */
export const UINT32_MAX = 4_294_967_295;

/** Methods inmesh retries when `idempotentOnly` is set (src/resilience/retry.ts). */
const IDEMPOTENT: readonly string[] = IDEMPOTENT_METHODS;

const CLUSTERS_FILE = 'clusters.json';
const ROUTES_FILE = 'routes.json';
const ROUTE_CONFIG_NAME = 'inmesh-outbound';
const HTTP_OPTIONS_TYPE = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const LOCAL_RATELIMIT_FILTER = 'envoy.filters.http.local_ratelimit';
const LOCAL_RATELIMIT_TYPE = 'envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
/** Envoy refuses a token-bucket fill_interval under 50 ms. */
const MIN_FILL_INTERVAL_MS = 50;

const LB_POLICY = { round_robin: 'ROUND_ROBIN', random: 'RANDOM', least_request: 'LEAST_REQUEST', ring_hash: 'RING_HASH', peak_ewma: 'LEAST_REQUEST' } as const;

type Json = Record<string, unknown>;

const typeUrl = (type: string): string => `type.googleapis.com/${type}`;

/** Endpoint metadata (`envoy.lb`) of a tag, as the EDS server must publish it. */
const tagKey = (tag: string): string => `tag.${tag}`;

function subsetMetadata(upstream: Readonly<ResolvedUpstream>, subset: string): Json {
  const def = upstream.subsets[subset];
  if (def === undefined) throw new ExportError(`upstreams.${upstream.name}: split names subset ${JSON.stringify(subset)}, which is not defined`);
  const out: Json = {};
  for (const tag of [...upstream.discovery.tags, ...def.tags]) out[tagKey(tag)] = true;
  for (const [key, value] of Object.entries(def.meta)) out[key] = value;
  return out;
}

// ------------------------------------------------------------------ clusters

function cluster(u: Readonly<ResolvedUpstream>, out: Reporter): Json {
  const p = `upstreams.${u.name}`;
  const c = `${CLUSTERS_FILE}: ${u.name}`;
  const d = u.discovery;
  const doc: Json = { '@type': typeUrl('envoy.config.cluster.v3.Cluster'), name: u.name };
  out.exact(`${p}.name`, `${c}.name, ${ROUTES_FILE}: virtual_hosts[${u.name}]`);

  // Discovery.
  if (d.registry === 'static') {
    const hosts = d.endpoints.map((e) => {
      const colon = e.lastIndexOf(':');
      return { address: e.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(e.slice(colon + 1)) };
    });
    const allIps = hosts.every((h) => isIP(h.address) !== 0);
    const type = allIps ? 'STATIC' : 'STRICT_DNS';
    doc.type = type;
    doc.load_assignment = {
      cluster_name: u.name,
      endpoints: [{ lb_endpoints: hosts.map((h) => ({ endpoint: { address: { socket_address: { address: h.address, port_value: h.port } } } })) }],
    };
    out.exact(`${p}.discovery.registry`, `${c}.type ${type}`);
    out.exact(`${p}.discovery.endpoints`, `${c}.load_assignment`);
    out.dropped(`${p}.discovery.service`, 'not used by a static upstream (inmesh does not look it up either): the cluster lists its endpoints');
  } else {
    const service = d.service ?? u.name;
    doc.type = 'EDS';
    doc.eds_cluster_config =
      d.registry === 'file'
        ? { eds_config: { path_config_source: { path: d.file ?? '' }, resource_api_version: 'V3' }, service_name: service }
        : { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: service };
    if (d.registry === 'file') {
      out.lossy(`${p}.discovery.registry`, "Envoy watches a file of xDS resources, not inmesh's endpoints file", `${c}.type EDS`);
      out.lossy(
        `${p}.discovery.file`,
        "Envoy reads a DiscoveryResponse holding a ClusterLoadAssignment at this path, not inmesh's endpoint list: the file must be converted",
        `${c}.eds_cluster_config.eds_config.path_config_source.path`,
      );
    } else {
      out.exact(`${p}.discovery.registry`, `${c}.type EDS (endpoints from the ADS server, e.g. Consul's)`);
    }
    out.exact(`${p}.discovery.service`, `${c}.eds_cluster_config.service_name`);
  }
  out.dropped(`${p}.discovery.datacenter`, 'a cluster has no datacenter: the EDS server must serve that datacenter\'s instances under the service name');
  out.lossy(
    `${p}.discovery.passingOnly`,
    'Envoy takes endpoint health from EDS health_status and has no cluster field for it: the EDS server must mark instances whose checks warn as UNHEALTHY (passingOnly true) or HEALTHY (false)',
    'EDS lb_endpoints[].health_status',
  );

  // Subsets, and the upstream's own tag filter as the default subset.
  const subsetNames = Object.keys(u.subsets);
  if (subsetNames.length > 0 || d.tags.length > 0) {
    const defaultSubset: Json = {};
    for (const tag of d.tags) defaultSubset[tagKey(tag)] = true;
    const selectors = subsetNames.map((name) => ({ keys: Object.keys(subsetMetadata(u, name)).sort(), fallback_policy: 'NO_FALLBACK' }));
    doc.lb_subset_config = {
      fallback_policy: d.tags.length > 0 ? 'DEFAULT_SUBSET' : 'ANY_ENDPOINT',
      default_subset: defaultSubset,
      subset_selectors: selectors,
    };
    const why = 'Envoy selects on endpoint metadata, not tags: the EDS server must publish each tag t as envoy.lb metadata `tag.t: true`';
    out.lossy(`${p}.discovery.tags`, why, `${c}.lb_subset_config.default_subset (fallback_policy DEFAULT_SUBSET)`);
    for (const name of subsetNames) {
      const s = `${p}.subsets.${name}`;
      out.lossy(`${s}.tags`, why, `${c}.lb_subset_config.subset_selectors[${name}].keys`);
      for (const key of Object.keys(u.subsets[name]?.meta ?? {})) out.exact(`${s}.meta.${key}`, `${c}.lb_subset_config.subset_selectors[${name}].keys`);
    }
  }

  // Load balancing.
  const lb = u.loadBalancer;
  doc.lb_policy = LB_POLICY[lb.policy];
  if (lb.policy === 'peak_ewma') {
    out.lossy(`${p}.loadBalancer.policy`, 'Envoy has no peak EWMA balancer: the nearest, least request, is written', `${c}.lb_policy`);
  } else {
    out.exact(`${p}.loadBalancer.policy`, `${c}.lb_policy`);
  }
  if (lb.policy === 'least_request' || lb.policy === 'peak_ewma') {
    doc.least_request_lb_config = { choice_count: lb.choiceCount };
    out.exact(`${p}.loadBalancer.choiceCount`, `${c}.least_request_lb_config.choice_count`);
  } else {
    out.dropped(`${p}.loadBalancer.choiceCount`, `applies to least_request only; this upstream balances ${lb.policy} (no effect in inmesh either)`);
  }
  if (lb.policy === 'ring_hash') {
    doc.ring_hash_lb_config = { minimum_ring_size: lb.minimumRingSize, hash_function: 'XX_HASH' };
    out.exact(`${p}.loadBalancer.minimumRingSize`, `${c}.ring_hash_lb_config.minimum_ring_size`);
  } else {
    out.dropped(`${p}.loadBalancer.minimumRingSize`, `applies to ring_hash only; this upstream balances ${lb.policy} (no effect in inmesh either)`);
  }
  const ewma = 'Envoy has no peak EWMA balancer';
  out.dropped(`${p}.loadBalancer.ewmaDecay`, lb.policy === 'peak_ewma' ? ewma : `${ewma} (and this upstream balances ${lb.policy})`);
  out.dropped(`${p}.loadBalancer.ewmaDefaultRtt`, lb.policy === 'peak_ewma' ? ewma : `${ewma} (and this upstream balances ${lb.policy})`);

  // Connection settings.
  doc.connect_timeout = protoDuration(u.timeouts.connect);
  out.exact(`${p}.timeouts.connect`, `${c}.connect_timeout`);
  const common: Json = { idle_timeout: protoDuration(u.timeouts.idle) };
  out.exact(`${p}.timeouts.idle`, `${c}.typed_extension_protocol_options.common_http_protocol_options.idle_timeout`);
  if (u.limits.maxRequestsPerConnection > 0) {
    common.max_requests_per_connection = u.limits.maxRequestsPerConnection;
    out.exact(`${p}.limits.maxRequestsPerConnection`, `${c}.typed_extension_protocol_options.common_http_protocol_options.max_requests_per_connection`);
  } else {
    out.exact(`${p}.limits.maxRequestsPerConnection`, `${c}: max_requests_per_connection omitted (0 = unlimited, Envoy's meaning of the field unset)`);
  }
  doc.typed_extension_protocol_options = {
    [HTTP_OPTIONS_TYPE]: { '@type': typeUrl(HTTP_OPTIONS_TYPE), common_http_protocol_options: common, explicit_http_config: { http_protocol_options: {} } },
  };

  // Panic threshold and outlier detection.
  const od = u.outlierDetection;
  doc.common_lb_config = { healthy_panic_threshold: { value: od.panicThresholdPercent } };
  out.exact(`${p}.outlierDetection.panicThresholdPercent`, `${c}.common_lb_config.healthy_panic_threshold (0 disables panic in both)`);
  doc.outlier_detection = {
    consecutive_5xx: od.consecutive5xx,
    enforcing_consecutive_5xx: od.consecutive5xx > 0 ? 100 : 0,
    consecutive_gateway_failure: od.consecutiveGatewayErrors,
    enforcing_consecutive_gateway_failure: od.consecutiveGatewayErrors > 0 ? 100 : 0,
    // inmesh has no success-rate or failure-percentage ejection: Envoy's success rate is enforced by default.
    enforcing_success_rate: 0,
    enforcing_failure_percentage: 0,
    enforcing_consecutive_local_origin_failure: 0,
    enforcing_local_origin_success_rate: 0,
    enforcing_failure_percentage_local_origin: 0,
    // Local timeouts and resets count as 5xx, as inmesh counts them.
    split_external_local_origin_errors: false,
    interval: protoDuration(od.interval),
    base_ejection_time: protoDuration(od.baseEjectionTime),
    max_ejection_time: protoDuration(od.maxEjectionTime),
    max_ejection_percent: od.maxEjectionPercent,
    always_eject_one_host: true,
  };
  const o = `${c}.outlier_detection`;
  out.exact(`${p}.outlierDetection.consecutive5xx`, `${o}.consecutive_5xx${od.consecutive5xx === 0 ? ' (0 = off: enforcing_consecutive_5xx 0)' : ''}`);
  out.exact(
    `${p}.outlierDetection.consecutiveGatewayErrors`,
    `${o}.consecutive_gateway_failure${od.consecutiveGatewayErrors === 0 ? ' (0 = off: enforcing_consecutive_gateway_failure 0)' : ' + enforcing_consecutive_gateway_failure 100'}`,
  );
  out.exact(`${p}.outlierDetection.interval`, `${o}.interval`);
  out.exact(`${p}.outlierDetection.baseEjectionTime`, `${o}.base_ejection_time`);
  out.exact(`${p}.outlierDetection.maxEjectionTime`, `${o}.max_ejection_time`);
  if (subsetNames.length > 0) {
    out.lossy(
      `${p}.outlierDetection.maxEjectionPercent`,
      'Envoy counts the ejected share over the whole cluster; inmesh counts it within each subset',
      `${o}.max_ejection_percent + always_eject_one_host`,
    );
  } else {
    out.exact(`${p}.outlierDetection.maxEjectionPercent`, `${o}.max_ejection_percent + always_eject_one_host (at least one may always be ejected)`);
  }

  // Concurrency limits and retry budget: one DEFAULT-priority threshold.
  const l = u.limits;
  const threshold: Json = {
    priority: 'DEFAULT',
    max_connections: limit(l.maxConnections),
    max_pending_requests: limit(l.maxPendingRequests),
    max_requests: limit(l.maxRequests),
  };
  const t = `${c}.circuit_breakers.thresholds[DEFAULT]`;
  out.exact(`${p}.limits.maxConnections`, `${t}.max_connections`);
  out.lossy(
    `${p}.limits.maxPendingRequests`,
    `Envoy queues only requests waiting for a connection (max_connections reached); a request over max_requests is refused at once, not queued${l.maxPendingRequests === Infinity ? '; limits off: written as 4294967295, Envoy\'s largest value' : ''}`,
    `${t}.max_pending_requests`,
  );
  out.exact(`${p}.limits.maxRequests`, `${t}.max_requests${l.maxRequests === Infinity ? ' = 4294967295 (limits off: Envoy\'s largest value; omitted would mean 1024)' : ''}`);
  if (u.retries.budget === undefined) {
    threshold.max_retries = UINT32_MAX;
  } else {
    threshold.retry_budget = { budget_percent: { value: u.retries.budget.percent }, min_retry_concurrency: u.retries.budget.minConcurrency };
    out.exact(`${p}.retries.budget.percent`, `${t}.retry_budget.budget_percent`);
    out.exact(`${p}.retries.budget.minConcurrency`, `${t}.retry_budget.min_retry_concurrency`);
  }
  doc.circuit_breakers = { thresholds: [threshold] };

  // The error-rate breaker and rate limit (the latter goes on the virtual host).
  const cb = u.circuitBreaker;
  const cbWhy = 'Envoy has no error-rate circuit breaker (its circuit_breakers are the concurrency limits); nearest: outlier_detection failure_percentage, which ejects single endpoints';
  if (cb.enabled) {
    out.dropped(`${p}.circuitBreaker.enabled`, cbWhy);
    for (const f of ['errorThresholdPercent', 'minimumRequests', 'window', 'halfOpenAfter']) out.dropped(`${p}.circuitBreaker.${f}`, cbWhy);
  } else {
    out.exact(`${p}.circuitBreaker.enabled`, `${c}: no error-rate breaker, which is what Envoy does`);
    for (const f of ['errorThresholdPercent', 'minimumRequests', 'window', 'halfOpenAfter']) out.dropped(`${p}.circuitBreaker.${f}`, 'inert: the breaker is off (and Envoy has none)');
  }
  return doc;
}

/** A circuit-breaker threshold: Infinity (limits off) is written as uint32's largest value, since an omitted threshold means 1024. */
function limit(value: number): number {
  return value === Infinity ? UINT32_MAX : value;
}

// ------------------------------------------------------------------ routes

interface RouteParts {
  /** Report prefix of the call policy: `upstreams.x` or `upstreams.x.routes.i`. */
  readonly path: string;
  /** Where it goes, for the report. */
  readonly to: string;
  /** The route's methods (undefined = any). */
  readonly methods: readonly string[] | undefined;
}

function retryPolicy(r: Readonly<ResolvedRetries>, perTry: number, attempts: number): Json {
  const policy: Json = {
    retry_on: r.retryOn.join(','),
    num_retries: attempts,
    retriable_status_codes: [...r.retriableStatusCodes],
    retry_back_off: { base_interval: protoDuration(r.backoff.base), max_interval: protoDuration(r.backoff.max) },
  };
  if (perTry > 0) policy.per_try_timeout = protoDuration(perTry);
  if (r.maxRetryAfter > 0) {
    policy.rate_limited_retry_back_off = { reset_headers: [{ name: 'retry-after', format: 'SECONDS' }], max_interval: protoDuration(r.maxRetryAfter) };
  }
  return policy;
}

function hashPolicy(lb: Readonly<ResolvedLoadBalancer>): Json[] | undefined {
  const h = lb.hashOn;
  if (lb.policy !== 'ring_hash' || h === undefined) return undefined;
  if (h.header !== undefined) return [{ header: { header_name: h.header } }];
  if (h.cookie !== undefined) return [{ cookie: { name: h.cookie } }];
  if (h.queryParameter !== undefined) return [{ query_parameter: { name: h.queryParameter } }];
  return undefined;
}

function destination(u: Readonly<ResolvedUpstream>, split: readonly Readonly<ResolvedSplitTarget>[] | undefined): Json {
  if (split === undefined) return { cluster: u.name };
  if (split.length === 1 && split[0] !== undefined) {
    return { cluster: u.name, metadata_match: { filter_metadata: { 'envoy.lb': subsetMetadata(u, split[0].subset) } } };
  }
  return {
    weighted_clusters: {
      clusters: split.map((s) => ({ name: u.name, weight: s.weight, metadata_match: { filter_metadata: { 'envoy.lb': subsetMetadata(u, s.subset) } } })),
    },
  };
}

/** The route action of a call policy; reports its call-level fields. */
function routeAction(u: Readonly<ResolvedUpstream>, call: Readonly<ResolvedCallPolicy>, parts: RouteParts, out: Reporter, attempts: number): Json {
  const { path: p, to } = parts;
  const action: Json = { ...destination(u, call.split), timeout: protoDuration(call.timeouts.request) };
  out.exact(`${p}.timeouts.request`, `${to}.route.timeout${call.timeouts.request === 0 ? ' "0s" (disabled in both; omitted would mean 15 s)' : ''}`);
  action.retry_policy = retryPolicy(call.retries, call.timeouts.perTry, attempts);
  out.exact(
    `${p}.timeouts.perTry`,
    call.timeouts.perTry === 0 ? `${to}.route.retry_policy: per_try_timeout omitted (0 = only the route timeout applies, as when unset in Envoy)` : `${to}.route.retry_policy.per_try_timeout`,
  );
  const hash = hashPolicy(call.loadBalancer);
  if (hash !== undefined) action.hash_policy = hash;
  for (const key of ['header', 'cookie', 'queryParameter'] as const) {
    out.exact(`${p}.loadBalancer.hashOn.${key}`, `${to}.route.hash_policy[].${key === 'queryParameter' ? 'query_parameter.name' : key === 'header' ? 'header.header_name' : 'cookie.name (no ttl: Envoy never generates the cookie, as inmesh)'}`);
  }
  call.split?.forEach((_, i) => {
    const where = call.split !== undefined && call.split.length > 1 ? `${to}.route.weighted_clusters.clusters[${i}]` : `${to}.route`;
    out.exact(`${p}.split.${i}.subset`, `${where}.metadata_match.filter_metadata["envoy.lb"]`);
    out.exact(`${p}.split.${i}.weight`, call.split !== undefined && call.split.length > 1 ? `${where}.weight` : `${where}.cluster (a single target takes every call)`);
  });
  return action;
}

function reportRetries(call: Readonly<ResolvedCallPolicy>, parts: RouteParts, out: Reporter): void {
  const { path: p, to } = parts;
  const r = call.retries;
  const rp = `${to}.route.retry_policy`;
  out.exact(`${p}.retries.attempts`, `${rp}.num_retries${r.attempts === 0 ? ' 0 (written: omitted would mean 1)' : ''}`);
  out.exact(`${p}.retries.retryOn`, `${rp}.retry_on`);
  out.exact(`${p}.retries.retriableStatusCodes`, `${rp}.retriable_status_codes`);
  out.exact(`${p}.retries.backoff.base`, `${rp}.retry_back_off.base_interval (full jitter in both)`);
  out.exact(`${p}.retries.backoff.max`, `${rp}.retry_back_off.max_interval`);
  out.exact(`${p}.retries.maxBodyBytes`, `${to}.per_request_buffer_limit_bytes`);
  if (r.maxRetryAfter > 0) {
    out.lossy(`${p}.retries.maxRetryAfter`, 'Envoy reads Retry-After as a number of seconds only, not as an HTTP date', `${rp}.rate_limited_retry_back_off.max_interval`);
  } else {
    out.exact(`${p}.retries.maxRetryAfter`, `${rp}: rate_limited_retry_back_off omitted (0 = Retry-After ignored, as in Envoy without it)`);
  }
  const methods = parts.methods;
  if (!r.idempotentOnly) {
    out.exact(`${p}.retries.idempotentOnly`, `${rp} (every method retried, as in Envoy)`);
  } else if (r.attempts === 0) {
    out.exact(`${p}.retries.idempotentOnly`, `${rp}.num_retries 0 (nothing is retried)`);
  } else if (methods !== undefined && methods.every((m) => IDEMPOTENT.includes(m))) {
    out.exact(`${p}.retries.idempotentOnly`, `${to} (matches idempotent methods only)`);
  } else {
    out.exact(`${p}.retries.idempotentOnly`, `${to}: preceded by a route for the same match and a non-idempotent :method with num_retries 0`);
  }
}

/** Fields of a route that Envoy keeps per cluster: exact when the route's value is the upstream's, lossy otherwise. */
function reportClusterLevel(u: Readonly<ResolvedUpstream>, call: Readonly<ResolvedCallPolicy>, p: string, out: Reporter): void {
  const c = `${CLUSTERS_FILE}: ${u.name}`;
  const same = (field: string, ours: unknown, theirs: unknown, to: string): void => {
    if (JSON.stringify(ours) === JSON.stringify(theirs)) out.exact(`${p}.${field}`, `${c}.${to} (per cluster; same as the upstream's)`);
    else out.lossy(`${p}.${field}`, `Envoy sets this per cluster, not per route: the route uses the upstream's ${JSON.stringify(theirs)}`, `${c}.${to}`);
  };
  same('timeouts.connect', call.timeouts.connect, u.timeouts.connect, 'connect_timeout');
  same('timeouts.idle', call.timeouts.idle, u.timeouts.idle, 'common_http_protocol_options.idle_timeout');
  same('loadBalancer.policy', call.loadBalancer.policy, u.loadBalancer.policy, 'lb_policy');
  const lb = call.loadBalancer;
  const inert = (what: string) => `applies to ${what} only; this route balances ${lb.policy} (no effect in inmesh either)`;
  if (lb.policy === 'least_request' || lb.policy === 'peak_ewma') same('loadBalancer.choiceCount', lb.choiceCount, u.loadBalancer.choiceCount, 'least_request_lb_config.choice_count');
  else out.dropped(`${p}.loadBalancer.choiceCount`, inert('least_request'));
  if (lb.policy === 'ring_hash') same('loadBalancer.minimumRingSize', lb.minimumRingSize, u.loadBalancer.minimumRingSize, 'ring_hash_lb_config.minimum_ring_size');
  else out.dropped(`${p}.loadBalancer.minimumRingSize`, inert('ring_hash'));
  out.dropped(`${p}.loadBalancer.ewmaDecay`, 'Envoy has no peak EWMA balancer');
  out.dropped(`${p}.loadBalancer.ewmaDefaultRtt`, 'Envoy has no peak EWMA balancer');
  if (call.retries.budget !== undefined) {
    same('retries.budget.percent', call.retries.budget.percent, u.retries.budget?.percent, 'circuit_breakers.thresholds[DEFAULT].retry_budget.budget_percent');
    same('retries.budget.minConcurrency', call.retries.budget.minConcurrency, u.retries.budget?.minConcurrency, 'circuit_breakers.thresholds[DEFAULT].retry_budget.min_retry_concurrency');
  }
}

function headerMatcher(h: Readonly<ResolvedHeaderMatch>): Json {
  if (h.exact !== undefined) return { name: h.name, string_match: { exact: h.exact } };
  if (h.prefix !== undefined) return { name: h.name, string_match: { prefix: h.prefix } };
  if (h.regex !== undefined) return { name: h.name, string_match: { safe_regex: { regex: h.regex } } };
  // Absence is presence inverted: `present_match: false` reads differently across Envoy versions.
  return h.present === false ? { name: h.name, present_match: true, invert_match: true } : { name: h.name, present_match: true };
}

function methodMatcher(methods: readonly string[], invert = false): Json {
  const matcher: Json = methods.length === 1 ? { exact: methods[0] } : { safe_regex: { regex: methods.join('|') } };
  return invert ? { name: ':method', string_match: matcher, invert_match: true } : { name: ':method', string_match: matcher };
}

/**
 * The routes for one call policy: the route itself and, when retries are
 * limited to idempotent methods and the route can see others, a route before
 * it for the same match and a non-idempotent method, with no retries.
 */
function routesFor(
  u: Readonly<ResolvedUpstream>,
  call: Readonly<ResolvedCallPolicy>,
  name: string,
  match: Json,
  parts: RouteParts,
  out: Reporter,
): Json[] {
  const action = routeAction(u, call, parts, out, call.retries.attempts);
  reportRetries(call, parts, out);
  const route = (n: string, m: Json, a: Json): Json => ({ name: n, match: m, route: a, per_request_buffer_limit_bytes: call.retries.maxBodyBytes });
  const methods = parts.methods;
  const r = call.retries;
  const idempotentOnly = r.idempotentOnly && r.attempts > 0;
  if (!idempotentOnly || (methods !== undefined && methods.every((m) => IDEMPOTENT.includes(m)))) {
    return [route(name, match, action)];
  }
  const noRetry = { ...action, retry_policy: retryPolicy(r, call.timeouts.perTry, 0) };
  if (methods !== undefined && !methods.some((m) => IDEMPOTENT.includes(m))) return [route(name, match, noRetry)];
  const headers = [...((match.headers as Json[] | undefined) ?? []), methodMatcher(IDEMPOTENT, true)];
  return [route(`${name}:non-idempotent`, { ...match, headers }, noRetry), route(name, match, action)];
}

function virtualHost(u: Readonly<ResolvedUpstream>, out: Reporter): Json {
  const p = `upstreams.${u.name}`;
  const vh = `${ROUTES_FILE}: virtual_hosts[${u.name}]`;
  const routes: Json[] = [];
  u.routes.forEach((r, i) => {
    const rp = `${p}.routes.${i}`;
    const to = `${vh}.routes[${r.name}]`;
    const match: Json = {};
    if (r.match.path !== undefined) {
      match.path = r.match.path;
      out.exact(`${rp}.match.path`, `${to}.match.path`);
    } else if (r.match.pathPrefix !== undefined) {
      match.prefix = r.match.pathPrefix;
      out.exact(`${rp}.match.pathPrefix`, `${to}.match.prefix`);
    } else {
      match.prefix = '/';
    }
    const headers: Json[] = [];
    if (r.match.methods !== undefined && r.match.methods.length > 0) {
      headers.push(methodMatcher(r.match.methods));
      out.exact(`${rp}.match.methods`, `${to}.match.headers[":method"]`);
    }
    r.match.headers.forEach((h, j) => {
      headers.push(headerMatcher(h));
      const hp = `${rp}.match.headers.${j}`;
      out.exact(`${hp}.name`, `${to}.match.headers[].name`);
      out.exact(`${hp}.exact`, `${to}.match.headers[].string_match.exact`);
      out.exact(`${hp}.prefix`, `${to}.match.headers[].string_match.prefix`);
      out.exact(`${hp}.regex`, `${to}.match.headers[].string_match.safe_regex (RE2, whole value, as inmesh)`);
      out.exact(`${hp}.present`, `${to}.match.headers[].present_match${h.present === false ? ' + invert_match' : ''}`);
    });
    if (headers.length > 0) match.headers = headers;
    out.exact(`${rp}.name`, `${to}.name`);
    routes.push(...routesFor(u, r, r.name, match, { path: rp, to, methods: r.match.methods }, out));
    reportClusterLevel(u, r, rp, out);
  });
  // The upstream's own call policy: the catch-all route after the named ones.
  routes.push(...routesFor(u, u, 'default', { prefix: '/' }, { path: p, to: `${vh}.routes[default]`, methods: undefined }, out));

  const host: Json = { name: u.name, domains: virtualHostDomains(u), routes };
  const rl = u.rateLimit;
  if (rl !== undefined) {
    const bucket = tokenBucket(rl.requestsPerSecond, rl.burst);
    host.typed_per_filter_config = {
      [LOCAL_RATELIMIT_FILTER]: {
        '@type': typeUrl(LOCAL_RATELIMIT_TYPE),
        stat_prefix: `inmesh_${u.name}`,
        token_bucket: bucket,
        filter_enabled: { runtime_key: `inmesh.${u.name}.ratelimit_enabled`, default_value: { numerator: 100, denominator: 'HUNDRED' } },
        filter_enforced: { runtime_key: `inmesh.${u.name}.ratelimit_enforced`, default_value: { numerator: 100, denominator: 'HUNDRED' } },
      },
    };
    const t = `${vh}.typed_per_filter_config["${LOCAL_RATELIMIT_FILTER}"].token_bucket`;
    const needs = `needs ${LOCAL_RATELIMIT_FILTER} in the listener's http_filters; the bucket refills every fill_interval (at least 50 ms), not continuously`;
    const perSidecar = rl.shared ? '; and it limits each sidecar, not all callers together' : '';
    out.lossy(`${p}.rateLimit.requestsPerSecond`, needs + perSidecar, `${t}.tokens_per_fill / fill_interval`);
    out.lossy(`${p}.rateLimit.burst`, needs + perSidecar, `${t}.max_tokens`);
    if (rl.shared) out.dropped(`${p}.rateLimit.shared`, 'a limit shared across callers needs envoy.filters.http.ratelimit and an external rate limit service; the local limit written applies per sidecar');
    else out.exact(`${p}.rateLimit.shared`, `${t} (a local limit per sidecar, as inmesh's per process)`);
  }
  return host;
}

/** The host names a caller uses for the upstream: its name and Consul's DNS form. */
function virtualHostDomains(u: Readonly<ResolvedUpstream>): string[] {
  const service = u.discovery.service ?? u.name;
  const domains = [u.name, `${service}.service.consul`];
  if (u.discovery.datacenter !== undefined) domains.push(`${service}.service.${u.discovery.datacenter}.consul`);
  return [...new Set(domains)];
}

/**
 * A token bucket for `rps` tokens a second: Envoy adds `tokens_per_fill`
 * every `fill_interval` (at least 50 ms), so the shortest interval from 50 ms
 * up that holds a whole number of tokens is used.
 */
export function tokenBucket(rps: number, burst: number): Json {
  for (let ms = MIN_FILL_INTERVAL_MS; ms <= 60_000; ms++) {
    const tokens = (rps * ms) / 1000;
    if (Math.abs(tokens - Math.round(tokens)) < 1e-9 && Math.round(tokens) >= 1) {
      return { max_tokens: Math.max(burst, Math.round(tokens)), tokens_per_fill: Math.round(tokens), fill_interval: protoDuration(ms) };
    }
  }
  throw new ExportError(`rateLimit.requestsPerSecond ${rps}: no Envoy token bucket (whole tokens per 50 ms to 60 s) refills at this rate`);
}

// ------------------------------------------------------------------ exporter

function exportEnvoy(input: ExportInput, report: Reporter): readonly ExportedFile[] {
  const out = scopedReporter(report, policyFields(input.policy));
  const upstreams = Object.values(input.policy.upstreams);
  const clusters = upstreams.map((u) => cluster(u, out));
  const hosts = upstreams.map((u) => virtualHost(u, out));
  report.droppedUnder(
    'defaults',
    'Envoy has no policy defaults: each exported cluster and route carries its resolved value, and a host with no upstream entry gets Envoy\'s own defaults',
  );
  if (input.service !== undefined) report.droppedUnder('inbound', 'the Envoy exporter writes the outbound side only (clusters and routes the caller uses)');
  report.droppedUnder('resources', RESOURCES_NOT_EXPRESSIBLE);
  const callers = input.callers.map((c) => c.source).join(', ');
  return [
    {
      name: CLUSTERS_FILE,
      format: 'json',
      scope: `the outbound clusters of the sidecar of each caller (${callers}): CDS, one cluster per upstream`,
      documents: [{ version_info: 'inmesh', type_url: typeUrl('envoy.config.cluster.v3.Cluster'), resources: clusters }],
    },
    {
      name: ROUTES_FILE,
      format: 'json',
      scope: `the outbound HTTP listener of the sidecar of each caller (${callers}): RDS route configuration "${ROUTE_CONFIG_NAME}", one virtual host per upstream`,
      documents: [
        {
          version_info: 'inmesh',
          type_url: typeUrl('envoy.config.route.v3.RouteConfiguration'),
          resources: [{ '@type': typeUrl('envoy.config.route.v3.RouteConfiguration'), name: ROUTE_CONFIG_NAME, virtual_hosts: hosts }],
        },
      ],
    },
  ];
}

export const envoyExporter: TargetExporter = {
  target: 'envoy',
  // The v3 xDS API: its fields are checked against the protos Envoy 1.3x ships (test/integration/export/envoy-proto.ts).
  versions: ['v3'],
  export: exportEnvoy,
};
