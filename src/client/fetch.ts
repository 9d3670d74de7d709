/**
 * `mesh.fetch(input, init)`: a WHATWG-compatible drop-in wrap of `fetch`.
 *
 * - Accepts a URL string, a URL or a Request, plus RequestInit (headers as
 *   Headers/record/pairs, AbortSignal, any BodyInit) and the per-call options.
 * - Mesh hosts go through the chain; the answer is a platform `Response` whose
 *   body is the upstream's body streamed as a web ReadableStream.
 * - Other hosts are handed to the platform `fetch` exactly as given.
 * - Bodies: string, ArrayBuffer(View) and Buffer bodies are kept buffered (so
 *   they can be replayed on retry); URLSearchParams/Blob/FormData are
 *   serialized once into a buffer; a ReadableStream (and the body of a Request
 *   object) is streamed and therefore sent once, never retried.
 * - Redirects are not followed (service-to-service calls get the 3xx as is).
 */
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { InvalidArgumentError, isInmeshError } from '../errors.ts';
import { buildMeshRequest, callOptionsOf, normalizeHeaders } from './request.ts';
import { markFetchBody } from './translate.ts';
import type { CallOptions, MeshResponse } from './types.ts';
import type { RuntimeLookup } from './upstream.ts';

export type MeshFetchInit = RequestInit & CallOptions;

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);

type DispatchBody = Dispatcher.DispatchOptions['body'];

async function toDispatchBody(body: unknown, headers: Record<string, string | string[]>): Promise<DispatchBody> {
  if (body === null || body === undefined) return null;
  if (typeof body === 'string') {
    headers['content-type'] ??= 'text/plain;charset=UTF-8';
    return body;
  }
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  if (body instanceof ReadableStream) return Readable.fromWeb(body);
  if (body instanceof URLSearchParams) {
    headers['content-type'] ??= 'application/x-www-form-urlencoded;charset=UTF-8';
    return body.toString();
  }
  // Blob, FormData and anything else BodyInit allows: let the platform serialize it once.
  const serialized = new Response(body as ConstructorParameters<typeof Response>[0]);
  const type = serialized.headers.get('content-type');
  if (type !== null) headers['content-type'] ??= type;
  return Buffer.from(await serialized.arrayBuffer());
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
  const body = nullBody ? null : (Readable.toWeb(res.body) as unknown as ReadableStream<Uint8Array>);
  const response = new Response(body, { status: res.statusCode, headers });
  Object.defineProperty(response, 'url', { value: url.href, enumerable: true });
  return response;
}

export async function meshFetch(lookup: RuntimeLookup, input: string | URL | Request, init?: MeshFetchInit): Promise<Response> {
  const request = input instanceof Request ? input : undefined;
  let url: URL;
  try {
    url = request !== undefined ? new URL(request.url) : typeof input === 'string' ? new URL(input) : (input as URL);
  } catch (cause) {
    throw new InvalidArgumentError(`invalid URL: ${typeof input === 'string' ? input : 'object'}`, { cause });
  }
  const rt = lookup.runtimeFor(url.hostname);
  if (rt === undefined) return globalThis.fetch(input, init);
  const method = (init?.method ?? request?.method ?? 'GET').toUpperCase();
  const headers = normalizeHeaders(
    init?.headers !== undefined ? new Headers(init.headers) : request !== undefined ? request.headers : undefined,
  );
  const rawBody = init?.body !== undefined ? init.body : (request?.body ?? null);
  const body = await toDispatchBody(rawBody, headers);
  const signal = init?.signal ?? request?.signal ?? undefined;
  signal?.throwIfAborted();
  let req;
  try {
    req = buildMeshRequest(rt.upstream, url, { method, headers, body, signal, options: callOptionsOf(init) });
  } catch (error) {
    throw isInmeshError(error) ? error : new InvalidArgumentError('invalid request', { cause: error });
  }
  const res = await rt.call(req);
  return toWebResponse(res, url, method);
}
