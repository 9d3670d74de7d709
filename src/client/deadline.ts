/**
 * Deadlines, with one timer per attempt and nothing allocated when they are off.
 *
 * - The `deadline` layer (outer) only fixes the absolute end of the call,
 *   `req.deadline = now + timeout`. It arms no timer of its own.
 * - The `attemptTimeout` layer (inside retry) arms ONE timer per attempt for
 *   min(per-try timeout, time left of the total deadline); when it fires the
 *   attempt is aborted with `TimeoutError('attempt')` or
 *   `TimeoutError('total')`, whichever bound it was. Backoff sleeps are capped
 *   by the same `req.deadline` in the retry layer, so the total deadline covers
 *   every attempt and every backoff without a call-level timer.
 * - The timer is cleared when response headers arrive: the body is then
 *   governed by the caller's signal (still linked) and undici's bodyTimeout.
 * - The attempt's abort source is an `AttemptSignal` (attempt-signal.ts says
 *   why not an AbortController), in `req.attemptSignal`; `req.signal` stays the
 *   caller's. The caller's signal is linked to it; a caller abort becomes
 *   `AbortedError`.
 */
import { AbortedError, TimeoutError } from '../errors.ts';
import { AttemptSignal } from './attempt-signal.ts';
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

function fire(signal: AttemptSignal, phase: 'attempt' | 'total', ms: number, service: string): void {
  signal.abort(new TimeoutError(phase, ms, { service }));
}

export const attemptTimeoutLayer: Layer = (next: Handler): Handler =>
  async function attemptTimeout(req) {
    const perTry = req.options.perTryTimeout ?? req.policy.timeouts.perTry;
    const left = req.deadline - performance.now();
    if (left <= 0) throw new TimeoutError('total', totalTimeoutOf(req), { service: req.service });
    let phase: 'attempt' | 'total';
    let ms: number;
    let reported: number;
    if (perTry > 0 && perTry < left) {
      phase = 'attempt';
      ms = perTry;
      reported = perTry;
    } else if (left !== Infinity) {
      phase = 'total';
      ms = left;
      reported = totalTimeoutOf(req);
    } else {
      return next(req);
    }
    const caller = req.signal;
    const signal = new AttemptSignal();
    let unlink: (() => void) | undefined;
    if (caller !== undefined) {
      if (caller.aborted) throw new AbortedError({ cause: caller.reason, service: req.service });
      const onAbort = (): void => signal.abort(new AbortedError({ cause: caller.reason, service: req.service }));
      caller.addEventListener('abort', onAbort, { once: true });
      unlink = () => caller.removeEventListener('abort', onAbort);
    }
    const timer = setTimeout(fire, Math.ceil(ms), signal, phase, reported, req.service);
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
      clearTimeout(timer);
      req.attemptSignal = undefined;
    }
  };
