/**
 * The abort handle of one attempt: a thin undici dispatch handler that wraps
 * the handler of undici's `request()` and keeps the request's controller, so
 * that a deadline or the caller's signal can abort the attempt with
 * `controller.abort(reason)` (undici's documented handler API) instead of
 * through an abort signal.
 *
 * Why not a signal: undici's `request()` with a `signal` (an AbortSignal or an
 * EventEmitter alike) copies the options (`{ ...opts }`), makes four closures,
 * adds a listener to the signal and another to the response body, and removes
 * them again. With the default policy every attempt has a deadline, so every
 * attempt would pay that, the largest single cost of the default policy
 * (docs/benchmarks.md, "Library costs behind the design choices"). This
 * wrapper is one object and a forwarding call per handler event.
 *
 * How it reaches undici: the transport puts it in the request options under
 * `kAttemptControl`, and the endpoint pools (`MeshPool`, transport.ts) wrap
 * the handler that `request()` hands to `dispatch()` with it. The same options
 * carry `onQueued` under undici's queued-abort key (undici-internals.ts).
 *
 * Abort, by phase:
 * - not yet dispatched: cannot happen (the transport dispatches in the same
 *   tick as the layer arms the deadline, and the layer checks first);
 * - waiting for a connection (in a Pool's or a Client's queue): undici's
 *   cancel function from `onQueued` takes it out of the queue and fails it
 *   (`onResponseError`), so it is never sent and no connection is spent on it;
 *   a connection attempt nothing waits for any more is cancelled by undici;
 * - being handed to a connection right now (undici keeps it then, as it does
 *   for a signal): `onRequestStart` aborts it before anything is written;
 * - started: `controller.abort(reason)`; undici errors the request and the
 *   response body, if any, with `reason`;
 * - ended or failed: nothing. (The attempt timeout layer destroys a body not
 *   yet read when the caller aborts after the end.)
 *
 * Fallback: with an undici that has no queued-abort key, the transport gives
 * undici `signal` (an AbortSignal this control aborts) and no wrapper.
 */
import type { Dispatcher } from 'undici';
import { TimeoutError } from '../errors.ts';

/** The request-options key under which the transport hands the control to MeshPool. */
export const kAttemptControl: unique symbol = Symbol('inmesh.attemptControl');

type Controller = Dispatcher.DispatchController;
type DispatchHandler = Dispatcher.DispatchHandler;

export class AttemptControl implements DispatchHandler {
  /** The abort reason once aborted (an inmesh TimeoutError or AbortedError). */
  reason: Error | undefined = undefined;
  /** Which bound its deadline is, for the TimeoutError it fires with. */
  readonly #phase: 'attempt' | 'total';
  readonly #ms: number;
  readonly #service: string;
  #inner: DispatchHandler | undefined = undefined;
  #controller: Controller | undefined = undefined;
  /** undici's function taking this request out of the queue it waits in (latest queue wins). */
  #cancelQueued: ((reason: Error) => void) | undefined = undefined;
  /** Only with the signal fallback. */
  #signal: AbortController | undefined = undefined;
  #settled = false;
  /** The whole response arrived (onResponseEnd): an abort no longer reaches undici, the body is the caller's. */
  #ended = false;

  /**
   * Given to undici under its queued-abort key: called when the request has to
   * wait for a connection, with the function that takes it out of that queue.
   */
  readonly onQueued = (cancel: (reason: Error) => void): void => {
    if (this.reason !== undefined) cancel(this.reason);
    else this.#cancelQueued = cancel;
  };

  constructor(phase: 'attempt' | 'total', ms: number, service: string) {
    this.#phase = phase;
    this.#ms = ms;
    this.#service = service;
  }

  /** The error its deadline aborts the attempt with. */
  timeoutError(): TimeoutError {
    return new TimeoutError(this.#phase, this.#ms, { service: this.#service });
  }

  /** Called by MeshPool.dispatch with the handler of undici's request(). */
  wrap(inner: DispatchHandler): DispatchHandler {
    this.#inner = inner;
    return this;
  }

  get fired(): boolean {
    return this.reason !== undefined;
  }

  /** The signal of the fallback (an undici without the queued-abort key): undici is given this instead of the wrapper. */
  get signal(): AbortSignal {
    if (this.#signal === undefined) {
      this.#signal = new AbortController();
      // Aborted before undici was given the signal: it must see an aborted one.
      if (this.reason !== undefined) this.#signal.abort(this.reason);
    }
    return this.#signal.signal;
  }

  /** True once undici delivered the whole response: aborting then is up to the body's owner. */
  get ended(): boolean {
    return this.#ended;
  }

  abort(reason: Error): void {
    if (this.#settled || this.reason !== undefined) return;
    this.reason = reason;
    if (this.#signal !== undefined) {
      this.#signal.abort(reason);
      return;
    }
    const controller = this.#controller;
    if (controller !== undefined) {
      controller.abort(reason);
      return;
    }
    const cancel = this.#cancelQueued;
    this.#cancelQueued = undefined;
    // Queued: undici takes it out of the queue and fails it through onResponseError.
    // Neither (being handed to a connection now): onRequestStart aborts it.
    cancel?.(reason);
  }

  onRequestStart(controller: Controller, context: unknown): void {
    this.#cancelQueued = undefined;
    if (this.reason !== undefined) {
      controller.abort(this.reason);
      return;
    }
    this.#controller = controller;
    this.#inner?.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(controller: Controller, statusCode: number, headers: Parameters<NonNullable<DispatchHandler['onRequestUpgrade']>>[2], socket: Parameters<NonNullable<DispatchHandler['onRequestUpgrade']>>[3]): void {
    this.#inner?.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Parameters<NonNullable<DispatchHandler['onResponseStart']>>[2], statusMessage?: string): void {
    this.#inner?.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    this.#inner?.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Controller, trailers: Parameters<NonNullable<DispatchHandler['onResponseEnd']>>[1]): void {
    this.#settled = true;
    this.#ended = true;
    this.#inner?.onResponseEnd?.(controller, trailers);
  }

  // The optional events, forwarded so that the wrapped handler sees what it would unwrapped
  // (undici's RequestHandler implements none of them today).
  onRequestSent(): void {
    this.#inner?.onRequestSent?.();
  }

  onBodySent(chunk: Buffer): void {
    this.#inner?.onBodySent?.(chunk);
  }

  onResponseStarted(): void {
    this.#inner?.onResponseStarted?.();
  }

  onResponseError(controller: Controller, error: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#inner?.onResponseError?.(controller, error);
  }
}
