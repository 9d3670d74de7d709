/**
 * `mesh.fetch(input, init)`: a WHATWG-compatible drop-in wrap of `fetch`.
 *
 * - Accepts a URL string, a URL or a Request, plus RequestInit (headers as
 *   Headers/record/pairs, AbortSignal, any BodyInit, `redirect`) and the
 *   per-call options.
 * - Mesh hosts go through the chain; the answer is a platform `Response` whose
 *   body is the upstream's body streamed as a web ReadableStream.
 * - Other hosts are handed to the platform `fetch` (with `redirect: 'manual'`
 *   when following, so that this file follows every redirect itself).
 * - Bodies: string, ArrayBuffer(View) and Buffer bodies are kept buffered (so
 *   they can be replayed on retry and on a redirect); URLSearchParams/Blob/
 *   FormData are serialized once into a buffer; a ReadableStream (and the body
 *   of a Request object) is streamed and therefore sent once, never retried,
 *   and a redirect that would have to send it again fails.
 *
 * Errors are WHATWG fetch's, so code written for `fetch` keeps working:
 * - the caller's abort rejects with `signal.reason` (a DOMException
 *   `AbortError` when `abort()` was given no reason);
 * - every other failure rejects with `TypeError('fetch failed', { cause })`,
 *   the typed inmesh error as `cause` (`isInmeshError(err.cause)`), as undici's
 *   fetch does with its own error; an unparsable URL is
 *   `TypeError('Failed to parse URL from …')`, cause InvalidArgumentError;
 * - a body that fails while read: translate.ts (`TypeError('terminated')`).
 *
 * Redirects (`redirect`, default 'follow', as fetch):
 * - 'follow': up to 20 redirects; `Location` is resolved with `new URL()`
 *   against the current URL; each hop is decided again (mesh host → the chain,
 *   any other → the platform fetch). 303 (for any method but HEAD) and a POST
 *   answered 301/302 become a GET without body (the `content-*` request headers
 *   dropped); any other redirect re-sends the body, which needs a buffered one.
 *   A redirect to another origin drops `authorization`, `cookie` and
 *   `proxy-authorization` (as undici does). The final Response has
 *   `redirected: true` and the final `url`.
 * - 'manual': the 3xx is returned as is.
 * - 'error': a redirect fails (TypeError).
 */
import { STATUS_CODES } from 'node:http';
import { Readable } from 'node:stream';
import { ClosedError, InvalidArgumentError } from '../errors.ts';
import { describeValue } from '../internal/describe.ts';
import { callOverridesOf, checkCall, checkUrl, toMeshRequest, type DispatchBody, type HeadersInput } from './request.ts';
import { markFetchBody } from './translate.ts';
import { DEADLINE_HEADER } from '../core/deadline-context.ts';
import type { CallOptions, MeshHeaders, MeshResponse } from '../core/types.ts';
import type { RuntimeLookup } from './upstream.ts';

export type MeshFetchInit = RequestInit & CallOptions;

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
/** WHATWG fetch's redirect limit. */
export const MAX_REDIRECTS = 20;
const CROSS_ORIGIN_DROPPED: ReadonlySet<string> = new Set(['authorization', 'cookie', 'proxy-authorization']);
const BODY_HEADERS: ReadonlySet<string> = new Set([
  'content-encoding',
  'content-language',
  'content-location',
  'content-type',
  'content-length',
]);
/** Written into the headers by the mesh for one hop (request.ts, transport.ts), never carried to the next. */
const PER_HOP: ReadonlySet<string> = new Set(['host', DEADLINE_HEADER]);

type RedirectMode = 'follow' | 'manual' | 'error';

/** A fetch BodyInit as undici sends it, and the content type it implies (used when the headers give none). */
interface FetchBody {
  readonly body: DispatchBody;
  readonly contentType?: string | undefined;
}

async function toDispatchBody(body: unknown): Promise<FetchBody> {
  if (body === null || body === undefined) return { body: null };
  if (typeof body === 'string') return { body, contentType: 'text/plain;charset=UTF-8' };
  if (body instanceof Uint8Array) return { body };
  if (body instanceof ArrayBuffer) return { body: Buffer.from(body) };
  if (ArrayBuffer.isView(body)) return { body: Buffer.from(body.buffer, body.byteOffset, body.byteLength) };
  if (body instanceof ReadableStream) return { body: Readable.fromWeb(body) };
  if (body instanceof URLSearchParams) return { body: body.toString(), contentType: 'application/x-www-form-urlencoded;charset=UTF-8' };
  // Blob, FormData and anything else BodyInit allows: let the platform serialize it once.
  const serialized = new Response(body as ConstructorParameters<typeof Response>[0]);
  return { body: Buffer.from(await serialized.arrayBuffer()), contentType: serialized.headers.get('content-type') ?? undefined };
}

/**
 * The upstream body as a web ReadableStream. Not `Readable.toWeb()`: with
 * undici's BodyReadable it enqueues chunks still buffered after the consumer
 * cancelled, and `enqueue` on the closed controller throws out of a 'data'
 * listener (an uncaught ERR_INVALID_STATE) — `res.body.cancel()` on an unread
 * response crashed the process. Same shape otherwise: chunks copied off the
 * socket's buffer (a consumer may transfer them), paused when the queue is full
 * (64 KiB), resumed on pull; cancel destroys the body.
 */
function toWebStream(body: MeshResponse['body']): ReadableStream<Uint8Array> {
  let closed = false;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        body.on('data', (chunk: Buffer) => {
          if (closed) return;
          controller.enqueue(new Uint8Array(chunk));
          if ((controller.desiredSize ?? 1) <= 0) body.pause();
        });
        body.once('end', () => {
          if (closed) return;
          closed = true;
          controller.close();
        });
        body.on('error', (error: Error) => {
          if (closed) return;
          closed = true;
          controller.error(error);
        });
        body.once('close', () => {
          if (closed) return;
          closed = true;
          controller.error(new TypeError('terminated'));
        });
        body.pause();
      },
      pull() {
        body.resume();
      },
      cancel(reason: unknown) {
        closed = true;
        body.destroy(reason instanceof Error ? reason : undefined);
      },
    },
    { highWaterMark: 65_536, size: (chunk) => chunk.byteLength },
  );
}

export function toWebResponse(res: MeshResponse, url: URL, method: string): Response {
  const headers = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.append(name, value);
  }
  const nullBody = NULL_BODY_STATUS.has(res.statusCode) || method === 'HEAD';
  if (nullBody) res.body.dump().catch(() => undefined);
  else markFetchBody(res.body);
  const body = nullBody ? null : toWebStream(res.body);
  const response = new Response(body, { status: res.statusCode, statusText: STATUS_CODES[res.statusCode] ?? '', headers });
  Object.defineProperty(response, 'url', { value: url.href, enumerable: true });
  return response;
}

/** A failure as WHATWG fetch reports it: TypeError('fetch failed') with the cause. */
function fetchFailed(cause: unknown, message = 'fetch failed'): TypeError {
  return new TypeError(message, { cause });
}

/** The state of a redirect hop (after the first): everything needed to send it again. */
interface Hop {
  url: URL;
  method: string;
  headers: MeshHeaders;
  /** A buffered body or null. */
  body: string | Uint8Array | null;
  /** The body was streamed: it cannot be sent again. */
  streamed: boolean;
  readonly signal: AbortSignal | undefined;
  readonly options: Readonly<CallOptions>;
  readonly redirect: RedirectMode;
  /** The caller's RequestInit: its other fields (credentials, keepalive, referrer, …) go to pass-through hops. */
  readonly init: MeshFetchInit | undefined;
}

function redirectModeOf(init: MeshFetchInit | undefined, request: Request | undefined): RedirectMode {
  const mode: string = init?.redirect ?? request?.redirect ?? 'follow';
  if (mode !== 'follow' && mode !== 'manual' && mode !== 'error') {
    throw fetchFailed(new InvalidArgumentError(`redirect must be 'follow', 'manual' or 'error' (got ${mode})`));
  }
  return mode;
}

function replayable(body: DispatchBody): Pick<Hop, 'body' | 'streamed'> {
  if (body === null || body === undefined) return { body: null, streamed: false };
  if (typeof body === 'string' || body instanceof Uint8Array) return { body, streamed: false };
  return { body: null, streamed: true };
}

function without(headers: MeshHeaders, drop: (name: string) => boolean): MeshHeaders {
  const out = Object.create(null) as MeshHeaders;
  for (const [k, v] of Object.entries(headers)) if (!drop(k)) out[k] = v;
  return out;
}

/** The next hop after a redirect response, or a TypeError (fetch's network error). */
function nextHop(hop: Hop, status: number, location: string): Hop {
  let url: URL;
  try {
    url = new URL(location, hop.url);
  } catch (cause) {
    throw fetchFailed(new InvalidArgumentError(`invalid redirect location: ${location}`, { cause }));
  }
  try {
    checkUrl(url);
  } catch (cause) {
    throw fetchFailed(cause);
  }
  const crossOrigin = url.origin !== hop.url.origin;
  const toGet =
    (status === 303 && hop.method !== 'GET' && hop.method !== 'HEAD') ||
    ((status === 301 || status === 302) && hop.method === 'POST');
  if (!toGet && hop.streamed) {
    throw fetchFailed(
      new InvalidArgumentError(`cannot follow a ${status} redirect: the request body was streamed and cannot be sent again`),
    );
  }
  const headers = without(
    hop.headers,
    (h) => PER_HOP.has(h) || (toGet && BODY_HEADERS.has(h)) || (crossOrigin && CROSS_ORIGIN_DROPPED.has(h)),
  );
  if (toGet) return { ...hop, url, method: 'GET', headers, body: null, streamed: false };
  return { ...hop, url, headers };
}

function webHeaders(headers: MeshHeaders): Headers {
  const out = new Headers();
  for (const [k, v] of Object.entries(headers)) {
    if (Array.isArray(v)) for (const item of v) out.append(k, item);
    else out.append(k, v);
  }
  return out;
}

function markRedirected(response: Response, url: URL): Response {
  Object.defineProperty(response, 'url', { value: url.href, enumerable: true });
  Object.defineProperty(response, 'redirected', { value: true, enumerable: true });
  return response;
}

/** One hop after the first: through the mesh when its host is a mesh service, else the platform fetch. */
async function sendHop(lookup: RuntimeLookup, hop: Hop): Promise<{ response: Response } | { status: number; location: string }> {
  const rt = lookup.runtimeFor(hop.url.hostname);
  const body = hop.body;
  if (rt === undefined) {
    const init: RequestInit = { ...hop.init, method: hop.method, headers: webHeaders(hop.headers), body, redirect: 'manual' };
    if (hop.signal !== undefined) init.signal = hop.signal;
    const response = await globalThis.fetch(hop.url, init);
    const location = response.headers.get('location');
    if (!REDIRECT_STATUS.has(response.status) || location === null || hop.redirect === 'manual') return { response };
    await response.body?.cancel();
    return { status: response.status, location };
  }
  const req = toMeshRequest(rt.upstream, hop.url, { method: hop.method, headers: hop.headers, body, signal: hop.signal, options: hop.options });
  const res = await rt.call(req);
  const location = res.headers.location;
  if (!REDIRECT_STATUS.has(res.statusCode) || location === undefined || hop.redirect === 'manual') {
    return { response: toWebResponse(res, hop.url, hop.method) };
  }
  res.body.dump().catch(() => undefined);
  return { status: res.statusCode, location: Array.isArray(location) ? (location[0] as string) : location };
}

async function follow(lookup: RuntimeLookup, first: Hop, status: number, location: string): Promise<Response> {
  let hop = first;
  for (let n = 1; ; n++) {
    if (hop.redirect === 'error') throw fetchFailed(new InvalidArgumentError(`unexpected redirect (${status}) with redirect: 'error'`));
    if (n > MAX_REDIRECTS) throw fetchFailed(new InvalidArgumentError(`more than ${MAX_REDIRECTS} redirects`));
    hop = nextHop(hop, status, location);
    const out = await sendHop(lookup, hop);
    if ('response' in out) return markRedirected(out.response, hop.url);
    ({ status, location } = out);
  }
}

async function meshFetchInner(lookup: RuntimeLookup, input: string | URL | Request, init: MeshFetchInit | undefined): Promise<Response> {
  if (lookup.closed) throw new ClosedError();
  const request = input instanceof Request ? input : undefined;
  let url: URL;
  try {
    url = request !== undefined ? new URL(request.url) : typeof input === 'string' ? new URL(input) : (input as URL);
  } catch (cause) {
    // fetch's own message names the input as given; ours shows it shortened and escaped.
    const shown = typeof input === 'string' ? input.slice(0, 120) : 'object';
    throw fetchFailed(new InvalidArgumentError(`invalid URL: ${describeValue(input)}`, { cause }), `Failed to parse URL from ${shown}`);
  }
  checkUrl(url);
  const redirect = redirectModeOf(init, request);
  const options = callOverridesOf(init);
  const rt = lookup.runtimeFor(url.hostname);
  const method: unknown = init?.method ?? request?.method;
  const headersInput = (init?.headers ?? request?.headers) as HeadersInput;
  const rawBody = init?.body !== undefined ? init.body : (request?.body ?? null);
  const signal: unknown = init?.signal ?? request?.signal ?? undefined;
  if (rt === undefined) {
    if (redirect !== 'follow') return globalThis.fetch(input, init);
    // Follow here, hop by hop, so that a redirect to a mesh host goes through the mesh.
    const response = await globalThis.fetch(input, { ...init, redirect: 'manual' });
    const location = response.headers.get('location');
    if (!REDIRECT_STATUS.has(response.status) || location === null) return response;
    await response.body?.cancel();
    const body = rawBody instanceof ReadableStream ? { body: null } : await toDispatchBody(rawBody);
    const call = checkCall(url, { method, headers: headersInput, body: body.body, signal, options, contentType: body.contentType });
    const first: Hop = {
      url,
      method: call.method,
      headers: call.headers,
      ...(rawBody instanceof ReadableStream ? { body: null, streamed: true } : replayable(call.body)),
      signal: call.signal,
      options,
      redirect,
      init,
    };
    return follow(lookup, first, response.status, location);
  }
  const body = await toDispatchBody(rawBody);
  const req = toMeshRequest(rt.upstream, url, { method, headers: headersInput, body: body.body, signal, options, contentType: body.contentType });
  req.signal?.throwIfAborted();
  const res = await rt.call(req);
  if (redirect === 'manual' || !REDIRECT_STATUS.has(res.statusCode) || res.headers.location === undefined) {
    return toWebResponse(res, url, req.method);
  }
  res.body.dump().catch(() => undefined);
  const location = res.headers.location;
  const first: Hop = { url, method: req.method, headers: req.headers, ...replayable(req.body), signal: req.signal, options, redirect, init };
  return follow(lookup, first, res.statusCode, Array.isArray(location) ? (location[0] as string) : location);
}

export async function meshFetch(lookup: RuntimeLookup, input: string | URL | Request, init?: MeshFetchInit): Promise<Response> {
  try {
    return await meshFetchInner(lookup, input, init);
  } catch (error) {
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    if (signal?.aborted === true) throw signal.reason;
    if (error instanceof TypeError) throw error; // already fetch's shape (ours, or the platform fetch's)
    throw fetchFailed(error);
  }
}
