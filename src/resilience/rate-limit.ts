/**
 * The client rate limit of one upstream (policy `rateLimit`): a token bucket of
 * `burst` tokens refilled at `requestsPerSecond`. Over the limit a call fails
 * fast with `RateLimitedError`, as Envoy's `local_ratelimit` answers 429 at
 * once rather than queueing: a queue here would only move the wait into the
 * caller's deadline, and the retry/limit layers already bound waiting.
 *
 * Two engines:
 * - **Process-local** (the default): a token bucket over plain numbers, refilled
 *   lazily from a monotonic clock. Not Bottleneck: its local datastore yields
 *   with `setTimeout(0)` several times per job behind a submit lock, so one
 *   limiter tops out at a few hundred calls per second whatever
 *   `requestsPerSecond` says (figures: docs/benchmarks.md, "Library costs
 *   behind the design choices"). Reversible in one place (`localBucket`).
 * - **Shared** (`rateLimit.shared: true`, or `deps.redis` given): Bottleneck
 *   clustering over Redis with ioredis (`datastore: 'ioredis'`, limiter id
 *   `inmesh:<service>`), so every process using the same id and Redis draws
 *   from one bucket. The bucket is Bottleneck's reservoir with
 *   `reservoirIncreaseAmount/Interval` and `reservoirIncreaseMaximum = burst`;
 *   `highWater: 0` with the OVERFLOW strategy makes the submit script drop a
 *   call that cannot run now, atomically in Redis. The URL comes from
 *   `deps.redis.url` (the mesh passes `INMESH_REDIS_URL` / `redisUrl` there:
 *   with a Redis configured, every client rate limit is shared). The first process to create the
 *   limiter's settings in Redis fixes them; later ones with other numbers
 *   share those.
 *
 * Shared mode fails open, like Envoy's rate limit filter by default
 * (`failure_mode_deny: false`): when Redis is unreachable (at start-up, for up
 * to the connect timeout, or later on a command error) calls go through and a
 * warning is logged at most every 10 s. A missing ioredis package is a set-up
 * error, not an outage: calls then fail with InvalidArgumentError.
 */
import Bottleneck from 'bottleneck';
import { AbortedError, ClosedError, InvalidArgumentError, RateLimitedError, isInmeshError } from '../errors.ts';
import type { Handler, Layer, MeshRequest, MeshResponse } from '../core/types.ts';
import type { ResolvedRateLimit, ResolvedUpstream } from '../policy/types.ts';
import { REDIS_CONNECT_TIMEOUT, openBottleneckConnection, redactRedisUrl } from './redis.ts';

/** Structural subset of the mesh Logger (registry/types.ts; declared here so that resilience/ does not import registry/). */
export interface RateLimitLogger {
  warn(message: string, fields?: Record<string, unknown>): void;
}

export interface RateLimitDeps {
  /** Share the bucket through this Redis (also when `rateLimit.shared` is false). */
  readonly redis?: { readonly url: string } | undefined;
  readonly logger?: RateLimitLogger | undefined;
  /** Process-local engine only: monotonic time in ms (tests pass a fake). Default `performance.now`. */
  readonly now?: (() => number) | undefined;
}

export interface RateLimitLayer extends Layer {
  /** True when the bucket lives in Redis. */
  readonly shared: boolean;
  /** Resolves once the limiter can decide (at once for the local engine); rejects on a set-up error. */
  ready(): Promise<void>;
  /** Later calls fail with ClosedError; the shared engine disconnects from Redis. Idempotent. */
  close(): Promise<void>;
  /**
   * Process-local engine only: takes a token at once, without a promise (the
   * inbound chain admits a request synchronously with it). True: got one;
   * false: over the limit; undefined: closed.
   */
  readonly takeNow?: () => boolean | undefined;
}

/**
 * The per-upstream client rate limit, or undefined when the upstream has none
 * (`rateLimit` unset or `false`).
 */
export function createRateLimitLayer(upstream: Readonly<ResolvedUpstream>, deps: RateLimitDeps = {}): RateLimitLayer | undefined {
  const cfg = upstream.rateLimit;
  if (cfg === undefined) return undefined;
  const service = upstream.name;
  if (!(cfg.requestsPerSecond > 0) || !Number.isFinite(cfg.requestsPerSecond)) {
    throw new InvalidArgumentError(`${service}: rateLimit.requestsPerSecond must be a positive number (got ${cfg.requestsPerSecond})`, { service });
  }
  const burst = Math.max(1, Math.floor(cfg.burst));
  if (!cfg.shared && deps.redis === undefined) return localBucket(service, cfg.requestsPerSecond, burst, deps.now ?? (() => performance.now()));
  // The configuration (loadConfig) is the one reader of INMESH_REDIS_URL; the mesh passes it here.
  const url = deps.redis?.url;
  if (url === undefined || url === '') {
    throw new InvalidArgumentError(
      `${service}: rateLimit.shared is true but no Redis is configured: set INMESH_REDIS_URL (redis://host:port) or createMesh({ redisUrl })`,
      { service },
    );
  }
  return sharedBucket(service, cfg, burst, url, deps.logger);
}

function closedError(service: string): ClosedError {
  return new ClosedError(`rate limit of ${service}`, { service });
}

function abortError(signal: AbortSignal, service: string): Error {
  const reason: unknown = signal.reason;
  return isInmeshError(reason) ? reason : new AbortedError({ cause: reason, service });
}

function finish<L extends Layer>(
  layer: L,
  props: { shared: boolean; ready: () => Promise<void>; close: () => Promise<void>; takeNow?: () => boolean | undefined },
): L {
  Object.defineProperties(layer, {
    shared: { value: props.shared, enumerable: true },
    ready: { value: props.ready },
    close: { value: props.close },
    ...(props.takeNow === undefined ? {} : { takeNow: { value: props.takeNow } }),
  });
  return layer;
}

/** Process-local token bucket: `burst` tokens, `rps` per second, refilled lazily on each call. */
function localBucket(service: string, rps: number, burst: number, now: () => number): RateLimitLayer {
  const perMs = rps / 1000;
  let tokens = burst;
  let last = now();
  let closed = false;

  const take = (): boolean => {
    const t = now();
    if (t > last) {
      tokens = Math.min(burst, tokens + (t - last) * perMs);
      last = t;
    }
    if (tokens >= 1) {
      tokens -= 1;
      return true;
    }
    return false;
  };

  const layer = ((next: Handler): Handler =>
    function rateLimit(req) {
      if (closed) return Promise.reject(closedError(service));
      if (take()) return next(req);
      return Promise.reject(new RateLimitedError(service));
    }) as RateLimitLayer;

  return finish(layer, {
    shared: false,
    ready: () => Promise.resolve(),
    close: () => {
      closed = true;
      return Promise.resolve();
    },
    takeNow: () => (closed ? undefined : take()),
  });
}

/**
 * A refill step with whole numbers, as Bottleneck's scripts want them:
 * `amount` tokens every `interval` ms, within 0.1 % of `rps` (bounded search).
 */
export function refillStep(rps: number): { amount: number; interval: number } {
  let best = { amount: 1, interval: Math.max(1, Math.round(1000 / rps)) };
  let bestError = Infinity;
  for (let amount = 1; amount <= 1000; amount++) {
    const exact = (1000 * amount) / rps;
    if (exact < 1) continue;
    const interval = Math.round(exact);
    const error = Math.abs((1000 * amount) / interval - rps) / rps;
    if (error < bestError) {
      best = { amount, interval };
      bestError = error;
    }
    if (error <= 0.001) break;
  }
  return best;
}

/** Bounds of the shared limiter's heartbeat, ms (see below). */
const MIN_HEARTBEAT = 100;
const MAX_HEARTBEAT = 1_000;
/** A warning about a failing Redis is logged at most this often, ms. */
const WARN_EVERY = 10_000;

function sharedBucket(
  service: string,
  cfg: Readonly<ResolvedRateLimit>,
  burst: number,
  url: string,
  logger: RateLimitLogger | undefined,
): RateLimitLayer {
  const { amount, interval } = refillStep(cfg.requestsPerSecond);
  const where = redactRedisUrl(url);
  let lastWarn = -Infinity;
  const warn = (message: string, error?: unknown): void => {
    const t = performance.now();
    if (t - lastWarn < WARN_EVERY) return;
    lastWarn = t;
    logger?.warn(`rate limit of ${service}: ${message}`, {
      service,
      redis: where,
      ...(error === undefined ? {} : { error: error instanceof Error ? error.message : JSON.stringify(error) }),
    });
  };

  let connection: Bottleneck.IORedisConnection | undefined;
  let limiter: Bottleneck | undefined;
  let isReady = false;
  let closed = false;
  let setupError: Error | undefined;
  // Read through functions: the values change across awaits.
  const isClosed = (): boolean => closed;
  const readyNow = (): boolean => isReady;
  /** Calls between submit and the start of their (empty) job. */
  let waiting = 0;

  const options: Bottleneck.ConstructorOptions & { heartbeatInterval: number } = {
    id: `inmesh:${service}`,
    datastore: 'ioredis',
    reservoir: burst,
    reservoirIncreaseAmount: amount,
    reservoirIncreaseInterval: interval,
    reservoirIncreaseMaximum: burst,
    // Drop (never queue) a call that cannot run now: fail fast, decided inside the submit script.
    highWater: 0,
    strategy: Bottleneck.strategy.OVERFLOW,
    rejectOnDrop: true,
    // Every admission script refills the reservoir from the elapsed time, so
    // the heartbeat only wakes a job left queued after a race between
    // processes: at most the refill interval, but not below 100 ms of Redis
    // traffic per process, and at most 1 s (Bottleneck's 5 s would hold such a
    // job far too long).
    heartbeatInterval: Math.min(MAX_HEARTBEAT, Math.max(MIN_HEARTBEAT, interval)),
  };

  // Opening is local (import + client objects); readiness needs Redis. close()
  // waits for the first only, so it never hangs on an unreachable Redis.
  const opening = openBottleneckConnection(url).then(
    (c) => {
      connection = c;
      c.on('error', (e: unknown) => warn('Redis error; calls are let through while it lasts', e));
      return c;
    },
    (error: unknown) => {
      throw isInmeshError(error)
        ? error
        : new InvalidArgumentError(`${service}: cannot use Redis at ${where} for the shared rate limit`, { service, cause: error });
    },
  );
  const setup = opening.then(async (c) => {
    if (closed) return;
    limiter = new Bottleneck({ ...options, connection: c });
    limiter.on('error', (e: unknown) => warn('Redis error; calls are let through while it lasts', e));
    await limiter.ready();
    isReady = !closed;
  });
  setup.catch((e: unknown) => {
    setupError = e instanceof Error ? e : new Error(String(e));
  });

  // Calls that arrive before the limiter is ready wait for it, but not longer
  // than the connect timeout (one timer for all of them), then go through.
  let startupWait: Promise<void> | undefined;
  const waitForStartup = (): Promise<void> => {
    startupWait ??= new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, REDIS_CONNECT_TIMEOUT);
      timer.unref();
      setup.then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        () => {
          clearTimeout(timer);
          resolve();
        },
      );
    });
    return startupWait;
  };

  /** Resolves true when a token was taken, false when the call must be let through (fail open). */
  const acquire = (bottleneck: Bottleneck): Promise<boolean> => {
    // A job left queued after a race would otherwise let the local queue grow:
    // never more calls waiting for a token than the bucket can hold.
    if (waiting >= burst) return Promise.reject(new RateLimitedError(service));
    waiting++;
    return new Promise<boolean>((resolve, reject) => {
      let started = false;
      bottleneck
        .schedule(() => {
          // The token is registered in Redis once the job starts; the call need
          // not wait for Bottleneck's bookkeeping (`free`) after it.
          started = true;
          waiting--;
          resolve(true);
          return Promise.resolve();
        })
        .catch((error: unknown) => {
          if (started) return; // bookkeeping after the start: not this call's business
          waiting--;
          if (error instanceof Bottleneck.BottleneckError) {
            reject(new RateLimitedError(service, { cause: error }));
          } else {
            warn('Redis command failed; calls are let through', error);
            resolve(false);
          }
        });
    });
  };

  const admit = async (next: Handler, req: MeshRequest): Promise<MeshResponse> => {
    if (!isReady) {
      await waitForStartup();
      if (setupError !== undefined && isInmeshError(setupError)) throw setupError; // e.g. ioredis missing
      if (isClosed()) throw closedError(service);
      if (!readyNow() || limiter === undefined) {
        warn(`Redis at ${where} is not reachable; calls are let through`, setupError);
        return next(req);
      }
    }
    await acquire(limiter as Bottleneck);
    if (isClosed()) throw closedError(service);
    if (req.signal?.aborted === true) throw abortError(req.signal, service);
    return next(req);
  };

  const layer = ((next: Handler): Handler =>
    function rateLimit(req) {
      if (closed) return Promise.reject(closedError(service));
      return admit(next, req);
    }) as RateLimitLayer;

  let closing: Promise<void> | undefined;
  return finish(layer, {
    shared: true,
    ready: async () => {
      await setup;
    },
    close: () => {
      closing ??= (async () => {
        closed = true;
        await opening.catch(() => undefined);
        // Stops the heartbeats of its limiters and closes both Redis clients
        // (QUIT when connected, a hard disconnect when not).
        await connection?.disconnect(isReady).catch(() => undefined);
        // With a connection of its own making this only clears the limiter's
        // heartbeat (and returns undefined, whatever the typings say).
        try {
          await limiter?.disconnect(false);
        } catch {
          // already disconnected
        }
      })();
      return closing;
    },
  });
}
