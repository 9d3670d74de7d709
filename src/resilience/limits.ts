/**
 * Envoy-style concurrency limits of one upstream (policy `limits`; "circuit
 * breaking" in Envoy, Istio and Consul): at most `maxRequests` calls in flight;
 * beyond that a call waits in a bounded FIFO queue of `maxPendingRequests`;
 * when that queue is full the call is shed at once with
 * `LoadShedError(service, 'maxPendingRequests')`. A shed call never reaches an
 * endpoint, so it is never retried and never counted against a host.
 *
 * Plain counters and a linked FIFO, not Bottleneck: Bottleneck's local
 * datastore yields to the event loop with `setTimeout(0)` several times per
 * job (submit, register, run, free) behind a submit lock, so every call pays
 * milliseconds and the limiter itself caps throughput far below a loopback
 * HTTP client; that rules it out for a layer that is on by default. The
 * figures: docs/benchmarks.md, "Library costs behind the design choices".
 *
 * Invariants:
 * - A permit is released exactly once per admitted call: on settle of the inner
 *   promise, also when `next` throws synchronously. A release hands the permit
 *   straight to the oldest waiter (no barging), else lowers the count.
 * - A waiter leaves the queue exactly once: started, aborted by the caller
 *   (rejected with the signal's inmesh reason or `AbortedError`), its total
 *   deadline passed (`TimeoutError('total')`; the deadline layer arms no timer,
 *   so the queue honours `req.deadline` itself), or the layer closed
 *   (`ClosedError`).
 */
import { AbortedError, ClosedError, LoadShedError, TimeoutError, isInmeshError } from '../errors.ts';
import type { Handler, Layer, MeshRequest, MeshResponse } from '../core/types.ts';
import type { ResolvedUpstream } from '../policy/types.ts';

export interface LimitLayer extends Layer {
  /** Calls admitted and not yet settled. */
  readonly inFlight: number;
  /** Calls waiting for a permit. */
  readonly pending: number;
  /** Reject every waiting call and every later call with ClosedError; calls in flight finish. Idempotent. */
  close(): Promise<void>;
}

interface Waiter {
  prev: Waiter | undefined;
  next: Waiter | undefined;
  start(): void;
  /** Leaves the queue without a permit. */
  fail(error: Error): void;
}

/**
 * The per-upstream concurrency limit. Returns undefined only when the limit is
 * unbounded (`maxRequests` not finite); a resolved policy always has one
 * (Envoy's default is 1024 in flight and 1024 pending).
 */
export function createLimitLayer(upstream: Readonly<ResolvedUpstream>): LimitLayer | undefined {
  const { maxRequests, maxPendingRequests } = upstream.limits;
  if (!Number.isFinite(maxRequests)) return undefined;
  const service = upstream.name;
  const maxPending = Math.max(0, maxPendingRequests);

  let inFlight = 0;
  let pending = 0;
  let head: Waiter | undefined;
  let tail: Waiter | undefined;
  let closed = false;

  const unlink = (w: Waiter): void => {
    if (w.prev) w.prev.next = w.next;
    else head = w.next;
    if (w.next) w.next.prev = w.prev;
    else tail = w.prev;
    w.prev = w.next = undefined;
    pending--;
  };

  const release = (): void => {
    const w = head;
    if (w) {
      unlink(w);
      w.start(); // the permit passes to the waiter: inFlight unchanged
    } else {
      inFlight--;
    }
  };
  const releaseOk = (res: MeshResponse): MeshResponse => {
    release();
    return res;
  };
  const releaseErr = (error: unknown): never => {
    release();
    throw error;
  };

  /** Runs an admitted call; its permit is released exactly once when it settles. */
  const run = (next: Handler, req: MeshRequest): Promise<MeshResponse> => {
    let p: Promise<MeshResponse>;
    try {
      p = next(req);
    } catch (error) {
      release();
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- rethrows the inner handler's value unchanged
      return Promise.reject(error);
    }
    return p.then(releaseOk, releaseErr);
  };

  const abortError = (signal: AbortSignal): Error => {
    const reason: unknown = signal.reason;
    // A deadline or another layer may abort with its own inmesh error: keep it.
    return isInmeshError(reason) ? reason : new AbortedError({ cause: reason, service });
  };

  const wait = (next: Handler, req: MeshRequest): Promise<MeshResponse> => {
    if (closed) return Promise.reject(new ClosedError(`limits of ${service}`, { service }));
    if (pending >= maxPending) return Promise.reject(new LoadShedError(service, 'maxPendingRequests'));
    const signal = req.signal;
    if (signal?.aborted) return Promise.reject(abortError(signal));
    let timeLeft = Infinity;
    if (req.deadline !== Infinity) {
      timeLeft = req.deadline - performance.now();
      if (timeLeft <= 0) return Promise.reject(deadlineError(req));
    }

    return new Promise<MeshResponse>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = (): void => {
        signal?.removeEventListener('abort', onAbort);
        if (timer !== undefined) clearTimeout(timer);
      };
      const w: Waiter = {
        prev: tail,
        next: undefined,
        start: () => {
          cleanup();
          resolve(run(next, req));
        },
        fail: (error) => {
          cleanup();
          reject(error);
        },
      };
      const onAbort = (): void => {
        unlink(w);
        w.fail(abortError(signal as AbortSignal));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeLeft !== Infinity) {
        timer = setTimeout(() => {
          unlink(w);
          w.fail(deadlineError(req));
        }, timeLeft);
      }
      if (tail) tail.next = w;
      else head = w;
      tail = w;
      pending++;
    });
  };

  const layer = ((next: Handler): Handler =>
    function limit(req) {
      // Queue non-empty implies inFlight === maxRequests (a release hands the
      // permit to the oldest waiter), so this check alone keeps FIFO order.
      if (inFlight < maxRequests && !closed) {
        inFlight++;
        return run(next, req);
      }
      return wait(next, req);
    }) as LimitLayer;

  Object.defineProperties(layer, {
    inFlight: { get: () => inFlight, enumerable: true },
    pending: { get: () => pending, enumerable: true },
    close: {
      value: (): Promise<void> => {
        if (!closed) {
          closed = true;
          const error = new ClosedError(`limits of ${service}`, { service });
          // Bounded: each turn removes one waiter, and no waiter can join once closed.
          for (let w = head; w !== undefined; w = head) {
            unlink(w);
            w.fail(error);
          }
        }
        return Promise.resolve();
      },
    },
  });
  return layer;
}

function deadlineError(req: MeshRequest): TimeoutError {
  // The budget the deadline layer fixed the deadline with (client/deadline.ts), read from the request.
  return new TimeoutError('total', Math.round(req.deadlineMs), { service: req.service });
}
