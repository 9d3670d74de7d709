/**
 * Built-in defaults of the policy model: ONE object, every line with its unit
 * and the reason for the value. They are Envoy's defaults unless a line says
 * why not (docs/policy.md explains each deviation). The resolved policy is
 * built as: these ← document `defaults` ← `upstreams.<name>` ← route.
 *
 * Durations here are milliseconds (the resolved unit); the document writes
 * them as strings ("250ms").
 */
export const POLICY_DEFAULTS = {
  discovery: {
    registry: 'consul', // Consul catalogue is the mesh's registry; static/file are opt-in
    tags: [], // no tag filter
    passingOnly: true, // only instances whose checks all pass (Consul `?passing`, Istio/Envoy see only healthy endpoints)
    endpoints: [], // static registry only: "host:port" list
  },
  loadBalancer: {
    policy: 'round_robin', // Envoy cluster lb_policy default; Istio's default is LEAST_REQUEST, Consul's round_robin, so an exporter must write it explicitly
    choiceCount: 2, // count; Envoy least_request_lb_config.choice_count default (P2C)
    minimumRingSize: 1024, // virtual nodes; Envoy ring_hash_lb_config.minimum_ring_size default
    ewmaDecay: 10_000, // ms; Finagle/Linkerd peak-EWMA decay window (no Envoy equivalent)
    ewmaDefaultRtt: 30, // ms; latency assumed before the first sample (Finagle default is 0: 30 ms avoids stampeding a new host)
  },
  timeouts: {
    connect: 5_000, // ms; Envoy cluster connect_timeout default (Istio's is 10 s)
    request: 15_000, // ms; Envoy route timeout default (Istio: off) — never unbounded
    perTry: 0, // ms; 0 = off, only the total applies (Envoy per_try_timeout unset)
    idle: 60_000, // ms; not Envoy's 1 h: pooled sockets outliving the server's keep-alive (Node default 5 s) get reset; undici also honours the server's Keep-Alive hint
  },
  retries: {
    attempts: 2, // retries after the first try; Istio's mesh default (Envoy num_retries default is 1)
    retryOn: ['connect-failure', 'refused-stream', 'reset', 'gateway-error'], // Istio's default set, with gateway-error (502/503/504) as the HTTP form of gRPC `unavailable`
    retriableStatusCodes: [], // status codes; used only with retryOn retriable-status-codes
    backoffBase: 25, // ms; Envoy retry_back_off.base_interval default
    backoffMax: 250, // ms; Envoy default max_interval = 10 × base
    idempotentOnly: true, // SDK-only safety: never replay POST/PATCH unless the call says so (Envoy replays whatever the route allows)
    // The budget is ON, unlike Envoy (no budget unless configured; max_retries 3 caps concurrent retries instead):
    // inmesh has no max_retries cap, and the budget's floor of 3 matches it at low traffic (docs/policy.md).
    budgetPercent: 20, // percent of active requests; Envoy retry_budget.budget_percent default once a budget is configured
    budgetMinConcurrency: 3, // requests; Envoy retry_budget.min_retry_concurrency default once a budget is configured
    maxBodyBytes: 65_536, // bytes; request body kept for replay; not Envoy's 1 MiB buffer limit: it sits in the app's heap per call in flight (docs/policy.md)
    maxRetryAfter: 10_000, // ms; honour Retry-After up to this (Envoy rate_limited_retry_back_off max_interval is the nearest)
  },
  outlierDetection: {
    consecutive5xx: 5, // count; Envoy outlier_detection.consecutive_5xx default (Istio too)
    consecutiveGatewayErrors: 0, // count; 0 = off: Envoy counts 5 but with enforcing 0 (never ejects), Istio leaves it unset; 5 gateway errors are also 5 × 5xx
    interval: 10_000, // ms; Envoy interval default
    baseEjectionTime: 30_000, // ms; Envoy base_ejection_time default
    maxEjectionTime: 300_000, // ms; Envoy max_ejection_time default
    maxEjectionPercent: 10, // percent; Envoy max_ejection_percent default
    panicThresholdPercent: 50, // percent; Envoy healthy_panic_threshold default (Istio passes minHealthPercent to it, 0 when unset)
  },
  limits: {
    enabled: true, // on, as in every sidecar (they have no off switch: "off" there is every threshold at its max)
    maxConnections: 1024, // connections; Envoy circuit_breakers max_connections default
    maxPendingRequests: 1024, // requests; Envoy max_pending_requests default
    maxRequests: 1024, // requests; Envoy max_requests default
    maxRequestsPerConnection: 0, // requests; 0 = unlimited (Envoy default)
  },
  circuitBreaker: {
    enabled: true, // SDK-only error-rate breaker, on: it fails fast where outlier detection cannot help (every host failing)
    errorThresholdPercent: 50, // percent; opossum/Hystrix default
    minimumRequests: 20, // requests; Hystrix requestVolumeThreshold default
    window: 10_000, // ms; Hystrix/opossum rolling window default
    halfOpenAfter: 5_000, // ms; Hystrix sleepWindow default
  },
  split: {
    // A subset with no endpoints fails the call (NoEndpointsError naming the subset) rather than falling back to
    // other endpoints: Consul's resolver (no Failover), Istio and Envoy's subset LB (fallback_policy NO_FALLBACK) do the same.
    weight: 1, // relative weight of a split entry written without one (Gateway API backendRefs[].weight default)
  },
  rateLimit: {
    shared: false, // process-local token bucket unless asked (Redis needed to share); burst defaults to requestsPerSecond
  },
  resources: {
    // Calls to a cache, database or queue (`resources.<name>`, guard/). Only resources named in the policy get
    // these; a name with no policy is called directly. Where a field means what it means for an upstream, the value is
    // the upstream's, and the line says so.
    request: 15_000, // ms; total deadline, every try and backoff included: the upstream timeouts.request bound, never unbounded
    perTry: 0, // ms; 0 = off, only the total applies (as upstream timeouts.perTry)
    attempts: 2, // retries after the first try, as upstream retries.attempts; only classified-retryable failures are retried
    retryOn: ['ECONNREFUSED'], // error codes/names retried for any operation: a refused connection sent nothing
    neverRetry: [], // error codes/names never retried, whatever else says so (e.g. 23505, a uniqueness violation)
    idempotent: false, // calls are not assumed idempotent: per-try timeouts and resets are retried only for calls marked so
    maxRequests: 1024, // calls in flight; the upstream limits.maxRequests default (Envoy max_requests)
    maxPendingRequests: 1024, // calls waiting for a slot; the upstream limits.maxPendingRequests default (Envoy max_pending_requests)
  },
  inbound: {
    maxConcurrent: 0, // requests; 0 = unlimited (a Node server has no such limit by default)
    request: 15_000, // ms; same bound as the outbound request timeout (Envoy route timeout)
  },
} as const;

export type PolicyDefaults = typeof POLICY_DEFAULTS;

/**
 * Defaults of the shutdown sequence (`mesh.shutdown()`, `mesh.handleSignals()`,
 * docs/server.md#shutdown). Not policy (a process's own lifecycle, given in
 * code), kept here so that every default of inmesh is in this one file.
 * Together they stay under Kubernetes' default terminationGracePeriodSeconds
 * (30 s), after which the kubelet sends SIGKILL.
 */
export const SHUTDOWN_DEFAULTS = {
  propagationDelayMs: 5_000, // ms; serving on after readiness fails and Consul maintenance, for callers' watches, probes and load balancers to stop sending (the usual preStop sleep)
  drainTimeoutMs: 20_000, // ms; wait for in-flight requests after the servers stop accepting, then cut what is left
  signals: ['SIGTERM', 'SIGINT'], // the signals handleSignals() listens to: SIGTERM from Kubernetes, systemd, Docker; SIGINT from a terminal
  maintenanceReason: 'inmesh: shutting down', // text of the Consul maintenance mode (visible in the Consul UI and API)
} as const;
