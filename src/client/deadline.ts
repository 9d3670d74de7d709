/**
 * Deadlines, with one deadline per attempt and nothing allocated when they are off.
 *
 * - The `deadline` layer (outer) only fixes the absolute end of the call,
 *   `req.deadline = now + timeout`. It arms no timer of its own.
 * - The `attemptTimeout` layer (inside retry) arms ONE deadline per attempt for
 *   min(per-try timeout, time left of the total deadline), in the deadline
 *   queue (deadline-queue.ts: a FIFO and one timer per duration, not a Node
 *   timer per attempt); when it fires the
 *   attempt is aborted with `TimeoutError('attempt')` or
 *   `TimeoutError('total')`, whichever bound it was. Backoff sleeps are capped
 *   by the same `req.deadline` in the retry layer, so the total deadline covers
 *   every attempt and every backoff without a call-level timer.
 * - The deadline is cancelled when response headers arrive: the body is then
 *   governed by the caller's signal (still linked) and undici's bodyTimeout.
 * - The attempt's abort source is an `AttemptSignal` (attempt-signal.ts says
 *   why not an AbortController), in `req.attemptSignal`; `req.signal` stays the
 *   caller's. The caller's signal is linked to it; a caller abort becomes
 *   `AbortedError`.
 */
import { AbortedError, TimeoutError } from '../errors.ts';
import { AttemptSignal } from './attempt-signal.ts';
import { armDeadline, type DeadlineEntry } from './deadline-queue.ts';
import type { Handler, Layer, MeshRequest } from './types.ts';

export function totalTimeoutOf(req: MeshRequest): number {
  return req.options.timeout ?? req.policy.timeouts.request;
}

export const deadlineLayer: Layer = (next: Handler): Handler =>
  function deadline(req) {
    const ms = totalTimeoutOf(req);
    if (ms > 0 && req.deadline === Infinity) req.deadline = performance.now() + ms;
    return next(req);
  };

export const attemptTimeoutLayer: Layer = (next: Handler): Handler =>
  async function attemptTimeout(req) {
    const perTry = req.options.perTryTimeout ?? req.policy.timeouts.perTry;
    const now = performance.now();
    const left = req.deadline - now;
    const service = req.service;
    if (left <= 0) throw new TimeoutError('total', totalTimeoutOf(req), { service });
    const byTry = perTry > 0 && perTry < left;
    if (!byTry && left === Infinity) return next(req);
    const caller = req.signal;
    const signal = new AttemptSignal();
    let unlink: (() => void) | undefined;
    if (caller !== undefined) {
      if (caller.aborted) throw new AbortedError({ cause: caller.reason, service });
      const onAbort = (): void => signal.abort(new AbortedError({ cause: caller.reason, service }));
      caller.addEventListener('abort', onAbort, { once: true });
      unlink = () => caller.removeEventListener('abort', onAbort);
    }
    let deadline: DeadlineEntry;
    if (byTry) {
      deadline = armDeadline(now, perTry, () => signal.abort(new TimeoutError('attempt', perTry, { service })));
    } else {
      // Due at the call's fixed deadline, which the deadline layer set to start + total.
      const total = totalTimeoutOf(req);
      deadline = armDeadline(req.deadline - total, total, () => signal.abort(new TimeoutError('total', total, { service })));
    }
    req.attemptSignal = signal;
    try {
      const res = await next(req);
      if (unlink !== undefined) {
        // keep the caller able to abort the body; unlink once the body is done
        if (res.body.destroyed) unlink();
        else res.body.once('close', unlink);
      }
      return res;
    } catch (error) {
      unlink?.();
      throw error;
    } finally {
      deadline.cancel();
      req.attemptSignal = undefined;
    }
  };
