/**
 * The inbound token bucket: the smallest adapter that lets the inbound chain
 * use the client rate limit of resilience/rate-limit.ts (local, or shared
 * through Redis) through its exported API, a Layer. The layer is built once
 * around a handler that only says "admitted"; `take()` runs one request through
 * it. One engine for both sides: the same refill arithmetic, the same Redis
 * scripts, the same fail-open behaviour of the shared engine.
 */
import type { MeshRequest, MeshResponse } from '../core/types.ts';
import { ClosedError, RateLimitedError } from '../errors.ts';
import type { ResolvedInbound, ResolvedUpstream } from '../policy/types.ts';
import { createRateLimitLayer, type RateLimitLogger } from '../resilience/rate-limit.ts';

export interface InboundBucket {
  /** Seconds a refused caller should wait for the next token (the Retry-After value), at least 1. */
  readonly retryAfterSeconds: number;
  /**
   * True when the request got a token, false when it is over the limit: at
   * once from the process-local bucket, through a promise from the shared one.
   */
  take(): boolean | Promise<boolean>;
  close(): Promise<void>;
}

export interface InboundBucketDeps {
  /** Share the bucket through this Redis. */
  readonly redis?: { readonly url: string } | undefined;
  readonly logger?: RateLimitLogger | undefined;
  /** Monotonic ms (tests). */
  readonly now?: (() => number) | undefined;
}

/** The layer's stand-in for the rest of a chain: reaching it means admitted. */
const ADMITTED: Promise<MeshResponse> = Promise.resolve(undefined as unknown as MeshResponse);

/**
 * The inbound rate limit of this process (`inbound.rateLimit`), or undefined
 * when the policy has none. `service` names the bucket: shared through Redis,
 * every instance of that service draws from the one bucket `inmesh:inbound:<service>`.
 */
export function createInboundBucket(
  service: string,
  rate: ResolvedInbound['rateLimit'],
  deps: InboundBucketDeps = {},
): InboundBucket | undefined {
  if (rate === undefined) return undefined;
  // The rate-limit layer reads only `name` and `rateLimit` of the upstream.
  const upstream = { name: `inbound:${service}`, rateLimit: { ...rate, shared: false } } as unknown as ResolvedUpstream;
  const layer = createRateLimitLayer(upstream, deps);
  if (layer === undefined) return undefined;
  const admit = layer(() => ADMITTED);
  // The shared engine reads the request's signal only; the local one reads nothing.
  const request = { signal: undefined } as unknown as MeshRequest;
  let warned = false;
  // A bucket that cannot decide (closed, Redis set-up error) lets requests
  // through, like the shared engine does while Redis is unreachable.
  const cannotDecide = (error: unknown): true => {
    if (!warned) {
      warned = true;
      deps.logger?.warn('inbound rate limit cannot decide; requests are let through', {
        error: error instanceof Error ? error.message : String(error),
      });
    }
    return true;
  };
  const takeNow = layer.takeNow;
  return {
    retryAfterSeconds: Math.max(1, Math.ceil(1 / rate.requestsPerSecond)),
    // The local bucket decides synchronously: no promise and no microtask per request.
    take:
      takeNow === undefined
        ? () => admit(request).then(() => true, (error: unknown) => (error instanceof RateLimitedError ? false : cannotDecide(error)))
        : () => takeNow() ?? cannotDecide(new ClosedError(`rate limit of inbound:${service}`, { service: `inbound:${service}` })),
    close: () => layer.close(),
  };
}
