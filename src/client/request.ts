/**
 * Building the MeshRequest of one call: the URL is parsed once (by the caller
 * of these helpers, with `new URL()`), headers are copied once into a fresh
 * lower-cased object that every attempt reuses, and the route is matched
 * (O(1) when the upstream has no routes).
 */
import { stringify } from 'node:querystring';
import type { Dispatcher } from 'undici';
import { matchRoute } from '../policy/index.ts';
import type { ResolvedUpstream } from '../policy/types.ts';
import { InvalidArgumentError } from '../errors.ts';
import type { CallOptions, MeshRequest, ResolvedCallOptions } from './types.ts';

function checkMs(name: string, v: number | undefined): void {
  if (v !== undefined && !(typeof v === 'number' && v >= 0 && Number.isFinite(v))) {
    throw new InvalidArgumentError(`${name} must be a number of ms >= 0 (got ${String(v)})`);
  }
}

/** Header values as callers pass them (undici style, Node style, or a WHATWG Headers). */
export type HeadersInput =
  | Record<string, string | string[] | number | undefined>
  | Iterable<readonly [string, string]>
  | readonly string[]
  | null
  | undefined;

/**
 * Options of `mesh.request()`: the subset of undici's `request` options that
 * the mesh honours, plus the per-call overrides (CallOptions). The other
 * undici options (UNSUPPORTED_REQUEST_OPTIONS) are refused with
 * InvalidArgumentError rather than silently ignored; docs/data-path.md says
 * why each is left out.
 */
export interface MeshRequestOptions extends CallOptions {
  /** Upper-cased. @default 'GET' */
  method?: string;
  headers?: HeadersInput;
  body?: string | Buffer | Uint8Array | NodeJS.ReadableStream | null;
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
  highWaterMark: 'the body stream uses undici\'s default',
  throwOnError: "a status is a response (the mesh's own failures are errors)",
  headersTimeout: 'use perTryTimeout / timeout (the deadline layers own time)',
  bodyTimeout: "set by the transport's pool",
  upgrade: 'upgrades are not proxied by the mesh',
  blocking: "pipelining is off (pipelining: 1)",
  reset: 'connections are pooled per endpoint',
  expectContinue: 'HTTP/2 only',
  typeOfService: 'per pool, not per request',
  maxRedirections: 'redirects are returned (undici request does not follow them either)',
});

export const EMPTY_OPTIONS: Readonly<ResolvedCallOptions> = Object.freeze({});

function add(out: Record<string, string | string[]>, key: string, value: string): void {
  const k = key.toLowerCase();
  const prev = out[k];
  if (prev === undefined) out[k] = value;
  else if (Array.isArray(prev)) prev.push(value);
  else out[k] = [prev, value];
}

/** Copies headers into a fresh object with lower-case names. */
export function normalizeHeaders(input: HeadersInput): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (input === null || input === undefined) return out;
  if (Array.isArray(input)) {
    const flat = input as readonly string[];
    for (let i = 0; i + 1 < flat.length; i += 2) add(out, flat[i] as string, flat[i + 1] as string);
    return out;
  }
  if (typeof (input as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [k, v] of input as Iterable<readonly [string, string]>) add(out, k, v);
    return out;
  }
  const rec = input as Record<string, string | string[] | number | undefined>;
  for (const key in rec) {
    const v = rec[key];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const item of v) add(out, key, item);
    else add(out, key, typeof v === 'number' ? String(v) : v);
  }
  return out;
}

export interface CallSpec {
  readonly method: string;
  readonly headers: Record<string, string | string[]>;
  readonly body: Dispatcher.DispatchOptions['body'];
  readonly signal: AbortSignal | undefined;
  readonly options: Readonly<ResolvedCallOptions>;
}

/** Path and query of a call: the URL's, or the URL's path with the serialized `query` option. */
export function requestPath(url: URL, options: Readonly<ResolvedCallOptions>): string {
  const query = options.query;
  return query === undefined ? url.pathname + url.search : pathWithQuery(url, query);
}

export function buildMeshRequest(upstream: Readonly<ResolvedUpstream>, url: URL, spec: CallSpec): MeshRequest {
  const path = requestPath(url, spec.options);
  const headers = spec.headers;
  headers.host = url.host;
  const policy = matchRoute(upstream, spec.method, path, headers);
  return {
    service: upstream.name,
    upstream,
    policy,
    method: spec.method,
    path,
    host: url.host,
    hostname: url.hostname,
    protocol: url.protocol === 'https:' ? 'https:' : 'http:',
    headers,
    body: spec.body,
    signal: spec.signal,
    attemptControl: undefined,
    options: spec.options,
    deadline: Infinity,
    tried: undefined,
    attempt: 0,
    endpoint: undefined,
  };
}

/** The path of `url` with the serialized `query` option appended (undici's rule: not when the URL has `?` or `#`). */
function pathWithQuery(url: URL, query: string): string {
  if (url.search !== '' || url.hash !== '' || url.href.endsWith('?') || url.href.endsWith('#')) {
    throw new InvalidArgumentError(`query cannot be passed when the URL already contains "?" or "#" (got ${url.href})`);
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
  // One property read per unsupported name (about 5 ns in all on Node 24); a for-in over
  // the caller's keys measured about 35 ns per call.
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
    throw new InvalidArgumentError(`query must be an object of parameters (got ${describe(q)})`);
  }
  return { ...overrides, query: stringify(q as Parameters<typeof stringify>[0]) };
}

function refuseUnsupported(o: Record<string, unknown>): never {
  for (const key of Object.keys(UNSUPPORTED_REQUEST_OPTIONS)) {
    if (o[key] !== undefined) {
      throw new InvalidArgumentError(
        `mesh.request() does not support the undici option ${key} (got ${describe(o[key])}): ${UNSUPPORTED_REQUEST_OPTIONS[key] ?? ''}`,
      );
    }
  }
  throw new InvalidArgumentError('mesh.request(): unsupported option');
}

function describe(v: unknown): string {
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'object' && v !== null) return Array.isArray(v) ? 'an array' : 'an object';
  return String(v);
}

/** The per-call overrides found in an options object (mesh.fetch's init, or mesh.request's options). */
export function callOverridesOf(o: CallOptions | undefined): Readonly<ResolvedCallOptions> {
  if (o === undefined) return EMPTY_OPTIONS;
  if (
    o.timeout === undefined &&
    o.perTryTimeout === undefined &&
    o.retries === undefined &&
    o.hashKey === undefined &&
    o.idempotent === undefined
  )
    return EMPTY_OPTIONS;
  checkMs('timeout', o.timeout);
  checkMs('perTryTimeout', o.perTryTimeout);
  if (o.retries !== undefined && o.retries !== false && !(Number.isInteger(o.retries) && o.retries >= 0)) {
    throw new InvalidArgumentError(`retries must be false or an integer >= 0 (got ${String(o.retries)})`);
  }
  const out: CallOptions = {};
  if (o.timeout !== undefined) out.timeout = o.timeout;
  if (o.perTryTimeout !== undefined) out.perTryTimeout = o.perTryTimeout;
  if (o.retries !== undefined) out.retries = o.retries;
  if (o.hashKey !== undefined) out.hashKey = o.hashKey;
  if (o.idempotent !== undefined) out.idempotent = o.idempotent;
  return out;
}
