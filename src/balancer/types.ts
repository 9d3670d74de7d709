/**
 * The balancer contract (after grpc-js load-balancer.ts / picker.ts): `update()`
 * takes a new endpoint set, `pick()` is synchronous and cheap, and each pick is
 * closed with `done()` so that least-request, peak-EWMA and outlier detection
 * see every attempt's outcome.
 */
import type { Endpoint } from '../registry/types.ts';

/**
 * How an attempt ended, in outlier-detection terms (Envoy semantics):
 * - `success`: any response below 500 (and 5xx is not seen).
 * - `server-error`: 500, 501, 505+ (counts toward consecutive 5xx).
 * - `gateway-error`: 502, 503, 504, connect failure, reset, local timeout (counts toward
 *   consecutive 5xx and consecutive gateway errors).
 * - `ignored`: the attempt never reached the host in a way that says anything about it
 *   (local limit overflow, caller abort): not counted.
 */
export type AttemptOutcome = 'success' | 'server-error' | 'gateway-error' | 'ignored';

export interface PickContext {
  /** ring_hash: the request's hash key; a random one is used when absent. */
  readonly hashKey?: string | undefined;
  /** Endpoint ids already tried by this request: avoided when another endpoint exists. */
  readonly exclude?: ReadonlySet<string> | undefined;
}

export interface Pick {
  readonly endpoint: Endpoint;
  /** Call exactly once when the attempt ends. `latencyMs` is time to response headers (or to failure). */
  done(outcome: AttemptOutcome, latencyMs: number): void;
}

export interface LoadBalancer {
  /** Replace the endpoint set. State of endpoints that stay (ids equal) is kept. */
  update(endpoints: readonly Endpoint[]): void;
  /** Undefined when there is no endpoint at all. */
  pick(ctx?: PickContext): Pick | undefined;
  /** Endpoints currently known (ejected ones included). */
  readonly endpoints: readonly Endpoint[];
  /** Stops timers. */
  close(): void;
}
