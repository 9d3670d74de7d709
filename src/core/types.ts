/**
 * The call-tier contract: what every layer of the client data path reads and
 * returns (after tower's Layer and grpc-js's call stack). Below every folder
 * that uses it; it imports only the policy types and undici's handler types.
 *
 * A `Handler` turns one logical call into a response promise; a `Layer` wraps
 * a handler. `client/chain.ts` assembles the chain in its one order.
 */
import type { Dispatcher } from 'undici';
import type { ResolvedCallPolicy, ResolvedUpstream } from '../policy/types.ts';

/** One instance of a service. Registry data is untrusted: every Endpoint a registry emits has passed `validateEndpoint`. */
export interface Endpoint {
  /** Unique per service (Consul: `<node>/<service ID>`, since service IDs are unique per agent only; static/file: `address:port` unless given). */
  readonly id: string;
  /** An IP literal or a strict host name. */
  readonly address: string;
  /** 1-65535. */
  readonly port: number;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
  /** Relative weight for balancing, an integer >= 1 (Consul: Weights.Passing). */
  readonly weight: number;
  readonly datacenter?: string;
  readonly zone?: string;
}

/**
 * How an attempt ended, in outlier-detection terms (Envoy semantics):
 * - `success`: any response below 500.
 * - `server-error`: 500, 501, 505+ (counts toward consecutive 5xx).
 * - `gateway-error`: 502, 503, 504, connect failure, reset, local timeout (counts toward
 *   consecutive 5xx and consecutive gateway errors).
 * - `ignored`: the attempt never reached the host in a way that says anything about it
 *   (local limit overflow, caller abort, a request refused locally): not counted.
 */
export type AttemptOutcome = 'success' | 'server-error' | 'gateway-error' | 'ignored';

/** Per-call options that override the policy for one call. */
export interface CallOptions {
  /** Total deadline for this call, ms (overrides `timeouts.request`). At most 24 h. */
  timeout?: number;
  /** Per-try timeout, ms (overrides `timeouts.perTry`). At most 24 h. */
  perTryTimeout?: number;
  /** Retries after the first try (overrides `retries.attempts`); 0 or false = no retries. */
  retries?: number | false;
  /** ring_hash key for this call (overrides `loadBalancer.hashOn`). */
  hashKey?: string;
  /** Treat this call as idempotent (true) or not (false), whatever its method. */
  idempotent?: boolean;
}

/** CallOptions as checked by client/request.ts; `query` is mesh.request's `query` option, serialized. */
export interface ResolvedCallOptions extends CallOptions {
  readonly query?: string;
}

/** Request headers as they travel down the layers: lower-case names, a null-prototype object. */
export type MeshHeaders = Record<string, string | string[]>;

/**
 * The abort handle of one attempt (client/attempt-control.ts implements it):
 * the attempt timeout layer arms it, the transport hands it to undici.
 */
export interface AttemptHandle {
  /** The abort reason once aborted (an inmesh TimeoutError or AbortedError). */
  readonly reason: Error | undefined;
  /** True once undici delivered the whole response: an abort then is up to the body's owner. */
  readonly ended: boolean;
  /** An AbortSignal aborted with the handle, for an undici without the queued-abort hook (made on first read). */
  readonly signal: AbortSignal;
  abort(reason: Error): void;
}

/**
 * How a guarded (non-HTTP) call's failure may be retried, as its resource
 * policy classifies it (guard/): `any` for any call (the policy lists the
 * failure as retryable), `idempotent` only for a call that is idempotent (a
 * per-try timeout, a reset), `never`.
 */
export type FailureVerdict = 'any' | 'idempotent' | 'never';

/** What a guarded call tells its telemetry: the OpenTelemetry database or messaging conventions, when the caller names the system. */
export interface ResourceCallInfo {
  /** `db` (database and cache conventions) or `messaging` (queue conventions). */
  readonly kind: 'db' | 'messaging';
  /** `db.system.name` / `messaging.system`, e.g. `redis`, `postgresql`, `rabbitmq`. */
  readonly system: string | undefined;
  /** `db.operation.name` / `messaging.operation.name`, e.g. `GET`, `SELECT`, `publish`. */
  readonly operation: string | undefined;
  /** `messaging.destination.name` or `db.collection.name`. */
  readonly target: string | undefined;
}

/** One logical call as it travels down the layers. Layers may read everything and mutate `headers`. */
export interface MeshRequest {
  /** Upstream service name (policy key). */
  readonly service: string;
  readonly upstream: Readonly<ResolvedUpstream>;
  /** The call policy after route matching and per-call overrides. */
  readonly policy: Readonly<ResolvedCallPolicy>;
  /** Upper-case, an RFC 9110 token. */
  readonly method: string;
  /** Path and query, e.g. `/api/items?x=1`. */
  readonly path: string;
  /** The authority the caller used (kept as the Host header). */
  readonly host: string;
  /** The host name of `host` (no port; IPv6 in brackets), the TLS servername for https. */
  readonly hostname: string;
  /** `http:` or `https:`, as the caller wrote it. */
  readonly protocol: 'http:' | 'https:';
  headers: MeshHeaders;
  readonly body: Dispatcher.DispatchOptions['body'];
  /** The caller's signal (never replaced by a layer). */
  readonly signal: AbortSignal | undefined;
  /** The current attempt's abort handle (set by the attempt timeout layer, linked to `signal`). */
  attemptControl: AttemptHandle | undefined;
  readonly options: Readonly<ResolvedCallOptions>;
  /** Absolute time (performance.now() based) when the total deadline passes; Infinity = none. */
  deadline: number;
  /**
   * The budget `deadline` was fixed with, ms (set with it by the deadline
   * layer): the call's own total timeout, or what was left of the inbound
   * request's deadline when that was sooner; 0 while there is no deadline.
   * `deadline - deadlineMs` is when the budget started.
   */
  deadlineMs: number;
  /** Endpoint ids of this call's earlier attempts (made by the balance layer on the first retry). */
  tried: Set<string> | undefined;
  /** The split's subset chosen for this call (set by the balance layer on the first attempt; retries keep it). */
  subset?: string | undefined;
  /** 0 for the first try. */
  attempt: number;
  /** The endpoint picked for the current attempt (set by the balance layer, read by the transport). */
  endpoint: Endpoint | undefined;
  /** A guarded call's own failure classification (guard/): when set, the retry layer asks it instead of the HTTP `retryOn`. */
  readonly classifyFailure?: ((error: unknown) => FailureVerdict) | undefined;
  /** Set on a guarded call (guard/): what its telemetry reports. */
  readonly resource?: ResourceCallInfo | undefined;
}

export interface MeshResponse {
  readonly statusCode: number;
  readonly headers: Dispatcher.ResponseData['headers'];
  readonly body: Dispatcher.ResponseData['body'];
  readonly trailers: Record<string, string>;
  /** `address:port` of the endpoint that answered. */
  readonly endpoint: string;
  /** How many attempts were made (1 = no retry). */
  readonly attempts: number;
}

export type Handler = (req: MeshRequest) => Promise<MeshResponse>;
export type Layer = (next: Handler) => Handler;

/**
 * The one shape of a layer factory: built once per upstream from its resolved
 * policy and the dependencies the assembler hands every factory; `undefined`
 * when the policy turns the layer off (it then costs nothing).
 */
export type LayerFactory<Deps> = (upstream: Readonly<ResolvedUpstream>, deps: Deps) => Layer | undefined;

/** A layer with state to shut down with its upstream (breaker, limits, rate limit). */
export interface ClosableLayer extends Layer {
  close(): Promise<void>;
}

export function isClosable(layer: Layer): layer is ClosableLayer {
  return typeof (layer as Partial<ClosableLayer>).close === 'function';
}
