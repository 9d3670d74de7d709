/**
 * The one way a call's input becomes a MeshRequest (`toMeshRequest`), for
 * `mesh.request`, `mesh.fetch` and `mesh.dispatcher` alike, and the checks
 * every call's input passes first, mesh host or not (`checkCall`).
 *
 * A request that undici would refuse before sending anything (a header name
 * or value it cannot put on the wire, a method that is not a token, a body of
 * a type it cannot send) is refused here with InvalidArgumentError naming the
 * argument and the value: the caller's mistake never reaches an endpoint, so
 * it never counts toward outlier detection, the breaker or the retry budget.
 * What undici refuses beyond these checks is translated to the same error at
 * the transport (translate.ts).
 *
 * Headers are copied once into a fresh null-prototype object with lower-case
 * names that every attempt reuses (a header named `constructor` or
 * `__proto__` is a header like any other); the route is matched once.
 */
import { stringify } from 'node:querystring';
import type { Dispatcher } from 'undici';
import type { CallOptions, MeshHeaders, MeshRequest, ResolvedCallOptions } from '../core/types.ts';

export { EMPTY_OPTIONS, callOverridesOf };
import { InvalidArgumentError } from '../errors.ts';
import { describeValue } from '../internal/describe.ts';
import { matchRoute } from '../policy/index.ts';
import { EMPTY_OPTIONS, callOverridesOf } from '../core/call-options.ts';
import type { ResolvedUpstream } from '../policy/types.ts';

/** Header values as callers pass them (undici style, Node style, pairs, or a WHATWG Headers). */
export type HeadersInput =
  | Record<string, string | readonly string[] | number | undefined>
  | Iterable<readonly [string, string]>
  | readonly string[]
  | null
  | undefined;

export type DispatchBody = Dispatcher.DispatchOptions['body'];

/**
 * Options of `mesh.request()`: the subset of undici's `request` options that
 * the mesh honours, plus the per-call overrides (CallOptions). The other
 * undici options (UNSUPPORTED_REQUEST_OPTIONS) are refused with
 * InvalidArgumentError rather than silently ignored; docs/data-path.md says
 * why each is left out.
 */
export interface MeshRequestOptions extends CallOptions {
  /** An HTTP method token, upper-cased. @default 'GET' */
  method?: string;
  headers?: HeadersInput;
  body?: string | Buffer | Uint8Array | NodeJS.ReadableStream | Iterable<Uint8Array> | AsyncIterable<Uint8Array> | null;
  signal?: AbortSignal;
  /**
   * Query parameters appended to the path, serialized as undici does
   * (`node:querystring` `stringify`); refused when the URL already has a `?` or `#`.
   */
  query?: Record<string, unknown>;
}

/**
 * undici `request()` options that `mesh.request()` does not honour, with the
 * reason; passing one throws InvalidArgumentError naming it.
 */
export const UNSUPPORTED_REQUEST_OPTIONS: Readonly<Record<string, string>> = Object.freeze({
  origin: 'the URL gives the origin',
  path: 'the URL gives the path',
  dispatcher: 'mesh hosts use the mesh, others the passThrough dispatcher',
  opaque: 'not carried through the layers',
  onInfo: 'informational (1xx) responses are not reported',
  responseHeaders: "raw headers are not kept ('raw' unsupported)",
  highWaterMark: "the body stream uses undici's default",
  throwOnError: "a status is a response (the mesh's own failures are errors)",
  headersTimeout: 'use perTryTimeout / timeout (the deadline layers own time)',
  bodyTimeout: "set by the transport's pool",
  upgrade: 'upgrades are not proxied by the mesh',
  blocking: 'pipelining is off (pipelining: 1)',
  reset: 'connections are pooled per endpoint',
  expectContinue: 'HTTP/2 only',
  typeOfService: 'per pool, not per request',
  maxRedirections: 'redirects are returned (undici request does not follow them either)',
});


/** An RFC 9110 token (method, header name); undici's own rule. */
const TOKEN = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/;
/** A character undici refuses in a header value (CR, LF, NUL and other controls, anything above U+00FF). */
const BAD_VALUE_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

/** The input of one call, as each entry point has it. */
export interface CallInput {
  /** @default 'GET' */
  readonly method?: unknown;
  readonly headers?: HeadersInput;
  readonly body?: unknown;
  readonly signal?: unknown;
  /** The per-call overrides, checked (callOptionsOf / callOverridesOf). */
  readonly options: Readonly<ResolvedCallOptions>;
  /**
   * The content type the body implies (fetch's BodyInit), set when the
   * headers have none.
   */
  readonly contentType?: string | undefined;
}

/** A call's input after the checks every call passes, mesh host or not. */
export interface CheckedCall {
  readonly method: string;
  readonly headers: MeshHeaders;
  readonly body: DispatchBody;
  readonly signal: AbortSignal | undefined;
  readonly path: string;
}

/**
 * Checks and normalizes a call's input (URL scheme and credentials, method,
 * headers, body, signal): InvalidArgumentError naming the argument otherwise.
 */
export function checkCall(url: URL, input: CallInput): CheckedCall {
  checkUrl(url);
  const method = methodOf(input.method);
  const headers = normalizeHeaders(input.headers);
  if (input.contentType !== undefined && headers['content-type'] === undefined) headers['content-type'] = input.contentType;
  return {
    method,
    headers,
    body: bodyOf(input.body),
    signal: signalOf(input.signal),
    path: requestPath(url, input.options),
  };
}

/** THE function that turns a call's input into the MeshRequest the layers see. */
export function toMeshRequest(upstream: Readonly<ResolvedUpstream>, url: URL, input: CallInput): MeshRequest {
  const call = checkCall(url, input);
  const headers = call.headers;
  headers.host = url.host;
  const policy = matchRoute(upstream, call.method, call.path, headers);
  return {
    service: upstream.name,
    upstream,
    policy,
    method: call.method,
    path: call.path,
    host: url.host,
    hostname: url.hostname,
    protocol: url.protocol === 'https:' ? 'https:' : 'http:',
    headers,
    body: call.body,
    signal: call.signal,
    attemptControl: undefined,
    options: input.options,
    deadline: Infinity,
    deadlineMs: 0,
    tried: undefined,
    subset: undefined,
    attempt: 0,
    endpoint: undefined,
  };
}

/** The URL with its password hidden, for messages. */
export function shownUrl(url: URL): string {
  if (url.username === '' && url.password === '') return url.href;
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy.href;
}

/** http(s) only; no credentials in the URL (WHATWG fetch refuses them too: they would be sent to every endpoint). */
export function checkUrl(url: URL): void {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`url: only http: and https: URLs can be requested (got ${describeValue(url.protocol)} in ${describeValue(shownUrl(url))})`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new InvalidArgumentError(
      `url: credentials in the URL are refused, as fetch does (got ${describeValue(shownUrl(url))} with a user name${url.password === '' ? '' : ' and a password'}); send an authorization header instead`,
    );
  }
}

function methodOf(value: unknown): string {
  if (value === undefined || value === null) return 'GET';
  if (typeof value !== 'string' || !TOKEN.test(value)) {
    throw new InvalidArgumentError(`method must be an HTTP method token (got ${describeValue(value)})`);
  }
  return value.toUpperCase();
}

function signalOf(value: unknown): AbortSignal | undefined {
  if (value === undefined || value === null) return undefined;
  if (!(value instanceof AbortSignal)) throw new InvalidArgumentError(`signal must be an AbortSignal (got ${describeValue(value)})`);
  return value;
}

function isBodyObject(body: object): boolean {
  return (
    body instanceof Uint8Array ||
    ArrayBuffer.isView(body) ||
    body instanceof ArrayBuffer ||
    typeof (body as { pipe?: unknown }).pipe === 'function' ||
    Symbol.iterator in body ||
    Symbol.asyncIterator in body ||
    body instanceof Blob
  );
}

/** A body undici can send: a string, bytes, a stream, an (async) iterable of chunks, a Blob, or none. */
function bodyOf(body: unknown): DispatchBody {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string' || (typeof body === 'object' && isBodyObject(body))) return body as DispatchBody;
  throw new InvalidArgumentError(
    `body must be a string, a Buffer or Uint8Array, a readable stream, an iterable or async iterable of chunks, or a Blob (got ${describeValue(body)})`,
  );
}

function headerName(name: unknown): string {
  if (typeof name !== 'string' || !TOKEN.test(name)) {
    throw new InvalidArgumentError(`headers: ${describeValue(name)} is not a valid header name`);
  }
  return name.toLowerCase();
}

function headerValue(name: string, value: unknown): string {
  // undici's coercions: null is an empty value, other primitives their string.
  const text =
    typeof value === 'string'
      ? value
      : value === null
        ? ''
        : typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint'
          ? String(value)
          : undefined;
  if (text === undefined) throw new InvalidArgumentError(`headers: the value of ${describeValue(name)} must be a string or a number (got ${describeValue(value)})`);
  const bad = BAD_VALUE_CHAR.exec(text);
  if (bad !== null) {
    const code = bad[0].codePointAt(0) ?? 0;
    throw new InvalidArgumentError(
      `headers: the value of ${describeValue(name)} has a character that cannot be sent (U+${code.toString(16).toUpperCase().padStart(4, '0')} at ${bad.index}): ${describeValue(text)}`,
    );
  }
  return text;
}

function add(out: MeshHeaders, name: unknown, value: unknown): void {
  const k = headerName(name);
  if (Array.isArray(value)) {
    for (const item of value as unknown[]) add(out, k, item);
    return;
  }
  const v = headerValue(k, value);
  const prev = out[k];
  if (prev === undefined) out[k] = v;
  else if (Array.isArray(prev)) prev.push(v);
  else out[k] = [prev, v];
}

/**
 * Copies headers into a fresh null-prototype object with lower-case names,
 * checking each name and value. Takes a record, a `Headers`, an iterable of
 * `[name, value]` pairs, or undici's flat `[name, value, name, value]` array.
 */
export function normalizeHeaders(input: HeadersInput): MeshHeaders {
  const out = Object.create(null) as MeshHeaders;
  if (input === null || input === undefined) return out;
  if (typeof input !== 'object') throw new InvalidArgumentError(`headers must be an object, a Headers or an array of pairs (got ${describeValue(input)})`);
  if (Array.isArray(input)) {
    const list = input as readonly unknown[];
    if (list.length > 0 && Array.isArray(list[0])) {
      for (const pair of list) {
        if (!Array.isArray(pair) || pair.length !== 2) throw new InvalidArgumentError(`headers: every pair must be [name, value] (got ${describeValue(pair)})`);
        add(out, pair[0], pair[1]);
      }
      return out;
    }
    if (list.length % 2 !== 0) throw new InvalidArgumentError(`headers: a flat array must hold name, value pairs (got ${list.length} items)`);
    for (let i = 0; i < list.length; i += 2) add(out, list[i], list[i + 1]);
    return out;
  }
  if (typeof (input as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const pair of input as Iterable<readonly [string, string]>) add(out, pair[0], pair[1]);
    return out;
  }
  const rec = input as Record<string, unknown>;
  for (const key of Object.keys(rec)) {
    const v = rec[key];
    if (v !== undefined) add(out, key, v);
  }
  return out;
}

/** Path and query of a call: the URL's, or the URL's path with the serialized `query` option. */
export function requestPath(url: URL, options: Readonly<ResolvedCallOptions>): string {
  const query = options.query;
  return query === undefined ? url.pathname + url.search : pathWithQuery(url, query);
}

/** The path of `url` with the serialized `query` option appended (undici's rule: not when the URL has `?` or `#`). */
function pathWithQuery(url: URL, query: string): string {
  if (url.search !== '' || url.hash !== '' || url.href.endsWith('?') || url.href.endsWith('#')) {
    throw new InvalidArgumentError(`query cannot be passed when the URL already contains "?" or "#" (got ${shownUrl(url)})`);
  }
  return query === '' ? url.pathname : `${url.pathname}?${query}`;
}

/**
 * The options of one `mesh.request()` call, checked: an unsupported undici
 * option → InvalidArgumentError; the per-call overrides and `query` resolved.
 * No allocation when no override and no query is given (the common call).
 */
export function callOptionsOf(o: MeshRequestOptions | undefined): Readonly<ResolvedCallOptions> {
  if (o === undefined) return EMPTY_OPTIONS;
  // One property read per unsupported name: cheaper than a for-in over the caller's keys.
  const u = o as Record<string, unknown>;
  if (
    u.origin !== undefined ||
    u.path !== undefined ||
    u.dispatcher !== undefined ||
    u.opaque !== undefined ||
    u.onInfo !== undefined ||
    u.responseHeaders !== undefined ||
    u.highWaterMark !== undefined ||
    u.throwOnError !== undefined ||
    u.headersTimeout !== undefined ||
    u.bodyTimeout !== undefined ||
    u.upgrade !== undefined ||
    u.blocking !== undefined ||
    u.reset !== undefined ||
    u.expectContinue !== undefined ||
    u.typeOfService !== undefined ||
    u.maxRedirections !== undefined
  ) {
    refuseUnsupported(u);
  }
  const overrides = callOverridesOf(o);
  const q: unknown = o.query;
  if (q === undefined || q === null) return overrides;
  if (typeof q !== 'object' || Array.isArray(q)) {
    throw new InvalidArgumentError(`query must be an object of parameters (got ${describeValue(q)})`);
  }
  return { ...overrides, query: stringify(q as Parameters<typeof stringify>[0]) };
}

function refuseUnsupported(o: Record<string, unknown>): never {
  for (const key of Object.keys(UNSUPPORTED_REQUEST_OPTIONS)) {
    if (o[key] !== undefined) {
      throw new InvalidArgumentError(
        `mesh.request() does not support the undici option ${key} (got ${describeValue(o[key])}): ${UNSUPPORTED_REQUEST_OPTIONS[key] ?? ''}`,
      );
    }
  }
  throw new InvalidArgumentError('mesh.request(): unsupported option');
}

