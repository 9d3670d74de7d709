/**
 * `mesh.dispatcher`: an undici `Dispatcher`, so `setGlobalDispatcher()` or any
 * undici-based client (`undici.request(url, { dispatcher })`) goes through the
 * mesh. `dispatch()` routes mesh hosts through the layer chain and hands every
 * other request, untouched, to the inner Agent. The chain's promise-level
 * response is replayed into undici 8's controller-style handler
 * (onRequestStart → onResponseStart → onResponseData* → onResponseEnd, or
 * onResponseError), with pause/resume mapped onto the body stream.
 *
 * `close()`/`destroy()` on this dispatcher do nothing: the mesh owns the pools
 * (`mesh.close()`).
 */
import { STATUS_CODES } from 'node:http';
import { Dispatcher } from 'undici';
import { AbortedError, ClosedError } from '../errors.ts';
import { EMPTY_OPTIONS, toMeshRequest, type HeadersInput } from './request.ts';
import type { MeshResponse } from '../core/types.ts';
import type { RuntimeLookup, UpstreamRuntime } from './upstream.ts';

class Controller implements Dispatcher.DispatchController {
  #aborted = false;
  #paused = false;
  #reason: Error | null = null;
  readonly ac = new AbortController();
  body: MeshResponse['body'] | undefined;

  get aborted(): boolean {
    return this.#aborted;
  }
  get paused(): boolean {
    return this.#paused;
  }
  get reason(): Error | null {
    return this.#reason;
  }
  abort(reason: Error): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.ac.abort(reason);
    this.body?.destroy(reason);
  }
  pause(): void {
    this.#paused = true;
    this.body?.pause();
  }
  resume(): void {
    this.#paused = false;
    this.body?.resume();
  }
}

function run(rt: UpstreamRuntime, url: URL, opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
  const controller = new Controller();
  let finished = false;
  const fail = (error: Error): void => {
    if (finished) return;
    finished = true;
    handler.onResponseError?.(controller, error);
  };
  try {
    handler.onRequestStart?.(controller, {});
    if (controller.aborted) {
      fail(controller.reason ?? new AbortedError({ service: rt.name }));
      return;
    }
    const req = toMeshRequest(rt.upstream, url, {
      method: opts.method,
      headers: opts.headers as HeadersInput,
      body: opts.body,
      signal: controller.ac.signal,
      options: EMPTY_OPTIONS,
    });
    rt.call(req).then(
      (res) => {
        if (controller.aborted) {
          res.body.destroy();
          fail(controller.reason ?? new AbortedError({ service: rt.name }));
          return;
        }
        controller.body = res.body;
        const body = res.body;
        body.on('error', fail);
        body.on('data', (chunk: Buffer) => {
          if (!finished) handler.onResponseData?.(controller, chunk);
        });
        body.on('end', () => {
          if (finished) return;
          finished = true;
          handler.onResponseEnd?.(controller, res.trailers);
        });
        handler.onResponseStart?.(controller, res.statusCode, res.headers, STATUS_CODES[res.statusCode] ?? '');
        if (controller.paused) body.pause();
      },
      (error: unknown) => fail(error as Error),
    );
  } catch (error) {
    fail(error as Error);
  }
}

export class MeshDispatcher extends Dispatcher {
  readonly #lookup: RuntimeLookup;
  readonly #passThrough: Dispatcher;

  constructor(lookup: RuntimeLookup, passThrough: Dispatcher) {
    super();
    this.#lookup = lookup;
    this.#passThrough = passThrough;
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (this.#lookup.closed) {
      handler.onResponseError?.(new Controller(), new ClosedError());
      return true;
    }
    const origin = opts.origin;
    if (origin === undefined) return this.#passThrough.dispatch(opts, handler);
    const url = new URL(opts.path, origin);
    let rt: UpstreamRuntime | undefined;
    try {
      rt = this.#lookup.runtimeFor(url.hostname);
    } catch (error) {
      handler.onResponseError?.(new Controller(), error as Error);
      return true;
    }
    if (rt === undefined) return this.#passThrough.dispatch(opts, handler);
    run(rt, url, opts, handler);
    return true;
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    if (callback !== undefined) {
      queueMicrotask(callback);
      return;
    }
    return Promise.resolve();
  }

  override destroy(err?: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const callback = typeof a === 'function' ? a : b;
    if (callback !== undefined) {
      queueMicrotask(callback);
      return;
    }
    return Promise.resolve();
  }
}
