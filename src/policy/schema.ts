/**
 * The policy document schema: the single source of truth for the document
 * types (`PolicyDocument`), field validation, the published JSON Schema
 * (src/policy/policy.schema.json) and the field reference (docs/policy-reference.md).
 *
 * Every leaf field carries `.meta()` with a description, a unit, the built-in
 * default (read from defaults.ts, never restated) and `x-inmesh-maps`: where
 * the same intent lives in Istio (a path in the DestinationRule /
 * VirtualService CRD, checked by a test against the CRD schema), Consul config
 * entries and Envoy, or `sdkOnly` with the nearest equivalent.
 *
 * Rules that JSON Schema cannot express (duration ranges, regex syntax,
 * cross-field rules) are checked by validate.ts after this schema.
 */
import { z } from 'zod';
import { POLICY_DEFAULTS as D } from './defaults.ts';
import { DURATION_PATTERN, MAX_DURATION_MS, formatDuration, parseDuration } from './duration.ts';
import { unknownFieldMessage } from './suggest.ts';

/**
 * Where a field lives in each system a policy exports to. Every target has an
 * entry: a path or field there, or `none: <why>` when that target cannot say it.
 * Istio entries read `DestinationRule <path>` / `VirtualService <path>`, Gateway
 * API entries `HTTPRoute <path>`, Dapr entries `Resiliency <path>` when they
 * name a CRD field; tests walk those paths through the CRD schemas.
 */
export interface FieldMapping {
  /** `DestinationRule <path>` or `VirtualService <path>` in Istio's networking CRDs, or `none: <why>`. */
  istio: string;
  /** Consul config entry and field (with the version that has it), or `none: <why>`. */
  consul: string;
  /** `HTTPRoute <path>` (Gateway API, GAMMA), or `none: <why>`. */
  gatewayApi: string;
  /** Envoy v3 API field, or `none: <why>`. */
  envoy: string;
  /** `Resiliency <path>` or another Dapr setting, or `none: <why>`. */
  dapr: string;
  /** No proxy mesh (Istio, Consul, Gateway API, Envoy) has it: the SDK implements it alone. */
  sdkOnly?: true;
  /** For SDK-only fields: what to use instead in a sidecar mesh. */
  nearest?: string;
  /** Caveats of the mapping. */
  note?: string;
}

/** The prefix of a mapping entry that names no field of its target. */
export const NO_MAPPING = 'none: ';

const GW_NO_POLICY = 'none: HTTPRoute carries routing only; balancing, health and limits stay in the mesh\'s own policy resource';
const DAPR_NO_LB = 'none: Dapr service invocation picks an instance through its name-resolution component, with no setting';
const DAPR_NO_MATCH = 'none: a Resiliency target is a whole app id, with no request matching';
const DAPR_NO_POOL = 'none: daprd manages its connections to an app itself';
const DAPR_NO_OUTLIER = 'none: Dapr ejects no single instance (its circuit breakers are per app id and method, over every instance)';
const EWMA_NONE = 'none: no latency-aware balancer';
const IDEMPOTENT_NONE = 'none: the proxy retries whatever the route allows';
const LIMITS_OFF_NONE = 'none: no off switch; every threshold at its maximum instead';
const BREAKER_NONE = 'none: no error-rate breaker over the whole upstream';

export type FieldUnit = 'duration' | 'percent' | 'count' | 'bytes' | 'requests/s' | 'status code';

interface FieldInfo {
  unit?: FieldUnit;
  default?: unknown;
}

const DURATION_RE = new RegExp(DURATION_PATTERN);

// ---------------------------------------------------------------- leaf builders

function field<T extends z.ZodType>(schema: T, description: string, maps: FieldMapping, info: FieldInfo = {}) {
  return schema.optional().meta({
    description,
    'x-inmesh-maps': maps,
    ...(info.unit === undefined ? {} : { 'x-inmesh-unit': info.unit }),
    ...(info.default === undefined ? {} : { default: info.default }),
  });
}

function int(min: number, max?: number) {
  const message = max === undefined ? `expected an integer of at least ${min}` : `expected an integer from ${min} to ${max}`;
  const schema = z.int({ error: message }).min(min, { error: message });
  return max === undefined ? schema : schema.max(max, { error: message });
}

function percent() {
  const message = 'expected a percentage from 0 to 100';
  return z.number({ error: message }).min(0, { error: message }).max(100, { error: message });
}

function positive(max: number) {
  const message = `expected a number greater than 0 and at most ${max}`;
  return z.number({ error: message }).positive({ error: message }).max(max, { error: message });
}

function bool() {
  return z.boolean({ error: 'expected true or false' });
}

function text(what = 'a non-empty string') {
  return z.string({ error: `expected ${what}` }).min(1, { error: `expected ${what}` });
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: `expected one of ${values.join(', ')}` });
}

function list<T extends z.ZodType>(item: T, what: string) {
  return z.array(item, { error: `expected a list of ${what}` });
}

/** The hint for a number written where a duration string belongs: the same milliseconds as a string, when in range. */
function numberHint(input: number, minMs: number, maxMs: number): string {
  const lead = 'numbers are not durations: write a string';
  if (!Number.isFinite(input) || input > maxMs) return `${lead}; the maximum here is "${formatDuration(maxMs)}"`;
  if (input < 0) return `${lead}, and a duration must be at least "${formatDuration(minMs)}" (it cannot be negative)`;
  const ms = Math.max(minMs, Math.round(input));
  return `${lead} such as "${formatDuration(ms)}" (${String(ms)} millisecond${ms === 1 ? "" : "s"}) or "10s"`;
}

/**
 * A duration string ("250ms", "10s", "1m30s"). Numbers are refused with a hint,
 * so that `timeout: 250` is never silently read as seconds or milliseconds.
 */
function duration(minMs: number, maxMs = MAX_DURATION_MS) {
  const shape = 'expected a duration such as "250ms", "10s" or "1m30s" (units h, m, s, ms)';
  const range = `expected a duration from ${formatDuration(minMs)} to ${formatDuration(maxMs)}`;
  return z
    .string({
      error: (issue) => (typeof issue.input === 'number' ? numberHint(issue.input, minMs, maxMs) : shape),
    })
    .regex(DURATION_RE, { error: shape, abort: true })
    .superRefine((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === undefined) ctx.addIssue({ code: 'custom', message: 'expected a whole number of milliseconds' });
      else if (ms < minMs || ms > maxMs) ctx.addIssue({ code: 'custom', message: range });
    });
}

/** An object that rejects unknown fields, suggesting the closest known one. */
function block<S extends z.ZodRawShape>(shape: S, what: string) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => unknownFieldMessage(key, known)).join('\n');
      return `expected ${what}`;
    },
  });
}

/** `false` turns an inherited block off; an object sets it. */
function orFalse<T extends z.ZodType>(schema: T, what: string) {
  return z.union([z.literal(false), schema], { error: `expected false (to turn it off) or ${what}` });
}

const ms = (value: number): string => formatDuration(value);

// ---------------------------------------------------------------- blocks

/** The methods `retries.idempotentOnly` retries: idempotent by RFC 9110. */
export const IDEMPOTENT_METHODS = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'] as const;
const IDEMPOTENT_NOTE = IDEMPOTENT_METHODS.join(' ');

export const discoverySchema = block(
  {
    registry: field(
      oneOf(['consul', 'static', 'file']),
      'Where endpoints come from: the Consul catalogue, a fixed list (`endpoints`), or a watched file (`file`).',
      { istio: 'none: endpoints come from Kubernetes or a ServiceEntry, not from a DestinationRule', consul: 'catalog/health API: /v1/health/service/<service>', gatewayApi: 'none: backends are Kubernetes Services', envoy: 'cluster.type (EDS for consul/file; STATIC for static IP endpoints, STRICT_DNS for host names)', dapr: 'Configuration nameResolution.component (consul, kubernetes, mdns): not a Resiliency field' },
      { default: D.discovery.registry },
    ),
    service: field(
      text('a service name'),
      'Name of the service in the registry. Defaults to the upstream\'s key; cannot be set in `defaults`.',
      { istio: 'DestinationRule host', consul: 'service-resolver Name, service-router/service-splitter Name (the catalogue service name)', gatewayApi: 'HTTPRoute parentRefs[].name (GAMMA: the Service the route configures) and rules[].backendRefs[].name', envoy: 'cluster.eds_cluster_config.service_name', dapr: 'Resiliency targets.apps{} (the app id)' },
    ),
    datacenter: field(text('a datacenter name'), 'Consul datacenter to query instead of the agent\'s own.', { istio: 'none: one flat mesh; multi-cluster is not policy', consul: 'service-resolver Redirect.Datacenter', gatewayApi: 'none: one cluster', envoy: 'none: one flat endpoint set per cluster', dapr: 'none: Dapr\'s consul name resolution queries the agent\'s own datacenter' }),
    tags: field(
      list(text('a tag'), 'tags'),
      'Only instances carrying all of these tags.',
      { istio: 'DestinationRule subsets[].labels', consul: 'service-resolver Subsets.<name>.Filter ("<tag>" in Service.Tags, on every subset; subset `all` + DefaultSubset when there is no other)', gatewayApi: 'none: a subset is a separate Service in rules[].backendRefs', envoy: 'cluster.lb_subset_config.default_subset (endpoint metadata envoy.lb `tag.<tag>: true`, published by the EDS server)', dapr: 'none: service invocation reaches every instance of an app id', note: 'Sidecars express a tag filter as a subset; export creates one.' },
      { default: D.discovery.tags },
    ),
    passingOnly: field(
      bool(),
      'Only instances whose health checks all pass.',
      { istio: 'none: Istio sends only to ready endpoints (Kubernetes readiness)', consul: 'service-resolver Subsets.<name>.OnlyPassing on every subset (false is lossy: Consul still never sends to instances whose checks are critical)', gatewayApi: 'none: Kubernetes readiness decides (no warning state)', envoy: 'EDS lb_endpoints[].health_status', dapr: 'none: the name-resolution component decides (consul: passing only)' },
      { default: D.discovery.passingOnly },
    ),
    endpoints: field(
      list(
        z
          .string({ error: 'expected "host:port"' })
          .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/, { error: 'expected "host:port"', abort: true })
          .refine(
            (value) => {
              const port = Number(value.slice(value.lastIndexOf(':') + 1));
              return port >= 1 && port <= 65_535;
            },
            { error: 'expected "host:port" with a port from 1 to 65535' },
          ),
        '"host:port" entries',
      ),
      'Static registry: the fixed list of endpoints. Required with `registry: static`, refused otherwise. `INMESH_ENDPOINTS_<SERVICE>` overrides it.',
      { istio: 'none: a ServiceEntry lists static endpoints, no DestinationRule field', consul: 'none: Consul knows only registered services', gatewayApi: 'none: backends are Services', envoy: 'cluster.load_assignment (type STATIC)', dapr: 'none: app ids are resolved by the name-resolution component' },
      { default: D.discovery.endpoints },
    ),
    file: field(text('a file path'), 'File registry: path of a JSON or YAML file of endpoints, watched for changes. Required with `registry: file`.', { istio: 'none: no file-based discovery', consul: 'none: Consul knows only registered services', gatewayApi: 'none: backends are Services', envoy: 'cluster.eds_cluster_config.eds_config.path_config_source.path (a ClusterLoadAssignment file, not inmesh\'s endpoint list)', dapr: 'none: app ids are resolved by the name-resolution component' }),
  },
  'an object with registry, service, datacenter, tags, passingOnly, endpoints, file',
);

export const hashOnSchema = block(
  {
    header: field(text('a header name'), 'Hash on this request header.', { istio: 'DestinationRule trafficPolicy.loadBalancer.consistentHash.httpHeaderName', consul: 'service-resolver LoadBalancer.HashPolicies[] {Field: header, FieldValue} (1.9+)', gatewayApi: 'HTTPRoute rules[].sessionPersistence.sessionName (type Header: session affinity, not a hash)', envoy: 'route.hash_policy[].header.header_name', dapr: DAPR_NO_LB }),
    cookie: field(text('a cookie name'), 'Hash on this cookie (never generated by inmesh: without it, the key is random).', { istio: 'DestinationRule trafficPolicy.loadBalancer.consistentHash.httpCookie.name', consul: 'service-resolver LoadBalancer.HashPolicies[] {Field: cookie, FieldValue} (1.9+)', gatewayApi: 'HTTPRoute rules[].sessionPersistence.sessionName (type Cookie: session affinity, not a hash)', envoy: 'route.hash_policy[].cookie.name', dapr: DAPR_NO_LB }),
    queryParameter: field(text('a query parameter name'), 'Hash on this query parameter.', { istio: 'DestinationRule trafficPolicy.loadBalancer.consistentHash.httpQueryParameterName', consul: 'service-resolver LoadBalancer.HashPolicies[] {Field: query_parameter, FieldValue} (1.9+)', gatewayApi: 'none: session persistence reads a cookie or a header only', envoy: 'route.hash_policy[].query_parameter.name', dapr: DAPR_NO_LB }),
  },
  'an object with exactly one of header, cookie, queryParameter',
)
  .superRefine((value, ctx) => {
    const set = Object.values(value).filter((v) => v !== undefined).length;
    if (set !== 1) ctx.addIssue({ code: 'custom', message: 'expected exactly one of header, cookie, queryParameter' });
  })
  .meta({ oneOf: [{ required: ['header'] }, { required: ['cookie'] }, { required: ['queryParameter'] }] });

const hashOnField = hashOnSchema.optional().meta({
  description: 'ring_hash only: where the hash key comes from. Without it each request gets a random key.',
});

export const loadBalancerSchema = block(
  {
    policy: field(
      oneOf(['round_robin', 'random', 'least_request', 'ring_hash', 'peak_ewma']),
      'Balancing algorithm. `peak_ewma` (latency-aware, Linkerd\'s default) has no sidecar equivalent: it exports as least_request.',
      { istio: 'DestinationRule trafficPolicy.loadBalancer.simple', consul: 'service-resolver LoadBalancer.Policy (1.9+)', gatewayApi: GW_NO_POLICY, envoy: 'cluster.lb_policy', dapr: DAPR_NO_LB, note: 'Istio takes ring_hash as loadBalancer.consistentHash; Istio\'s own default is LEAST_REQUEST, so an exporter must write the algorithm explicitly. peak_ewma maps nowhere (nearest: least_request).' },
      { default: D.loadBalancer.policy },
    ),
    choiceCount: field(
      int(2, 100),
      'least_request: how many random endpoints are compared per pick (2 = power of two choices).',
      { istio: 'none: Istio always uses Envoy\'s choice_count of 2', consul: 'service-resolver LoadBalancer.LeastRequestConfig.ChoiceCount (1.9+)', gatewayApi: GW_NO_POLICY, envoy: 'cluster.least_request_lb_config.choice_count', dapr: DAPR_NO_LB },
      { unit: 'count', default: D.loadBalancer.choiceCount },
    ),
    hashOn: hashOnField,
    minimumRingSize: field(
      int(1, 8_388_608),
      'ring_hash: minimum number of virtual nodes on the ring.',
      { istio: 'DestinationRule trafficPolicy.loadBalancer.consistentHash.ringHash.minimumRingSize', consul: 'service-resolver LoadBalancer.RingHashConfig.MinimumRingSize (1.9+)', gatewayApi: GW_NO_POLICY, envoy: 'cluster.ring_hash_lb_config.minimum_ring_size', dapr: DAPR_NO_LB },
      { unit: 'count', default: D.loadBalancer.minimumRingSize },
    ),
    ewma: block(
      {
        decay: field(
          duration(1),
          'peak_ewma: decay window of the latency moving average.',
          { istio: EWMA_NONE, consul: EWMA_NONE, gatewayApi: EWMA_NONE, envoy: EWMA_NONE, dapr: EWMA_NONE, sdkOnly: true, nearest: 'least_request (Linkerd: built-in peak EWMA)' },
          { unit: 'duration', default: ms(D.loadBalancer.ewmaDecay) },
        ),
        defaultRtt: field(
          duration(0, 60_000),
          'peak_ewma: latency assumed for an endpoint with no sample yet.',
          { istio: EWMA_NONE, consul: EWMA_NONE, gatewayApi: EWMA_NONE, envoy: EWMA_NONE, dapr: EWMA_NONE, sdkOnly: true, nearest: 'least_request (Linkerd: built-in peak EWMA)' },
          { unit: 'duration', default: ms(D.loadBalancer.ewmaDefaultRtt) },
        ),
      },
      'an object with decay, defaultRtt',
    )
      .optional()
      .meta({ description: 'peak_ewma tuning (SDK-only).' }),
  },
  'an object with policy, choiceCount, hashOn, minimumRingSize, ewma',
);

/** A route may only change the hash key: the algorithm belongs to the upstream (Envoy: cluster vs route hash_policy). */
export const routeLoadBalancerSchema = block({ hashOn: hashOnField }, 'an object with hashOn');

export const timeoutsSchema = block(
  {
    connect: field(
      duration(1),
      'TCP (and TLS) connect timeout of a new connection.',
      { istio: 'DestinationRule trafficPolicy.connectionPool.tcp.connectTimeout', consul: 'service-resolver ConnectTimeout', gatewayApi: 'none: HTTPRoute has no connection settings', envoy: 'cluster.connect_timeout', dapr: DAPR_NO_POOL },
      { unit: 'duration', default: ms(D.timeouts.connect) },
    ),
    request: field(
      duration(0),
      'Total deadline of a call, every attempt and backoff included. "0s" = none.',
      { istio: 'VirtualService http[].timeout', consul: 'service-router Routes[].Destination.RequestTimeout, the upstream\'s own on a last catch-all route (0 there means Envoy\'s 15 s: none is written as 24h, lossy)', gatewayApi: 'HTTPRoute rules[].timeouts.request', envoy: 'route.route.timeout', dapr: 'Resiliency policies.timeouts{} only when perTry is 0s, and then per attempt: a Dapr timeout bounds each attempt, not the call with its retries' },
      { unit: 'duration', default: ms(D.timeouts.request) },
    ),
    perTry: field(
      duration(0),
      'Deadline of one attempt. "0s" = none (only `request` applies). At most `request`.',
      { istio: 'VirtualService http[].retries.perTryTimeout', consul: 'none: service-router has no per-try timeout in any version (0 is exact)', gatewayApi: 'HTTPRoute rules[].timeouts.backendRequest', envoy: 'route.route.retry_policy.per_try_timeout', dapr: 'Resiliency policies.timeouts{}' },
      { unit: 'duration', default: ms(D.timeouts.perTry) },
    ),
    idle: field(
      duration(1),
      'How long an idle keep-alive socket is kept in the pool.',
      { istio: 'DestinationRule trafficPolicy.connectionPool.http.idleTimeout', consul: 'none: no connection idle timeout in config entries (router Destination.IdleTimeout is a stream-idle timeout, newer than 1.8, refused by 1.8.7)', gatewayApi: 'none: HTTPRoute has no connection settings', envoy: 'cluster.typed_extension_protocol_options[envoy.extensions.upstreams.http.v3.HttpProtocolOptions].common_http_protocol_options.idle_timeout', dapr: DAPR_NO_POOL },
      { unit: 'duration', default: ms(D.timeouts.idle) },
    ),
  },
  'an object with connect, request, perTry, idle',
);

export const RETRY_ON = [
  'connect-failure',
  'refused-stream',
  'reset',
  '5xx',
  'gateway-error',
  'retriable-4xx',
  'retriable-status-codes',
] as const;

export const retryBudgetSchema = block(
  {
    percent: field(
      percent(),
      'Retries in flight may be at most this percent of the requests in flight.',
      { istio: 'DestinationRule trafficPolicy.retryBudget.percent', consul: 'none: Consul has no retry budget', gatewayApi: 'none: only the experimental XBackendTrafficPolicy (gateway.networking.x-k8s.io, its own CRD) retryConstraint (GEP-3388), a rate, not a share of requests in flight', envoy: 'cluster.circuit_breakers.thresholds[].retry_budget.budget_percent (no budget: max_retries 4294967295, since an unset max_retries means 3)', dapr: 'none: Dapr has no retry budget' },
      { unit: 'percent', default: D.retries.budgetPercent },
    ),
    minConcurrency: field(
      int(0, 1_000_000),
      'Retries are always allowed while fewer than this many are in flight.',
      { istio: 'DestinationRule trafficPolicy.retryBudget.minRetryConcurrency', consul: 'none: Consul has no retry budget', gatewayApi: 'none: only the experimental XBackendTrafficPolicy (gateway.networking.x-k8s.io, its own CRD) retryConstraint (GEP-3388), a rate, not a share of requests in flight', envoy: 'cluster.circuit_breakers.thresholds[].retry_budget.min_retry_concurrency', dapr: 'none: Dapr has no retry budget' },
      { unit: 'count', default: D.retries.budgetMinConcurrency },
    ),
  },
  'an object with percent, minConcurrency',
);

/** Most retries after the first try, for an upstream and a resource (and a Guard policy given in code). */
export const MAX_RETRY_ATTEMPTS = 10;

export const retriesSchema = block(
  {
    attempts: field(
      int(0, MAX_RETRY_ATTEMPTS),
      'Retries after the first try (Istio `attempts`, Envoy `num_retries`): 2 means at most 3 tries. 0 = no retries. gRPC\'s maxAttempts is this + 1.',
      { istio: 'VirtualService http[].retries.attempts', consul: 'service-router Routes[].Destination.NumRetries (0 with a retry condition still retries once: 0 is written with no condition)', gatewayApi: 'HTTPRoute rules[].retry.attempts (minimum 1: no way to say none)', envoy: 'route.route.retry_policy.num_retries', dapr: 'Resiliency policies.retries{}.maxRetries' },
      { unit: 'count', default: D.retries.attempts },
    ),
    retryOn: field(
      list(oneOf(RETRY_ON), 'retry conditions'),
      'What is retried, in Envoy\'s `retry_on` words: connect-failure, refused-stream, reset, 5xx, gateway-error (502/503/504), retriable-4xx (409), retriable-status-codes.',
      { istio: 'VirtualService http[].retries.retryOn', consul: 'service-router Routes[].Destination.RetryOnConnectFailure, RetryOnStatusCodes (gateway-error: 502, 503, 504); RetryOn[] (1.15+) for the rest', gatewayApi: 'HTTPRoute rules[].retry.codes (status codes only)', envoy: 'route.route.retry_policy.retry_on', dapr: 'Resiliency policies.retries{}.matching.httpStatusCodes (Dapr 1.15+, not in the CRD copy)' },
      { default: D.retries.retryOn },
    ),
    retriableStatusCodes: field(
      list(int(400, 599), 'HTTP status codes'),
      'Status codes retried when `retryOn` has retriable-status-codes (required then): 400 to 599, as a response below 400 is never retried.',
      { istio: 'VirtualService http[].retries.retryOn', consul: 'service-router Routes[].Destination.RetryOnStatusCodes', gatewayApi: 'HTTPRoute rules[].retry.codes', envoy: 'route.route.retry_policy.retriable_status_codes', dapr: 'Resiliency policies.retries{}.matching.httpStatusCodes (Dapr 1.15+, not in the CRD copy)', note: 'Istio lists the codes inside retryOn ("503,retriable-status-codes").' },
      { unit: 'status code', default: D.retries.retriableStatusCodes },
    ),
    backoff: block(
      {
        base: field(
          duration(1, 60_000),
          'Backoff base: retry n waits a random time in [0, base × (2^n − 1)] (full jitter), capped at `max`.',
          { istio: 'VirtualService http[].retries.backoff', consul: 'none: Consul sets no retry backoff (Envoy\'s 25 ms base applies)', gatewayApi: 'HTTPRoute rules[].retry.backoff (a minimum wait)', envoy: 'route.route.retry_policy.retry_back_off.base_interval', dapr: 'none: export writes policy exponential, which starts at a fixed 500 ms and grows ×1.5 with ±50 % randomization (a constant duration would lose the growth and the cap)' },
          { unit: 'duration', default: ms(D.retries.backoffBase) },
        ),
        max: field(
          duration(1, 300_000),
          'Backoff cap. At least `base`.',
          { istio: 'none: Istio takes a single backoff value (max = 10 × base)', consul: 'none: Consul sets no retry backoff (Envoy\'s 250 ms cap applies)', gatewayApi: 'none: implementations choose the cap', envoy: 'route.route.retry_policy.retry_back_off.max_interval', dapr: 'Resiliency policies.retries{}.maxInterval' },
          { unit: 'duration', default: ms(D.retries.backoffMax) },
        ),
      },
      'an object with base, max',
    )
      .optional()
      .meta({ description: 'Exponential backoff with full jitter, as Envoy.' }),
    idempotentOnly: field(
      bool(),
      `Retry only idempotent methods (${IDEMPOTENT_NOTE}) unless the call says otherwise.`,
      { istio: IDEMPOTENT_NONE, consul: IDEMPOTENT_NONE, gatewayApi: IDEMPOTENT_NONE, envoy: IDEMPOTENT_NONE, dapr: IDEMPOTENT_NONE, sdkOnly: true, nearest: 'a route that matches only idempotent methods carries the retry policy' },
      { default: D.retries.idempotentOnly },
    ),
    budget: orFalse(retryBudgetSchema, 'an object with percent, minConcurrency')
      .optional()
      .meta({ description: 'Retry budget (Envoy retry_budget); `false` turns it off.' }),
    maxBodyBytes: field(
      int(0, 1_073_741_824),
      'Largest request body kept in memory for replay; a larger body is sent once and never retried.',
      { istio: 'none: Istio sets no per-route buffer limit', consul: 'none: Consul sets no per-route buffer limit', gatewayApi: 'none: HTTPRoute has no buffer setting', envoy: 'route.per_request_buffer_limit_bytes', dapr: 'none: daprd buffers by its own http-max-request-size' },
      { unit: 'bytes', default: D.retries.maxBodyBytes },
    ),
    maxRetryAfter: field(
      duration(0),
      'Honour `Retry-After` on 429/503 up to this long; a longer wait is not retried. "0s" = ignore the header.',
      { istio: 'none: Istio does not honour Retry-After', consul: 'none: Consul does not honour Retry-After', gatewayApi: 'none: HTTPRoute has no Retry-After setting', envoy: 'route.route.retry_policy.rate_limited_retry_back_off.max_interval (reset_headers retry-after, SECONDS: no HTTP date)', dapr: 'none: Dapr does not honour Retry-After' },
      { unit: 'duration', default: ms(D.retries.maxRetryAfter) },
    ),
  },
  'an object with attempts, retryOn, retriableStatusCodes, backoff, idempotentOnly, budget, maxBodyBytes, maxRetryAfter',
);

export const outlierDetectionSchema = block(
  {
    consecutive5xx: field(
      int(0, 1_000_000),
      'Eject an endpoint after this many consecutive 5xx; local timeouts, resets and connect failures count (Envoy). 0 = off.',
      { istio: 'DestinationRule trafficPolicy.outlierDetection.consecutive5xxErrors', consul: 'the caller\'s service-defaults UpstreamConfig.Overrides[].PassiveHealthCheck.MaxFailures (1.10+; 0 = EnforcingConsecutive5xx 0, since MaxFailures 0 is Envoy\'s 5)', gatewayApi: GW_NO_POLICY, envoy: 'cluster.outlier_detection.consecutive_5xx (0 = off: enforcing_consecutive_5xx 0)', dapr: DAPR_NO_OUTLIER },
      { unit: 'count', default: D.outlierDetection.consecutive5xx },
    ),
    consecutiveGatewayErrors: field(
      int(0, 1_000_000),
      'Eject after this many consecutive 502/503/504 or connect failures. 0 = off. Useful only below `consecutive5xx`.',
      { istio: 'DestinationRule trafficPolicy.outlierDetection.consecutiveGatewayErrors', consul: 'none: Consul configures consecutive 5xx only', gatewayApi: GW_NO_POLICY, envoy: 'cluster.outlier_detection.consecutive_gateway_failure (with enforcing_consecutive_gateway_failure 100; 0 = off: enforcing 0)', dapr: DAPR_NO_OUTLIER },
      { unit: 'count', default: D.outlierDetection.consecutiveGatewayErrors },
    ),
    interval: field(
      duration(1),
      'How often ejections are reviewed (ejected endpoints whose time is up return).',
      { istio: 'DestinationRule trafficPolicy.outlierDetection.interval', consul: 'the caller\'s service-defaults UpstreamConfig.Overrides[].PassiveHealthCheck.Interval (1.10+)', gatewayApi: GW_NO_POLICY, envoy: 'cluster.outlier_detection.interval', dapr: DAPR_NO_OUTLIER },
      { unit: 'duration', default: ms(D.outlierDetection.interval) },
    ),
    baseEjectionTime: field(
      duration(1),
      'Ejection time = this × number of times the endpoint was ejected, capped at `maxEjectionTime`.',
      { istio: 'DestinationRule trafficPolicy.outlierDetection.baseEjectionTime', consul: 'the caller\'s service-defaults UpstreamConfig.Overrides[].PassiveHealthCheck.BaseEjectionTime (1.15+)', gatewayApi: GW_NO_POLICY, envoy: 'cluster.outlier_detection.base_ejection_time', dapr: DAPR_NO_OUTLIER },
      { unit: 'duration', default: ms(D.outlierDetection.baseEjectionTime) },
    ),
    maxEjectionTime: field(
      duration(1),
      'Cap of the ejection time. At least `baseEjectionTime`.',
      { istio: 'none: Istio has no cap (Envoy\'s 300 s applies)', consul: 'none: Consul has no cap (Envoy\'s 300 s applies)', gatewayApi: GW_NO_POLICY, envoy: 'cluster.outlier_detection.max_ejection_time', dapr: DAPR_NO_OUTLIER },
      { unit: 'duration', default: ms(D.outlierDetection.maxEjectionTime) },
    ),
    maxEjectionPercent: field(
      percent(),
      'At most this percent of endpoints ejected at once; at least one may always be.',
      { istio: 'DestinationRule trafficPolicy.outlierDetection.maxEjectionPercent', consul: 'the caller\'s service-defaults UpstreamConfig.Overrides[].PassiveHealthCheck.MaxEjectionPercent (1.15+; 0 ejects none there, lossy)', gatewayApi: GW_NO_POLICY, envoy: 'cluster.outlier_detection.max_ejection_percent (+ always_eject_one_host)', dapr: DAPR_NO_OUTLIER, note: 'Istio reads 0 as its default of 10 %.' },
      { unit: 'percent', default: D.outlierDetection.maxEjectionPercent },
    ),
    panicThresholdPercent: field(
      percent(),
      'Below this percent of healthy endpoints the balancer ignores health and uses them all (panic). 0 = never.',
      { istio: 'DestinationRule trafficPolicy.outlierDetection.minHealthPercent', consul: 'none: Consul sets no panic threshold (Envoy\'s 50 % applies)', gatewayApi: GW_NO_POLICY, envoy: 'cluster.common_lb_config.healthy_panic_threshold', dapr: DAPR_NO_OUTLIER, note: 'Istio passes minHealthPercent straight to Envoy\'s healthy_panic_threshold.' },
      { unit: 'percent', default: D.outlierDetection.panicThresholdPercent },
    ),
  },
  'an object with consecutive5xx, consecutiveGatewayErrors, interval, baseEjectionTime, maxEjectionTime, maxEjectionPercent, panicThresholdPercent',
);

const LIMITS_OFF_NEAREST = 'every threshold at its maximum (Envoy max_requests / max_pending_requests 4294967295; Istio http2MaxRequests / http1MaxPendingRequests 2147483647, its fields being int32; Consul Limits likewise): no sidecar has an off switch';

export const limitsSchema = block(
  {
    enabled: field(
      bool(),
      'Turn the request limits (`maxRequests`, `maxPendingRequests`) on or off. Off, no limit layer runs: the resolved policy carries both as Infinity. `maxConnections` and `maxRequestsPerConnection` size the connection pool and apply either way.',
      { istio: LIMITS_OFF_NONE, consul: LIMITS_OFF_NONE, gatewayApi: LIMITS_OFF_NONE, envoy: LIMITS_OFF_NONE, dapr: LIMITS_OFF_NONE, sdkOnly: true, nearest: LIMITS_OFF_NEAREST },
      { default: D.limits.enabled },
    ),
    maxConnections: field(
      int(1, 4_294_967_295),
      'Most connections open to the whole upstream.',
      { istio: 'DestinationRule trafficPolicy.connectionPool.tcp.maxConnections', consul: 'the caller\'s service-defaults UpstreamConfig.Overrides[].Limits.MaxConnections (1.10+)', gatewayApi: GW_NO_POLICY, envoy: 'cluster.circuit_breakers.thresholds[].max_connections', dapr: DAPR_NO_POOL, note: 'Istio\'s field is int32.' },
      { unit: 'count', default: D.limits.maxConnections },
    ),
    maxPendingRequests: field(
      int(0, 4_294_967_295),
      'Most requests waiting for a connection; beyond it calls are shed (never counted against an endpoint).',
      { istio: 'DestinationRule trafficPolicy.connectionPool.http.http1MaxPendingRequests', consul: 'the caller\'s service-defaults UpstreamConfig.Overrides[].Limits.MaxPendingRequests (1.10+; limits off: 4294967295, lossy)', gatewayApi: GW_NO_POLICY, envoy: 'cluster.circuit_breakers.thresholds[].max_pending_requests (Envoy queues only requests waiting for a connection; over max_requests it refuses at once)', dapr: DAPR_NO_POOL, note: 'Istio\'s field is int32 and reads 0 as unlimited.' },
      { unit: 'count', default: D.limits.maxPendingRequests },
    ),
    maxRequests: field(
      int(1, 4_294_967_295),
      'Most requests in flight to the whole upstream.',
      { istio: 'DestinationRule trafficPolicy.connectionPool.http.http2MaxRequests', consul: 'the caller\'s service-defaults UpstreamConfig.Overrides[].Limits.MaxConcurrentRequests (1.10+; limits off: 4294967295, lossy)', gatewayApi: GW_NO_POLICY, envoy: 'cluster.circuit_breakers.thresholds[].max_requests', dapr: DAPR_NO_POOL, note: 'Istio\'s field is int32.' },
      { unit: 'count', default: D.limits.maxRequests },
    ),
    maxRequestsPerConnection: field(
      int(0, 4_294_967_295),
      'Close a connection after this many requests. 0 = unlimited.',
      { istio: 'DestinationRule trafficPolicy.connectionPool.http.maxRequestsPerConnection', consul: 'none: Consul has no per-connection request cap', gatewayApi: GW_NO_POLICY, envoy: 'cluster.typed_extension_protocol_options[envoy.extensions.upstreams.http.v3.HttpProtocolOptions].common_http_protocol_options.max_requests_per_connection (omitted for 0: unlimited)', dapr: DAPR_NO_POOL, note: 'Istio\'s field is int32 (0 = unlimited there too).' },
      { unit: 'count', default: D.limits.maxRequestsPerConnection },
    ),
  },
  'an object with enabled, maxConnections, maxPendingRequests, maxRequests, maxRequestsPerConnection',
);

const BREAKER_NEAREST = 'outlierDetection (ejects single endpoints); sidecar "circuit breaking" is `limits`';

export const circuitBreakerSchema = block(
  {
    enabled: field(
      bool(),
      'Turn the error-rate breaker on or off.',
      { istio: BREAKER_NONE, consul: BREAKER_NONE, gatewayApi: BREAKER_NONE, envoy: BREAKER_NONE, dapr: 'Resiliency targets.apps{}.circuitBreaker (named only when enabled; daprd keeps one breaker per app id and method)', sdkOnly: true, nearest: BREAKER_NEAREST },
      { default: D.circuitBreaker.enabled },
    ),
    errorThresholdPercent: field(
      percent(),
      'Open when at least this percent of the calls in the window failed.',
      { istio: BREAKER_NONE, consul: BREAKER_NONE, gatewayApi: BREAKER_NONE, envoy: BREAKER_NONE, dapr: 'Resiliency policies.circuitBreakers{}.trip (a CEL expression over requests and totalFailures)', sdkOnly: true, nearest: BREAKER_NEAREST },
      { unit: 'percent', default: D.circuitBreaker.errorThresholdPercent },
    ),
    minimumRequests: field(
      int(1, 1_000_000),
      'No decision before this many calls in the window.',
      { istio: BREAKER_NONE, consul: BREAKER_NONE, gatewayApi: BREAKER_NONE, envoy: BREAKER_NONE, dapr: 'Resiliency policies.circuitBreakers{}.trip (the `requests >= n` part)', sdkOnly: true, nearest: BREAKER_NEAREST },
      { unit: 'count', default: D.circuitBreaker.minimumRequests },
    ),
    window: field(
      duration(100, 3_600_000),
      'Rolling window the error rate is measured over.',
      { istio: BREAKER_NONE, consul: BREAKER_NONE, gatewayApi: BREAKER_NONE, envoy: BREAKER_NONE, dapr: 'Resiliency policies.circuitBreakers{}.interval (a tumbling window, not a rolling one)', sdkOnly: true, nearest: BREAKER_NEAREST },
      { unit: 'duration', default: ms(D.circuitBreaker.window) },
    ),
    halfOpenAfter: field(
      duration(1),
      'Open → half-open (one trial call) after this long.',
      { istio: BREAKER_NONE, consul: BREAKER_NONE, gatewayApi: BREAKER_NONE, envoy: BREAKER_NONE, dapr: 'Resiliency policies.circuitBreakers{}.timeout', sdkOnly: true, nearest: BREAKER_NEAREST },
      { unit: 'duration', default: ms(D.circuitBreaker.halfOpenAfter) },
    ),
  },
  'an object with enabled, errorThresholdPercent, minimumRequests, window, halfOpenAfter',
);

const RATE_MAX = 1_000_000;

export const rateLimitSchema = block(
  {
    requestsPerSecond: field(
      positive(RATE_MAX),
      'Token refill rate. Required when the block is set.',
      { istio: 'none: needs an EnvoyFilter (local_ratelimit on the outbound cluster)', consul: 'none: service-defaults RateLimits (Enterprise, 1.17+) limits the destination\'s inbound requests, not one caller\'s', gatewayApi: 'none: HTTPRoute has no rate limit', envoy: 'virtual_hosts[].typed_per_filter_config[envoy.filters.http.local_ratelimit].token_bucket.tokens_per_fill / fill_interval (the filter must be in the listener\'s http_filters)', dapr: 'none: Dapr\'s ratelimit middleware limits requests into the app, not calls out of it' },
      { unit: 'requests/s' },
    ),
    burst: field(
      int(1, RATE_MAX),
      'Bucket size: requests allowed at once after a quiet period. Defaults to requestsPerSecond (rounded up).',
      { istio: 'none: needs an EnvoyFilter (local_ratelimit on the outbound cluster)', consul: 'none: service-defaults RateLimits (Enterprise, 1.17+) limits the destination\'s inbound requests, not one caller\'s', gatewayApi: 'none: HTTPRoute has no rate limit', envoy: 'virtual_hosts[].typed_per_filter_config[envoy.filters.http.local_ratelimit].token_bucket.max_tokens', dapr: 'none: Dapr\'s ratelimit middleware has no burst setting' },
      { unit: 'count' },
    ),
    shared: field(
      bool(),
      'Share one bucket across processes through Redis (needs `INMESH_REDIS_URL`; setting that variable shares every rate limit).',
      { istio: 'none: needs an EnvoyFilter and an external rate limit service', consul: 'none: Consul has no global rate limit', gatewayApi: 'none: HTTPRoute has no rate limit', envoy: 'envoy.filters.http.ratelimit (global limit through an external rate limit service)', dapr: 'none: Dapr\'s ratelimit middleware is per sidecar' },
      { default: D.rateLimit.shared },
    ),
  },
  'an object with requestsPerSecond, burst, shared',
);

export const upstreamPolicyShape = {
  discovery: discoverySchema.optional().meta({ description: 'Where the endpoints of the upstream come from.' }),
  loadBalancer: loadBalancerSchema.optional().meta({ description: 'How an endpoint is picked for each attempt.' }),
  timeouts: timeoutsSchema.optional().meta({ description: 'Deadlines.' }),
  retries: retriesSchema.optional().meta({ description: 'Retries (Istio/Envoy semantics).' }),
  outlierDetection: outlierDetectionSchema
    .optional()
    .meta({ description: 'Passive health: ejects single failing endpoints (Envoy semantics).' }),
  limits: limitsSchema.optional().meta({ description: 'Concurrency limits ("circuit breaking" in Envoy and Istio).' }),
  circuitBreaker: circuitBreakerSchema
    .optional()
    .meta({ description: 'Error-rate breaker over the whole upstream (closed/open/half-open). SDK-only.' }),
  rateLimit: orFalse(rateLimitSchema, 'an object with requestsPerSecond, burst, shared')
    .optional()
    .meta({ description: 'Client-side token bucket; `false` turns an inherited one off. Off by default.' }),
};

const METHOD_RE = /^[A-Z][A-Z-]*$/;

export const headerMatchSchema = block(
  {
    name: text('a header name').meta({
      description: 'Header name (case-insensitive).',
      'x-inmesh-maps': { istio: 'VirtualService http[].match[].headers', consul: 'service-router Routes[].Match.HTTP.Header[].Name', gatewayApi: 'HTTPRoute rules[].matches[].headers[].name', envoy: 'route.match.headers[].name', dapr: DAPR_NO_MATCH } satisfies FieldMapping,
    }),
    exact: field(z.string({ error: 'expected a string' }), 'The header equals this.', { istio: 'VirtualService http[].match[].headers{}.exact', consul: 'service-router Routes[].Match.HTTP.Header[].Exact', gatewayApi: 'HTTPRoute rules[].matches[].headers[].value', envoy: 'route.match.headers[].string_match.exact', dapr: DAPR_NO_MATCH, note: 'Gateway API: type Exact.' }),
    prefix: field(text('a non-empty prefix'), 'The header starts with this.', { istio: 'VirtualService http[].match[].headers{}.prefix', consul: 'service-router Routes[].Match.HTTP.Header[].Prefix', gatewayApi: 'HTTPRoute rules[].matches[].headers[].value', envoy: 'route.match.headers[].string_match.prefix', dapr: DAPR_NO_MATCH, note: 'Gateway API has no header prefix match: an exporter must write type RegularExpression with the quoted prefix followed by `.*`.' }),
    regex: field(text('a regular expression'), 'The whole header matches this regular expression: RE2 syntax, anchored, matched in linear time (as Envoy\'s safe_regex).', { istio: 'VirtualService http[].match[].headers{}.regex', consul: 'service-router Routes[].Match.HTTP.Header[].Regex', gatewayApi: 'HTTPRoute rules[].matches[].headers[].value', envoy: 'route.match.headers[].string_match.safe_regex', dapr: DAPR_NO_MATCH, note: 'Every target takes RE2; validation refuses what RE2 refuses. Gateway API: type RegularExpression (implementation-specific support).' }),
    present: field(bool(), 'true: the header is present; false: it is absent.', { istio: 'VirtualService http[].match[].withoutHeaders', consul: 'service-router Routes[].Match.HTTP.Header[].Present (absent: Present true with Invert true)', gatewayApi: 'HTTPRoute rules[].matches[].headers[].value', envoy: 'route.match.headers[].present_match (absent: present_match true + invert_match true)', dapr: DAPR_NO_MATCH, note: 'Istio matches presence with `headers: {name: {regex: ".*"}}` and absence with withoutHeaders; Gateway API matches presence as RegularExpression `.*` and cannot match absence.' }),
  },
  'an object with name and one of exact, prefix, regex, present',
)
  .superRefine((value, ctx) => {
    const set = [value.exact, value.prefix, value.regex, value.present].filter((v) => v !== undefined).length;
    if (set !== 1) ctx.addIssue({ code: 'custom', message: 'expected exactly one of exact, prefix, regex, present' });
  })
  .meta({ oneOf: [{ required: ['exact'] }, { required: ['prefix'] }, { required: ['regex'] }, { required: ['present'] }] });

export const routeMatchSchema = block(
  {
    methods: field(
      list(z.string({ error: 'expected an HTTP method in upper case, such as GET' }).regex(METHOD_RE, { error: 'expected an HTTP method in upper case, such as GET' }), 'HTTP methods'),
      'Any of these methods (upper case).',
      { istio: 'VirtualService http[].match[].method', consul: 'service-router Routes[].Match.HTTP.Methods', gatewayApi: 'HTTPRoute rules[].matches[].method', envoy: 'route.match.headers[":method"]', dapr: DAPR_NO_MATCH, note: 'Istio and Gateway API take one method per match: export writes one match per method.' },
    ),
    path: field(
      z.string({ error: 'expected a path starting with /' }).regex(/^\//, { error: 'expected a path starting with /' }),
      'The path (without the query string) equals this.',
      { istio: 'VirtualService http[].match[].uri.exact', consul: 'service-router Routes[].Match.HTTP.PathExact', gatewayApi: 'HTTPRoute rules[].matches[].path.value', envoy: 'route.match.path', dapr: DAPR_NO_MATCH, note: 'Gateway API: type Exact.' },
    ),
    pathPrefix: field(
      z.string({ error: 'expected a path starting with /' }).regex(/^\//, { error: 'expected a path starting with /' }),
      'The path starts with this (plain string prefix, as Envoy and Istio).',
      { istio: 'VirtualService http[].match[].uri.prefix', consul: 'service-router Routes[].Match.HTTP.PathPrefix', gatewayApi: 'HTTPRoute rules[].matches[].path.value', envoy: 'route.match.prefix', dapr: DAPR_NO_MATCH, note: 'Gateway API\'s PathPrefix matches whole path segments and ignores a trailing / (/api matches /api/x, not /apix; /sku/ also matches /sku): the exporter writes PathPrefix and reports it lossy for any prefix but /.' },
    ),
    headers: list(headerMatchSchema, 'header matches')
      .optional()
      .meta({ description: 'All of these header conditions.' }),
  },
  'an object with methods, path, pathPrefix, headers',
)
  .superRefine((value, ctx) => {
    if (value.path !== undefined && value.pathPrefix !== undefined)
      ctx.addIssue({ code: 'custom', message: 'expected at most one of path, pathPrefix' });
  })
  .meta({ not: { required: ['path', 'pathPrefix'] } });

// ---------------------------------------------------------------- subsets and splits

/** A subset name: a DNS label, the one form every target takes (Istio subset names, Consul subset keys, Service names). */
export const SUBSET_NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';
/** Most subsets of one upstream. */
export const MAX_SUBSETS = 64;
/** Most entries of one split (Gateway API's backendRefs maxItems). */
export const MAX_SPLIT_TARGETS = 16;
/** Largest split weight (Gateway API backendRefs[].weight maximum; inside Istio's int32). */
export const MAX_SPLIT_WEIGHT = 1_000_000;

const SUBSET_NAME_MESSAGE = 'expected a subset name: lower-case letters, digits and "-", at most 63 characters, starting and ending with a letter or digit';

export const subsetSchema = block(
  {
    tags: field(
      list(text('a tag'), 'tags'),
      'Endpoints carrying every one of these tags (on top of `discovery.tags`).',
      {
        istio: 'DestinationRule subsets[].labels',
        consul: 'service-resolver Subsets.<name>.Filter ("<tag>" in Service.Tags, joined with and)',
        gatewayApi: 'none: the subset becomes its own Service selecting these endpoints, named in HTTPRoute rules[].backendRefs[].name',
        envoy: 'cluster.lb_subset_config.subset_selectors[].keys (endpoint metadata envoy.lb `tag.<tag>: true`)',
        dapr: 'none: service invocation reaches every instance of an app id',
        note: 'Kubernetes has no tags: Istio needs each tag written as a label (lossy).',
      },
      { default: D.discovery.tags },
    ),
    meta: field(
      z.record(text('a meta key'), z.string({ error: 'expected a string value' }), { error: 'expected a map of meta key to string value' }),
      'Endpoints whose meta has every one of these key/value pairs (Consul Service.Meta, the file registry\'s meta).',
      {
        istio: 'DestinationRule subsets[].labels',
        consul: 'service-resolver Subsets.<name>.Filter (Service.Meta.<key> == "<value>", joined with and)',
        gatewayApi: 'none: the subset becomes its own Service whose selector is these pairs',
        envoy: 'cluster.lb_subset_config.subset_selectors[].keys + route.metadata_match.filter_metadata["envoy.lb"]',
        dapr: 'none: service invocation reaches every instance of an app id',
      },
    ),
  },
  'an object with tags, meta',
);

export const splitTargetSchema = block(
  {
    subset: z
      .string({ error: 'expected a subset name' })
      .regex(new RegExp(SUBSET_NAME_PATTERN), { error: SUBSET_NAME_MESSAGE })
      .meta({
        description: 'The subset this share of the calls goes to (a key of the upstream\'s `subsets`).',
        'x-inmesh-maps': {
          istio: 'VirtualService http[].route[].destination.subset',
          consul: 'service-splitter Splits[].ServiceSubset',
          gatewayApi: 'HTTPRoute rules[].backendRefs[].name (a Service per subset, named <service>-<subset>, not written by the exporter)',
          envoy: 'route.route.weighted_clusters.clusters[].metadata_match.filter_metadata[envoy.lb] (one cluster per upstream with lb_subset_config)',
          dapr: 'none: Dapr has no traffic split',
        } satisfies FieldMapping,
      }),
    weight: field(
      int(0, MAX_SPLIT_WEIGHT),
      'Relative weight: the subset gets weight / (sum of the weights) of the calls. 0 = none; the weights need not add up to 100.',
      {
        istio: 'VirtualService http[].route[].weight',
        consul: 'service-splitter Splits[].Weight',
        gatewayApi: 'HTTPRoute rules[].backendRefs[].weight',
        envoy: 'route.route.weighted_clusters.clusters[].weight',
        dapr: 'none: Dapr has no traffic split',
        note: 'Istio and Consul take percentages adding up to 100: export scales the weights (lossy when not exact).',
      },
      { unit: 'count', default: D.split.weight },
    ),
  },
  'an object with subset, weight',
);

const splitSchema = list(splitTargetSchema, 'split entries ({subset, weight})')
  .min(1, { error: 'expected at least one split entry' })
  .max(MAX_SPLIT_TARGETS, { error: `expected at most ${MAX_SPLIT_TARGETS} split entries` });

const upstreamSplitField = splitSchema.optional().meta({
  description: 'Weighted split of the calls over subsets, chosen once per call (retries stay in the subset). Without it, calls go to every endpoint.',
});

export const routeSchema = block(
  {
    name: field(text('a route name'), 'Name used in telemetry and errors. Defaults to `route-<index>`.', { istio: 'VirtualService http[].name', consul: 'none: Consul routes have no name', gatewayApi: 'HTTPRoute rules[].name', envoy: 'route.name', dapr: DAPR_NO_MATCH }),
    match: routeMatchSchema.optional().meta({ description: 'All conditions must hold; no match = every request.' }),
    timeouts: timeoutsSchema.optional().meta({ description: 'Overrides the upstream\'s timeouts for matching requests.' }),
    retries: retriesSchema.optional().meta({ description: 'Overrides the upstream\'s retries for matching requests.' }),
    loadBalancer: routeLoadBalancerSchema
      .optional()
      .meta({ description: 'Only `hashOn` (Envoy route hash_policy); the algorithm is the upstream\'s.' }),
    split: splitSchema
      .optional()
      .meta({ description: 'Overrides the upstream\'s split for matching requests (same subsets).' }),
  },
  'an object with name, match, timeouts, retries, loadBalancer, split',
);

/** Deepest nesting accepted in a policy document (the schema itself is under ten levels deep). */
export const MAX_POLICY_DEPTH = 64;
/** Most upstreams in one document (validation refuses more before checking each). */
export const MAX_UPSTREAMS = 10_000;
/** Most routes of one upstream. */
export const MAX_ROUTES = 1_000;

export const UPSTREAM_NAME_PATTERN = '^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$';

export const upstreamPolicySchema = block(upstreamPolicyShape, 'an object of policy blocks').meta({
  id: 'UpstreamPolicy',
  description: 'Policy of an upstream service. Every block and field is optional.',
});

export const upstreamSchema = block(
  {
    ...upstreamPolicyShape,
    subsets: z
      .record(z.string().regex(new RegExp(SUBSET_NAME_PATTERN), { error: SUBSET_NAME_MESSAGE }), subsetSchema, {
        error: 'expected a map of subset name to {tags, meta}',
      })
      .optional()
      .meta({
        description: `Named subsets of the upstream's endpoints, selected by tags and meta (all must hold). At most ${MAX_SUBSETS}.`,
        maxProperties: MAX_SUBSETS,
      }),
    split: upstreamSplitField,
    routes: list(routeSchema, 'routes')
      .max(MAX_ROUTES, { error: `expected at most ${MAX_ROUTES} routes per upstream` })
      .optional()
      .meta({ description: 'Per-route overrides, tried in order; the first match wins.' }),
  },
  'an object of policy blocks, subsets, split and routes',
).meta({ id: 'Upstream', description: 'An upstream service: policy blocks, subsets, split and routes.' });

export const inboundSchema = block(
  {
    rateLimit: block(
      {
        requestsPerSecond: field(
          positive(RATE_MAX),
          'Token refill rate. Required when the block is set.',
          {
            istio: 'none: needs an EnvoyFilter (local_ratelimit on the inbound listener)',
            consul: 'service-defaults RateLimits.InstanceLevel.RequestsPerSecond (Enterprise, 1.17+)',
            gatewayApi: 'none: HTTPRoute has no rate limit',
            envoy: 'inbound http local_ratelimit token_bucket.tokens_per_fill / fill_interval',
            dapr: 'middleware.http.ratelimit metadata maxRequestsPerSecond (a Component in the httpPipeline)',
          },
          { unit: 'requests/s' },
        ),
        burst: field(
          int(1, RATE_MAX),
          'Bucket size: requests allowed at once after a quiet period. Defaults to requestsPerSecond (rounded up).',
          {
            istio: 'none: needs an EnvoyFilter (local_ratelimit on the inbound listener)',
            consul: 'service-defaults RateLimits.InstanceLevel.RequestsMaxBurst (Enterprise, 1.17+)',
            gatewayApi: 'none: HTTPRoute has no rate limit',
            envoy: 'inbound http local_ratelimit token_bucket.max_tokens',
            dapr: 'none: Dapr\'s ratelimit middleware has no burst setting',
          },
          { unit: 'count' },
        ),
      },
      'an object with requestsPerSecond, burst',
    )
      // Nothing to inherit from on the server side: the rate is required (validate.ts words the error).
      .meta({ required: ['requestsPerSecond'] })
      .optional()
      .meta({ description: 'Token bucket in front of the server; excess requests get 429. Needs requestsPerSecond.' }),
    maxConcurrent: field(
      int(0, 1_000_000),
      'Most requests handled at once; beyond it 503 with Retry-After. 0 = unlimited.',
      { istio: 'none: needs a Sidecar resource (inbound connectionPool)', consul: 'none: service-defaults MaxInboundConnections (1.13+) limits connections, not requests', gatewayApi: 'none: HTTPRoute configures callers, not the server', envoy: 'inbound cluster circuit_breakers.thresholds[].max_requests', dapr: 'annotation dapr.io/app-max-concurrency (not a Resiliency field)' },
      { unit: 'count', default: D.inbound.maxConcurrent },
    ),
    timeouts: block(
      {
        request: field(
          duration(0),
          'Deadline of handling one request; "0s" = none.',
          { istio: 'none: needs a Sidecar resource (inbound timeout)', consul: 'the service\'s own service-defaults LocalRequestTimeoutMs (1.15+, with --service)', gatewayApi: 'none: HTTPRoute configures callers, not the server', envoy: 'inbound route timeout', dapr: 'none: a Resiliency timeout for the app\'s own inbound calls needs targets.components' },
          { unit: 'duration', default: ms(D.inbound.request) },
        ),
      },
      'an object with request',
    )
      .optional()
      .meta({ description: 'Server-side deadlines.' }),
  },
  'an object with rateLimit, maxConcurrent, timeouts',
);

// ---------------------------------------------------------------- resources

const RES_ISTIO = 'none: Istio governs traffic through its proxies, not a client library\'s calls to a cache, database or queue';
const RES_CONSUL = 'none: Consul config entries govern service-to-service traffic only';
const RES_GW = 'none: HTTPRoute routes HTTP requests; a resource call is no request it sees';
const RES_ENVOY = 'none: Envoy governs the connections it proxies, not the calls of a client library (its redis_proxy and tcp_proxy filters have a fixed set of settings)';
const RES_NEAREST = 'Dapr Resiliency targets.components (outbound), where the resource is a Dapr component';
/** Where a resource field goes in each target: Dapr's component target, none in the proxy meshes. */
function resourceMaps(dapr: string, note?: string): FieldMapping {
  return { istio: RES_ISTIO, consul: RES_CONSUL, gatewayApi: RES_GW, envoy: RES_ENVOY, dapr, sdkOnly: true, nearest: RES_NEAREST, ...(note === undefined ? {} : { note }) };
}
const DAPR_COMPONENT = 'Resiliency targets.components{}.outbound';

/** An error code or name as a client library reports it (ECONNRESET, READONLY, 23505, TimeoutError). */
const errorCode = () =>
  z.string({ error: 'expected an error code or name such as "ECONNRESET"' }).regex(/^[A-Za-z0-9_.:-]{1,64}$/, {
    error: 'expected an error code or name such as "ECONNRESET": letters, digits, "_", ".", ":", "-", at most 64 characters',
  });

export const resourceSchema = block(
  {
    timeouts: block(
      {
        request: field(duration(0), 'Total deadline of a guarded call, every try and backoff included. "0s" = none.', resourceMaps('none: a Dapr timeout policy bounds each attempt, not the call with its retries'), { unit: 'duration', default: ms(D.resources.request) }),
        perTry: field(duration(0), 'Deadline of one try; the AbortSignal handed to the call fires when it passes. "0s" = none. At most `request`.', resourceMaps(`${DAPR_COMPONENT}.timeout (names a policies.timeouts{} entry)`), { unit: 'duration', default: ms(D.resources.perTry) }),
      },
      'an object with request, perTry',
    )
      .optional()
      .meta({ description: 'Deadlines (the `timeouts` fields of an upstream that mean the same).' }),
    retries: block(
      {
        attempts: field(int(0, MAX_RETRY_ATTEMPTS), 'Retries after the first try: 2 means at most 3 tries. 0 = no retries.', resourceMaps(`${DAPR_COMPONENT}.retry (names a policies.retries{} entry; its maxRetries)`), { unit: 'count', default: D.resources.attempts }),
        retryOn: field(list(errorCode(), 'error codes or names'), 'Failures retried for any call, by error code or name (`err.code`, `err.name`, or the first word of a Redis error reply), e.g. ECONNRESET, READONLY, ETIMEDOUT.', resourceMaps('none: Dapr retries every failed component call (policies.retries{}.matching is for HTTP/gRPC codes)'), { default: D.resources.retryOn }),
        neverRetry: field(list(errorCode(), 'error codes or names'), 'Failures never retried, whatever `retryOn`, `idempotent` or a predicate say (a uniqueness violation, 23505; a WRONGTYPE reply).', resourceMaps('none: Dapr has no per-error exclusion for components'), { default: D.resources.neverRetry }),
        idempotent: field(bool(), 'Every call to the resource is idempotent: per-try timeouts, connect failures and resets are retried too (a call may also say `idempotent: true`).', resourceMaps('none: Dapr retries every failed call of a component'), { default: D.resources.idempotent }),
        backoff: block(
          {
            base: field(duration(1, 60_000), 'Backoff base: retry n waits a random time in [0, base × (2^n − 1)] (full jitter), capped at `max`.', resourceMaps('none: export writes policy exponential, which starts at a fixed 500 ms and grows ×1.5 with ±50 % randomization (a constant duration would lose the growth and the cap)'), { unit: 'duration', default: ms(D.retries.backoffBase) }),
            max: field(duration(1, 300_000), 'Backoff cap. At least `base`.', resourceMaps('Resiliency policies.retries{}.maxInterval'), { unit: 'duration', default: ms(D.retries.backoffMax) }),
          },
          'an object with base, max',
        )
          .optional()
          .meta({ description: 'Exponential backoff with full jitter, as for upstreams.' }),
        budget: orFalse(
          block(
            {
              percent: field(percent(), 'Retries in flight may be at most this percent of the calls in flight.', resourceMaps('none: Dapr has no retry budget'), { unit: 'percent', default: D.retries.budgetPercent }),
              minConcurrency: field(int(0, 1_000_000), 'Retries are always allowed while fewer than this many are in flight.', resourceMaps('none: Dapr has no retry budget'), { unit: 'count', default: D.retries.budgetMinConcurrency }),
            },
            'an object with percent, minConcurrency',
          ),
          'an object with percent, minConcurrency',
        )
          .optional()
          .meta({ description: 'Retry budget (as an upstream\'s); `false` turns it off.' }),
      },
      'an object with attempts, retryOn, neverRetry, idempotent, backoff, budget',
    )
      .optional()
      .meta({ description: 'Retries, with failures classified by error code or name.' }),
    limits: block(
      {
        enabled: field(bool(), 'Turn the concurrency limit on or off.', resourceMaps('none: Dapr has no concurrency limit for component calls'), { default: D.limits.enabled }),
        maxRequests: field(int(1, 4_294_967_295), 'Most calls in flight.', resourceMaps('none: Dapr has no concurrency limit for component calls'), { unit: 'count', default: D.resources.maxRequests }),
        maxPendingRequests: field(int(0, 4_294_967_295), 'Most calls waiting for a slot; beyond it a call is shed with LoadShedError. 0 = shed at once above `maxRequests`.', resourceMaps('none: Dapr has no concurrency limit for component calls'), { unit: 'count', default: D.resources.maxPendingRequests }),
      },
      'an object with enabled, maxRequests, maxPendingRequests',
    )
      .optional()
      .meta({ description: 'Concurrency limit and load shedding.' }),
    circuitBreaker: block(
      {
        enabled: field(bool(), 'Turn the error-rate breaker on or off.', resourceMaps(`${DAPR_COMPONENT}.circuitBreaker (names a policies.circuitBreakers{} entry)`), { default: D.circuitBreaker.enabled }),
        errorThresholdPercent: field(percent(), 'Open when at least this percent of the calls in the window failed.', resourceMaps('Resiliency policies.circuitBreakers{}.trip (a CEL expression over requests and totalFailures)'), { unit: 'percent', default: D.circuitBreaker.errorThresholdPercent }),
        minimumRequests: field(int(1, 1_000_000), 'No decision before this many calls in the window.', resourceMaps('Resiliency policies.circuitBreakers{}.trip (the `requests >= n` part)'), { unit: 'count', default: D.circuitBreaker.minimumRequests }),
        window: field(duration(100, 3_600_000), 'Rolling window the error rate is measured over.', resourceMaps('Resiliency policies.circuitBreakers{}.interval (a tumbling window, not a rolling one)'), { unit: 'duration', default: ms(D.circuitBreaker.window) }),
        halfOpenAfter: field(duration(1), 'Open → half-open (one trial call) after this long.', resourceMaps('Resiliency policies.circuitBreakers{}.timeout'), { unit: 'duration', default: ms(D.circuitBreaker.halfOpenAfter) }),
      },
      'an object with enabled, errorThresholdPercent, minimumRequests, window, halfOpenAfter',
    )
      .optional()
      .meta({ description: 'Error-rate breaker over the resource (closed/open/half-open), as an upstream\'s.' }),
    rateLimit: orFalse(
      block(
        {
          requestsPerSecond: field(positive(RATE_MAX), 'Token refill rate. Required when the block is set.', resourceMaps('none: Dapr rate-limits requests into the app only'), { unit: 'requests/s' }),
          burst: field(int(1, RATE_MAX), 'Bucket size: calls allowed at once after a quiet period. Defaults to requestsPerSecond (rounded up).', resourceMaps('none: Dapr rate-limits requests into the app only'), { unit: 'count' }),
          shared: field(bool(), 'Share one bucket across processes through Redis (needs `INMESH_REDIS_URL`; setting that variable shares every rate limit).', resourceMaps('none: Dapr rate-limits requests into the app only'), { default: D.rateLimit.shared }),
        },
        'an object with requestsPerSecond, burst, shared',
      ).meta({ required: ['requestsPerSecond'] }),
      'an object with requestsPerSecond, burst, shared',
    )
      .optional()
      .meta({ description: 'Token bucket for calls to the resource (local, or shared through Redis). Off by default.' }),
  },
  'an object with timeouts, retries, limits, circuitBreaker, rateLimit',
).meta({ id: 'Resource', description: 'Policy of a resource (cache, database, queue) guarded with mesh.guard(). Every block and field is optional.' });

/** Most resources in one document. */
export const MAX_RESOURCES = 1_000;

export const documentSchema = block(
  {
    $schema: z.string({ error: 'expected a string' }).optional().meta({ description: 'JSON Schema reference for editors; ignored.' }),
    apiVersion: z.literal('inmesh/v1', { error: 'expected "inmesh/v1"' }).meta({ description: 'Version of the document format.' }),
    defaults: upstreamPolicySchema.optional().meta({ description: 'Applied to every upstream, declared or not.' }),
    upstreams: z
      .record(
        z.string().regex(new RegExp(UPSTREAM_NAME_PATTERN), {
          error: 'expected an upstream name of letters, digits, ".", "_" and "-" (the host name callers use)',
        }),
        upstreamSchema,
        { error: 'expected a map of upstream name to policy' },
      )
      .optional()
      .meta({ description: `Policy per upstream service, keyed by the name callers use as host. At most ${MAX_UPSTREAMS}.`, maxProperties: MAX_UPSTREAMS }),
    inbound: inboundSchema.optional().meta({ description: 'Policy of the server side (requests this process receives).' }),
    resources: z
      .record(
        z.string().regex(new RegExp(UPSTREAM_NAME_PATTERN), {
          error: 'expected a resource name of letters, digits, ".", "_" and "-" (the name given to mesh.guard())',
        }),
        resourceSchema,
        { error: 'expected a map of resource name to policy' },
      )
      .optional()
      .meta({ description: `Policy per resource (cache, database, queue) called through mesh.guard(name, fn). At most ${MAX_RESOURCES}.`, maxProperties: MAX_RESOURCES }),
  },
  'an object with apiVersion, defaults, upstreams, inbound, resources',
).meta({ title: 'inmesh policy document', description: 'In-process service mesh policy (inmesh/v1).' });

/** The document users write (YAML, JSON or code). Durations are strings. */
export type PolicyDocument = z.input<typeof documentSchema>;
/** One upstream's policy as written. */
export type UpstreamPolicyDocument = z.input<typeof upstreamPolicySchema>;
export type UpstreamDocument = z.input<typeof upstreamSchema>;
export type RouteDocument = z.input<typeof routeSchema>;
export type SubsetDocument = z.input<typeof subsetSchema>;
export type SplitTargetDocument = z.input<typeof splitTargetSchema>;
export type InboundDocument = z.input<typeof inboundSchema>;
export type ResourceDocument = z.input<typeof resourceSchema>;

/** JSON Schema (draft 2020-12) of the document, as published in src/policy/policy.schema.json. */
export function buildJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(documentSchema, { io: 'input', target: 'draft-2020-12' });
}
