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
 * attempt paid that: about 3 µs of client CPU per request under load
 * (`raw-3pools-wire-signal` against `raw-3pools-wire` in the benchmark's
 * ablation cells), the largest single cost of the default policy. This
 * wrapper is one object and a forwarding call per handler event.
 *
 * How it reaches undici: the transport puts it in the request options under
 * `kAttemptControl`, and the endpoint pools (`MeshPool`, transport.ts) wrap
 * the handler that `request()` hands to `dispatch()` with it.
 *
 * Abort, by phase:
 * - not yet dispatched: cannot happen (the transport dispatches in the same
 *   tick as the layer arms the deadline, and the layer checks first);
 * - dispatched, not yet started (waiting for a connection): the attempt fails
 *   at once (the inner handler's `onResponseError`), and when undici would
 *   start it, `onRequestStart` aborts it, so it is never sent;
 * - started: `controller.abort(reason)`; undici errors the request and the
 *   response body, if any, with `reason`;
 * - ended or failed: nothing.
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
  #settled = false;

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

  abort(reason: Error): void {
    if (this.#settled || this.reason !== undefined) return;
    this.reason = reason;
    const controller = this.#controller;
    if (controller !== undefined) {
      controller.abort(reason);
      return;
    }
    const inner = this.#inner;
    if (inner === undefined) return;
    // Queued: fail the attempt now; onRequestStart aborts it before anything is sent.
    this.#settled = true;
    inner.onResponseError?.(null as unknown as Controller, reason);
  }

  onRequestStart(controller: Controller, context: unknown): void {
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
