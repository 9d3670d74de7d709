/**
 * The admin endpoint's documents (version 1), field by field as docs/admin.md
 * lists them. They are what the endpoint serialises: plain JSON data, no
 * class instances, every number finite or null (an unbounded value prints as
 * null), so the shape is the same whatever produced it.
 *
 * A field is only ever added to a version; renaming or removing one, or
 * changing its type or meaning, is a new `version`.
 */
import type { ResolvedPolicy } from '../policy/types.ts';

/** The version of every admin document this build serves. */
export const ADMIN_VERSION = 1;

/** The paths the admin endpoint answers. */
export const ADMIN_PATHS = ['/', '/config_dump', '/clusters', '/inbound', '/resources'] as const;

/** Fields every document starts with. */
export interface AdminHeader {
  readonly version: typeof ADMIN_VERSION;
  readonly kind: 'index' | 'config_dump' | 'clusters' | 'inbound' | 'resources';
  /** When the document was built (ISO 8601, UTC). */
  readonly generatedAt: string;
}

/** `GET /config_dump`: the configuration in force, secrets redacted. */
export interface ConfigDump {
  /** This process's service identity, or null when none is configured. */
  readonly service: { readonly name: string; readonly address: string | null; readonly port: number | null } | null;
  /** Absolute path of the policy file read, or null. */
  readonly policyFile: string | null;
  readonly consul: {
    readonly host: string;
    readonly port: number;
    readonly secure: boolean;
    /** `"[redacted]"` when a token is set, else null. */
    readonly token: '[redacted]' | null;
    /** `"[redacted]"` when basic-auth credentials are set, else null. */
    readonly auth: '[redacted]' | null;
    readonly datacenter: string | null;
    readonly namespace: string | null;
    readonly partition: string | null;
    readonly tls: {
      readonly caFile: string | null;
      readonly caPath: string | null;
      readonly certFile: string | null;
      readonly keyFile: string | null;
      readonly serverName: string | null;
      readonly verify: boolean;
    };
  };
  readonly redis: {
    /** Whether a Redis is configured (shared rate limits). */
    readonly configured: boolean;
    /** `"[redacted]"` when configured (the URL may carry a password), else null. */
    readonly url: '[redacted]' | null;
  };
  readonly telemetry: { readonly enabled: boolean; readonly serviceName: string | null };
  /** The resolved policy (docs/policy-reference.md; durations in ms, unbounded numbers as null). */
  readonly policy: ResolvedPolicy;
}

export type BreakerStateName = 'closed' | 'open' | 'half-open';

/** One endpoint of an upstream (Envoy's `/clusters` host status). */
export interface AdminEndpoint {
  /** The registry's id of the endpoint. */
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /** Attempts sent to it and not yet answered. */
  readonly activeRequests: number;
  /** Taken out of balancing by outlier detection. */
  readonly ejected: boolean;
  /** Time left of the current ejection, ms (0 when not ejected). */
  readonly ejectedForMs: number;
  /** The ejection multiplier (grows per ejection, decays while healthy). */
  readonly timesEjected: number;
  /** Ejections since the endpoint joined. */
  readonly ejections: number;
  readonly consecutive5xx: number;
  readonly consecutiveGatewayErrors: number;
}

/** One upstream (Envoy's `/clusters` cluster status). */
export interface AdminUpstream {
  readonly name: string;
  /** Whether its runtime runs (a first call or discoveryStatus() started it); the state fields below are null until then. */
  readonly started: boolean;
  /** The name asked of the registry. */
  readonly service: string;
  readonly registry: 'consul' | 'static' | 'file';
  readonly discovery: {
    /** Endpoints known now (the last good set while the registry fails). */
    readonly endpoints: number;
    /** Endpoints a request can go to now (not ejected). */
    readonly available: number;
    /** Ms since the registry last answered: 0 while it answers, null before its first answer. */
    readonly stalenessMs: number | null;
    /** The registry's last failure while it fails (secrets redacted), else null. */
    readonly lastError: { readonly name: string; readonly code: string | null; readonly message: string; readonly statusCode: number | null } | null;
  } | null;
  /** Envoy's panic mode: too few healthy endpoints, ejections ignored. Null until started. */
  readonly panic: boolean | null;
  readonly circuitBreaker: AdminCircuitBreaker;
  readonly limits: AdminLimits;
  /** Null when the upstream has no retry budget. */
  readonly retryBudget: AdminRetryBudget | null;
  /** Empty until started. */
  readonly endpoints: readonly AdminEndpoint[];
}

/** A circuit breaker of an upstream or a resource. */
export interface AdminCircuitBreaker {
  readonly enabled: boolean;
  /** Null when disabled or not started. */
  readonly state: BreakerStateName | null;
}

/** The limits of an upstream or a resource. */
export interface AdminLimits {
  /** Policy `limits.maxRequests` (null: unbounded, limits off). */
  readonly maxRequests: number | null;
  readonly maxPendingRequests: number | null;
  /** Calls admitted and not yet settled (null: no limit layer, or not started). */
  readonly inFlight: number | null;
  /** Calls waiting for a slot (null likewise). */
  readonly pending: number | null;
}

/** A retry budget of an upstream or a resource. */
export interface AdminRetryBudget {
  readonly percent: number;
  readonly minConcurrency: number;
  /** Calls in flight through the retry layer (null until started). */
  readonly active: number | null;
  /** Retries in flight: the budget in use (null until started). */
  readonly retriesInFlight: number | null;
  /** Retries allowed in flight now (null until started). */
  readonly limit: number | null;
}

/** A rate limit of the inbound side or of a resource. */
export interface AdminRateLimit {
  readonly requestsPerSecond: number;
  readonly burst: number;
  readonly shared: boolean;
}

/** `GET /inbound`: the inbound limits in use. */
export interface AdminInbound {
  /** Whether a server is wrapped by this mesh (mesh.server(), the Express or Fastify adapters). */
  readonly wrapped: boolean;
  /** Readiness fails: the mesh is closing. */
  readonly closing: boolean;
  /** Policy `inbound.maxConcurrent` (0: unlimited). */
  readonly maxConcurrent: number;
  /** Requests holding a maxConcurrent slot now; null when maxConcurrent is 0 (nothing is counted) or no server is wrapped. */
  readonly inFlight: number | null;
  /** Policy `inbound.rateLimit`, null when off. */
  readonly rateLimit: AdminRateLimit | null;
  /** Policy `inbound.timeouts.request`, ms (0: none). */
  readonly requestTimeoutMs: number;
}

/** `GET /resources`: one resource of the policy (`resources.<name>`, guarded with mesh.guard()) and its state. */
export interface AdminResource {
  readonly name: string;
  /** Whether a guarded call has built its chain yet (state fields are null until then). */
  readonly started: boolean;
  readonly timeouts: { readonly requestMs: number; readonly perTryMs: number };
  readonly circuitBreaker: AdminCircuitBreaker;
  readonly limits: AdminLimits;
  /** Null when the resource has no rate limit. */
  readonly rateLimit: AdminRateLimit | null;
  /** Null when the resource has no retry budget. */
  readonly retryBudget: AdminRetryBudget | null;
}

/**
 * What the admin endpoint reads, each call a fresh read-only snapshot. The
 * mesh implements it from small accessors of its parts; admin/ never sees
 * the parts themselves.
 */
export interface AdminSource {
  configDump(): ConfigDump;
  clusters(): readonly AdminUpstream[];
  inbound(): AdminInbound;
  resources(): readonly AdminResource[];
  /** Takes every configured secret out of a text (the last pass over each body). */
  redact(text: string): string;
}
