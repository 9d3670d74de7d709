/**
 * Where the wire tier's errors (undici, node:net) become inmesh errors; the
 * original error is always kept as `cause`. Each other library is translated
 * at its own adapter: opossum's in resilience/breaker.ts, Bottleneck's in
 * resilience/rate-limit.ts.
 *
 * Two entry points, both here:
 * - `translateError`: the transport calls it for every failed attempt (before
 *   the response headers). An inmesh error (our own abort reasons:
 *   TimeoutError, AbortedError) passes unchanged; the caller's signal fired →
 *   AbortedError; a request undici refused before sending anything
 *   (`UND_ERR_INVALID_ARG`, `UND_ERR_NOT_SUPPORTED`: the caller's input) →
 *   InvalidArgumentError, which no layer counts against the upstream and
 *   none retries; anything else from undici / node:net (`UND_ERR_*`,
 *   `ECONNREFUSED`, `ECONNRESET`, …) → UpstreamError with one attempt record
 *   whose `error` is the original code (classify.ts reads that code). A
 *   p-retry AbortError is unwrapped first.
 * - `guardBody`: the transport calls it on every response body, so the errors
 *   met while the caller READS the body (the server cut the connection
 *   mid-body: undici's SocketError; bodyTimeout) are translated too, into
 *   UpstreamError with `phase: 'body'`.
 *
 * How `guardBody` stays O(1) (no PassThrough/Transform per request, which
 * costs µs): it sets two own properties on the body instance, `destroy` (one
 * shared function, no closure) and the request it belongs to. undici ends a
 * failed body with `body.destroy(err)` (lib/core/util.js `destroy()`), and so
 * does every consumer; translating there, BEFORE Node's `destroy()` records the
 * error, means the 'error' event, `body.errored`, `body.text()` and async
 * iteration all see the translated error. Nothing is allocated unless a body
 * fails.
 *
 * A body handed to `mesh.fetch` is marked (`markFetchBody`): its errors become
 * what WHATWG fetch gives for a failed body read — the caller's
 * `signal.reason` after an abort, else `TypeError('terminated', { cause:
 * <the inmesh error> })`.
 */
import { AbortError as PRetryAbortError } from 'p-retry';
import { AbortedError, InvalidArgumentError, isInmeshError, UpstreamError, type InmeshError } from '../errors.ts';
import type { MeshRequest, MeshResponse } from '../core/types.ts';

export function endpointLabel(req: MeshRequest): string | undefined {
  const ep = req.endpoint;
  return ep === undefined ? undefined : `${ep.address}:${ep.port}`;
}

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** undici's codes for a request it refused before sending anything (the caller's input, not the upstream). */
const LOCALLY_REFUSED: ReadonlySet<string> = new Set(['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED']);

export function translateError(error: unknown, req: MeshRequest): InmeshError {
  if (isInmeshError(error)) return error;
  if (error instanceof PRetryAbortError) return translateError(error.originalError, req);
  if (req.signal?.aborted === true) return new AbortedError({ cause: error, service: req.service });
  const code = codeOf(error);
  if (code !== undefined && LOCALLY_REFUSED.has(code)) {
    const message = (error as { message?: unknown }).message;
    return new InvalidArgumentError(`request refused before sending: ${typeof message === 'string' ? message : code}`, { cause: error, service: req.service });
  }
  const name = (error as { name?: unknown } | null)?.name;
  const label = codeOf(error) ?? (typeof name === 'string' ? name : 'Error');
  return new UpstreamError(req.service, [{ endpoint: endpointLabel(req), error: label }], { cause: error });
}

const kRequest = Symbol('inmesh.bodyRequest');
const kFetch = Symbol('inmesh.fetchBody');

type Body = MeshResponse['body'];
interface GuardedBody {
  [kRequest]: MeshRequest;
  [kFetch]?: true;
  _readableState: { endEmitted: boolean };
}
type Destroy = (this: Body, error?: Error | null, cb?: (err: Error | null) => void) => Body;

/** Readable.prototype.destroy, as found on the first body's prototype (undici's BodyReadable does not override it). */
let baseDestroy: Destroy | undefined;

/**
 * What a failed body reports. Errors that came from undici or node (a string
 * `code`) and the caller's abort are translated; an error the caller passed to
 * `body.destroy(err)` itself is theirs and stays as it is.
 */
export function translateBodyError(error: Error | null | undefined, req: MeshRequest, fetch: boolean): Error | null | undefined {
  if (fetch && req.signal?.aborted === true) return req.signal.reason as Error;
  let out: Error;
  if (error === null || error === undefined) {
    // destroy() before the end: undici would make a RequestAbortedError; it is the caller's abort.
    out = new AbortedError({ service: req.service });
  } else if (isInmeshError(error)) {
    out = error;
  } else if (req.signal?.aborted === true) {
    out = new AbortedError({ cause: error, service: req.service });
  } else if (codeOf(error) !== undefined) {
    out = new UpstreamError(req.service, [{ endpoint: endpointLabel(req), error: codeOf(error) ?? 'Error' }], {
      cause: error,
      phase: 'body',
    });
  } else {
    return error;
  }
  return fetch ? new TypeError('terminated', { cause: out }) : out;
}

function guardedDestroy(this: Body, error?: Error | null, cb?: (err: Error | null) => void): Body {
  // Already destroyed (Node ignores the call) or ended cleanly (no error): nothing to translate.
  const self = this as Body & GuardedBody;
  const clean = (error === null || error === undefined) && self._readableState.endEmitted;
  const e = self.destroyed || clean ? error : translateBodyError(error, self[kRequest], self[kFetch] === true);
  return (baseDestroy as Destroy).call(this, e, cb);
}

/** Makes the errors met while reading `body` inmesh errors (O(1), see the top of this file). */
export function guardBody(body: Body, req: MeshRequest): void {
  baseDestroy ??= Reflect.get(Object.getPrototypeOf(body) as object, 'destroy') as Destroy;
  (body as Body & GuardedBody)[kRequest] = req;
  (body as unknown as { destroy: Destroy }).destroy = guardedDestroy;
}

/** The body is read through `mesh.fetch`: report failures as WHATWG fetch does (see the top). */
export function markFetchBody(body: Body): void {
  (body as Body & GuardedBody)[kFetch] = true;
}
