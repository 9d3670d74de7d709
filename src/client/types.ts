/**
 * The call tier of the client data path (after tower's Layer and grpc-js's call
 * stack): a `Handler` turns a request into a response promise, a `Layer` wraps a
 * handler. The chain is assembled in compose.ts; array order = call order, the
 * first layer is the outermost.
 */
import type { Dispatcher } from 'undici';
import type { ResolvedCallPolicy, ResolvedUpstream } from '../policy/types.ts';
import type { Endpoint } from '../registry/types.ts';
import type { AttemptControl } from './attempt-control.ts';

export type HttpMethod = string;

/** Per-call options that override the policy for one call. */
export interface CallOptions {
  /** Total deadline for this call, ms (overrides `timeouts.request`). */
  timeout?: number;
  /** Per-try timeout, ms (overrides `timeouts.perTry`). */
  perTryTimeout?: number;
  /** Retries after the first try (overrides `retries.attempts`); 0 or false = no retries. */
  retries?: number | false;
  /** ring_hash key for this call (overrides `loadBalancer.hashOn`). */
  hashKey?: string;
  /** Treat this call as idempotent (true) or not (false), whatever its method. */
  idempotent?: boolean;
}

/** CallOptions as checked by request.ts; `query` is mesh.request's `query` option, serialized. */
export interface ResolvedCallOptions extends CallOptions {
  readonly query?: string;
}

/** One logical call as it travels down the layers. Layers may read everything and mutate `headers`. */
export interface MeshRequest {
  /** Upstream service name (policy key). */
  readonly service: string;
  readonly upstream: Readonly<ResolvedUpstream>;
  /** The call policy after route matching and per-call overrides. */
  readonly policy: Readonly<ResolvedCallPolicy>;
  readonly method: HttpMethod;
  /** Path and query, e.g. `/api/items?x=1`. */
  readonly path: string;
  /** The authority the caller used (kept as the Host header). */
  readonly host: string;
  /** The host name of `host` (no port; IPv6 in brackets), the TLS servername for https. */
  readonly hostname: string;
  /** `http:` or `https:`, as the caller wrote it; with https the TLS servername is the caller's host name. */
  readonly protocol: 'http:' | 'https:';
  headers: Record<string, string | string[]>;
  readonly body: Dispatcher.DispatchOptions['body'];
  /** The caller's signal (never replaced by a layer). */
  readonly signal: AbortSignal | undefined;
  /**
   * The current attempt's abort handle (set by the attempt timeout layer, linked
   * to `signal`); the transport hands it to the pool when set, else gives undici `signal`.
   */
  attemptControl: AttemptControl | undefined;
  readonly options: Readonly<ResolvedCallOptions>;
  /** Absolute time (performance.now() based) when the total deadline passes; Infinity = none. */
  deadline: number;
  /** Endpoint ids of this call's earlier attempts (made by the balance layer on the first retry). */
  tried: Set<string> | undefined;
  /** 0 for the first try. */
  attempt: number;
  /** The endpoint picked for the current attempt (set by the balance layer, read by the transport). */
  endpoint: Endpoint | undefined;
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
