/**
 * Deadlines, with one deadline per attempt and nothing allocated when they are off.
 *
 * - The `deadline` layer (outer) only fixes the absolute end of the call,
 *   `req.deadline`: the sooner of `now + timeout` (the call's own total
 *   timeout) and the deadline of the inbound request this call is made for
 *   (`currentDeadline()`, core/deadline-context.ts), so A → B → C never works
 *   past A's deadline. An inbound deadline that has already passed fails the
 *   call at once with `TimeoutError('total')`, before any layer below runs
 *   (nothing is sent). It arms no timer of its own.
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
 * - The attempt's abort handle is an `AttemptControl` (attempt-control.ts says
 *   why not a signal), in `req.attemptControl`; `req.signal` stays the
 *   caller's. The caller's signal is linked to it; a caller abort becomes
 *   `AbortedError`, also while the body is read.
 */
import { AbortedError, TimeoutError } from '../errors.ts';
import { AttemptControl } from './attempt-control.ts';
import { armDeadline, type DeadlineEntry } from './deadline-queue.ts';
import { currentDeadline } from '../core/deadline-context.ts';
import type { Handler, Layer, MeshRequest, MeshResponse } from '../core/types.ts';

export function totalTimeoutOf(req: MeshRequest): number {
  return req.options.timeout ?? req.policy.timeouts.request;
}

/** The error of a call whose total deadline passed: `timeoutMs` is the budget it had (`req.deadlineMs`). */
export function totalDeadlineError(req: MeshRequest): TimeoutError {
  return new TimeoutError('total', Math.round(req.deadlineMs), { service: req.service });
}

const deadlineLayer: Layer = (next: Handler): Handler =>
  function deadline(req) {
    if (req.deadline !== Infinity) return next(req);
    const ms = totalTimeoutOf(req);
    const inbound = currentDeadline();
    if (ms <= 0 && inbound === undefined) return next(req);
    const now = performance.now();
    if (inbound !== undefined && (ms <= 0 || inbound < now + ms)) {
      // The inbound request's deadline is the sooner one: the call gets what is left of it.
      const left = inbound - now;
      req.deadline = inbound;
      req.deadlineMs = left > 0 ? left : 0;
      if (left <= 0) return Promise.reject(totalDeadlineError(req));
    } else {
      req.deadline = now + ms;
      req.deadlineMs = ms;
    }
    return next(req);
  };

/** The deadline layer (layer factory shape). Always present: a per-call `timeout` may set a deadline the policy has not. */
export function createDeadlineLayer(): Layer {
  return deadlineLayer;
}

/** The attempt timeout layer (layer factory shape). Always present, like the deadline layer. */
export function createAttemptTimeoutLayer(): Layer {
  return attemptTimeoutLayer;
}

/** Read afresh (after an await the compiler still narrows `signal.aborted` to what it was before). */
function abortedNow(signal: AbortSignal): boolean {
  return signal.aborted;
}

function noop(): void {
  // An error listener that keeps the error of an unread body from becoming uncaught.
}

/**
 * After a caller abort: a body undici has delivered whole (so the abort did not
 * reach undici) and the caller has not read is destroyed with the abort's
 * reason. While the body still streams, the abort reached undici, which fails
 * the body itself. Like undici, a no-op error listener goes on first, so a body
 * nobody reads does not turn the error into an uncaught exception.
 */
function failEndedBody(control: AttemptControl, body: MeshResponse['body'], reason: Error): void {
  if (control.ended && !body.destroyed) body.on('error', noop).destroy(reason);
}

/** What a fired attempt deadline does (one shared function: no closure per attempt). */
function onAttemptDeadline(control: AttemptControl): void {
  control.abort(control.timeoutError());
}

const attemptTimeoutLayer: Layer = (next: Handler): Handler =>
  function attemptTimeout(req) {
    const perTry = req.options.perTryTimeout ?? req.policy.timeouts.perTry;
    const now = performance.now();
    const left = req.deadline - now;
    if (left <= 0) return Promise.reject(totalDeadlineError(req));
    const byTry = perTry > 0 && perTry < left;
    // No deadline for this attempt: the call goes straight on (no async frame, no handle).
    if (!byTry && left === Infinity) return next(req);
    return timedAttempt(next, req, now, perTry, byTry);
  };

/** One attempt under its deadline: min(per-try timeout, time left of the total deadline). */
async function timedAttempt(next: Handler, req: MeshRequest, now: number, perTry: number, byTry: boolean): Promise<MeshResponse> {
  const service = req.service;
  const caller = req.signal;
  let unlink: (() => void) | undefined;
  if (caller?.aborted === true) throw new AbortedError({ cause: caller.reason, service });
  const control = byTry ? new AttemptControl('attempt', perTry, service) : new AttemptControl('total', Math.round(req.deadlineMs), service);
  /** The response body once headers are in: a caller abort fails it even when undici already has all of it. */
  let body: MeshResponse['body'] | undefined;
  if (caller !== undefined) {
    const onAbort = (): void => {
      const reason = new AbortedError({ cause: caller.reason, service });
      control.abort(reason);
      if (body !== undefined) failEndedBody(control, body, reason);
    };
    caller.addEventListener('abort', onAbort, { once: true });
    unlink = () => caller.removeEventListener('abort', onAbort);
  }
  // Due after perTry, or for the time actually left of the call: at `req.deadline`
  // itself, armed as the budget the deadline layer fixed it with from when that
  // budget started (not `now + left`), so the calls of one total timeout share
  // the queue's FIFO for that duration while a retry's later attempt, due at the
  // same fixed end, gets its own timer (deadline-queue.ts).
  const deadline: DeadlineEntry = byTry
    ? armDeadline(now, perTry, onAttemptDeadline, control)
    : armDeadline(req.deadline - req.deadlineMs, req.deadlineMs, onAttemptDeadline, control);
  req.attemptControl = control;
  try {
    const res = await next(req);
    body = res.body;
    // An abort in the few microtasks between the transport and here found no body to fail.
    if (caller !== undefined && abortedNow(caller)) failEndedBody(control, body, new AbortedError({ cause: caller.reason, service }));
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
    req.attemptControl = undefined;
  }
}
