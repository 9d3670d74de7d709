/**
 * The resolved policy: what the data path reads. Every field is present, every
 * duration is a number of milliseconds, and the whole object is deep-frozen.
 *
 * The document users write (YAML/JSON/code) is `PolicyDocument` (see schema.ts):
 * same field names, all optional, durations written as strings such as "250ms".
 * `resolvePolicy()` turns a document into this.
 */

export type LoadBalancerPolicy = 'round_robin' | 'random' | 'least_request' | 'ring_hash' | 'peak_ewma';

export type RegistryKind = 'consul' | 'static' | 'file';

/** Retry conditions, in Envoy/Istio's `retry_on` vocabulary. */
export type RetryOn =
  | 'connect-failure'
  | 'refused-stream'
  | 'reset'
  | '5xx'
  | 'gateway-error'
  | 'retriable-4xx'
  | 'retriable-status-codes';

export interface ResolvedDiscovery {
  registry: RegistryKind;
  /** Name of the service in the registry; defaults to the upstream's key. */
  service: string | undefined;
  datacenter: string | undefined;
  /** Only instances carrying all of these tags. */
  tags: readonly string[];
  /** Only instances whose health checks all pass. */
  passingOnly: boolean;
  /** Static registry: `host:port` entries. */
  endpoints: readonly string[];
  /** File registry: path of a JSON/YAML file that is watched. */
  file: string | undefined;
}

export interface ResolvedHashOn {
  header?: string;
  cookie?: string;
  queryParameter?: string;
}

export interface ResolvedLoadBalancer {
  policy: LoadBalancerPolicy;
  /** least_request: how many random candidates to compare (P2C = 2). */
  choiceCount: number;
  /** ring_hash: where the hash key comes from; absent = a random key per request. */
  hashOn: Readonly<ResolvedHashOn> | undefined;
  /** ring_hash: minimum number of virtual nodes on the ring. */
  minimumRingSize: number;
  /** peak_ewma: decay window of the moving average, ms. */
  ewmaDecay: number;
  /** peak_ewma: latency assumed for an endpoint with no samples yet, ms. */
  ewmaDefaultRtt: number;
}

export interface ResolvedTimeouts {
  /** TCP (and TLS) connect timeout, ms. */
  connect: number;
  /** Total deadline of a call, every attempt and backoff included, ms. 0 = none. */
  request: number;
  /** Deadline of one attempt, ms. 0 = none (only the total applies). */
  perTry: number;
  /** Idle keep-alive socket timeout, ms. */
  idle: number;
}

export interface ResolvedRetryBudget {
  /** Retries may be at most this percent of active requests (0-100). */
  percent: number;
  /** Retries always allowed while fewer than this many are in flight. */
  minConcurrency: number;
}

export interface ResolvedRetries {
  /** Retries after the first try (Istio `attempts`, Envoy `num_retries`). 0 = no retries. */
  attempts: number;
  retryOn: readonly RetryOn[];
  /** Status codes retried when `retryOn` has `retriable-status-codes`. */
  retriableStatusCodes: readonly number[];
  /** Full-jitter exponential backoff: base and cap, ms. */
  backoff: { readonly base: number; readonly max: number };
  /** Retry only idempotent methods (GET HEAD OPTIONS PUT DELETE TRACE) unless the call says otherwise. */
  idempotentOnly: boolean;
  /** Retry budget; undefined = no budget. */
  budget: Readonly<ResolvedRetryBudget> | undefined;
  /** Largest request body kept for replay, bytes. A larger body is sent once. */
  maxBodyBytes: number;
  /** Honour `Retry-After` on 429/503, up to this many ms (0 = ignore the header). */
  maxRetryAfter: number;
}

export interface ResolvedOutlierDetection {
  /** Eject after this many consecutive 5xx (local timeouts and resets count). 0 = off. */
  consecutive5xx: number;
  /** Eject after this many consecutive 502/503/504 or connect failures. 0 = off. */
  consecutiveGatewayErrors: number;
  /** How often ejections are reviewed, ms. */
  interval: number;
  /** Ejection time = base x times ejected, ms. */
  baseEjectionTime: number;
  /** Cap of the ejection time, ms. */
  maxEjectionTime: number;
  /** At most this percent of endpoints ejected at once (at least one always may be). */
  maxEjectionPercent: number;
  /** Below this percent of healthy endpoints the balancer ignores health (panic). 0 = never. */
  panicThresholdPercent: number;
}

/** Envoy-style concurrency limits ("circuit breaking" in Envoy/Istio). */
export interface ResolvedLimits {
  maxConnections: number;
  /** Infinity when `limits.enabled` is false. */
  maxPendingRequests: number;
  /** Infinity when `limits.enabled` is false: then no limit layer runs (JSON.stringify writes Infinity as null). */
  maxRequests: number;
  /** 0 = unlimited. */
  maxRequestsPerConnection: number;
}

/** Hystrix-style error-rate breaker (SDK-only). */
export interface ResolvedCircuitBreaker {
  enabled: boolean;
  /** Open when this percent of calls in the window failed (0-100). */
  errorThresholdPercent: number;
  /** No decision before this many calls in the window. */
  minimumRequests: number;
  /** Rolling window, ms. */
  window: number;
  /** Open -> half-open after this long, ms. */
  halfOpenAfter: number;
}

export interface ResolvedRateLimit {
  requestsPerSecond: number;
  burst: number;
  /** Share the limit across processes through Redis (Bottleneck clustering). */
  shared: boolean;
}

export interface ResolvedHeaderMatch {
  name: string;
  exact?: string;
  prefix?: string;
  regex?: string;
  present?: boolean;
}

export interface ResolvedRouteMatch {
  methods: readonly string[] | undefined;
  path: string | undefined;
  pathPrefix: string | undefined;
  headers: readonly Readonly<ResolvedHeaderMatch>[];
}

/** A named part of an upstream's endpoints: those carrying every tag and every meta pair listed. */
export interface ResolvedSubset {
  tags: readonly string[];
  meta: Readonly<Record<string, string>>;
}

/** One entry of a weighted split: a subset and its relative weight (an integer >= 0). */
export interface ResolvedSplitTarget {
  subset: string;
  weight: number;
}

/** The per-call policy: what applies to one request once routes are matched. */
export interface ResolvedCallPolicy {
  timeouts: Readonly<ResolvedTimeouts>;
  retries: Readonly<ResolvedRetries>;
  loadBalancer: Readonly<ResolvedLoadBalancer>;
  /**
   * Weighted split over the upstream's subsets, chosen once per call; undefined =
   * no split (every endpoint of the upstream). The weights add up to more than 0.
   */
  split: readonly Readonly<ResolvedSplitTarget>[] | undefined;
}

export interface ResolvedRoute extends ResolvedCallPolicy {
  name: string;
  match: Readonly<ResolvedRouteMatch>;
}

export interface ResolvedUpstreamPolicy extends ResolvedCallPolicy {
  discovery: Readonly<ResolvedDiscovery>;
  outlierDetection: Readonly<ResolvedOutlierDetection>;
  limits: Readonly<ResolvedLimits>;
  circuitBreaker: Readonly<ResolvedCircuitBreaker>;
  rateLimit: Readonly<ResolvedRateLimit> | undefined;
}

export interface ResolvedUpstream extends ResolvedUpstreamPolicy {
  name: string;
  /** Subsets by name (a null-prototype object); empty when none is defined. */
  subsets: Readonly<Record<string, Readonly<ResolvedSubset>>>;
  routes: readonly Readonly<ResolvedRoute>[];
}

export interface ResolvedInbound {
  rateLimit: Readonly<Omit<ResolvedRateLimit, 'shared'>> | undefined;
  /** 0 = unlimited. */
  maxConcurrent: number;
  timeouts: { readonly request: number };
}

/** Retries of a resource (guard/): the upstream's fields where the meaning is the same, classification by error code. */
export interface ResolvedResourceRetries {
  /** Retries after the first try. 0 = no retries. */
  attempts: number;
  /** Error codes or names (`err.code`, `err.name`, or a Redis reply's first word) retried for any call. */
  retryOn: readonly string[];
  /** Error codes or names never retried (wins over everything else). */
  neverRetry: readonly string[];
  /** Full-jitter exponential backoff: base and cap, ms. */
  backoff: { readonly base: number; readonly max: number };
  /** Every call is idempotent: per-try timeouts, connect failures and resets are retried too. */
  idempotent: boolean;
  budget: Readonly<ResolvedRetryBudget> | undefined;
}

/** The resolved policy of one resource (a cache, database or queue a service calls; guard/). */
export interface ResolvedResource {
  name: string;
  timeouts: { readonly request: number; readonly perTry: number };
  retries: Readonly<ResolvedResourceRetries>;
  /** Infinity when `limits.enabled` is false. */
  limits: { readonly maxRequests: number; readonly maxPendingRequests: number };
  circuitBreaker: Readonly<ResolvedCircuitBreaker>;
  rateLimit: Readonly<ResolvedRateLimit> | undefined;
}

export interface ResolvedPolicy {
  apiVersion: 'inmesh/v1';
  defaults: Readonly<ResolvedUpstreamPolicy>;
  upstreams: Readonly<Record<string, Readonly<ResolvedUpstream>>>;
  inbound: Readonly<ResolvedInbound>;
  /** Resources by name (a null-prototype object); empty when the document has none. */
  resources: Readonly<Record<string, Readonly<ResolvedResource>>>;
}
