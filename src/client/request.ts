/**
 * Building the MeshRequest of one call: the URL is parsed once (by the caller
 * of these helpers, with `new URL()`), headers are copied once into a fresh
 * lower-cased object that every attempt reuses, and the route is matched
 * (O(1) when the upstream has no routes).
 */
import type { Dispatcher } from 'undici';
import { matchRoute } from '../policy/index.ts';
import type { ResolvedUpstream } from '../policy/types.ts';
import { InvalidArgumentError } from '../errors.ts';
import type { CallOptions, MeshRequest } from './types.ts';

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

/** Options of `mesh.request()`: undici `request` options plus the per-call overrides. */
export interface MeshRequestOptions extends CallOptions {
  /** @default 'GET' */
  method?: string;
  headers?: HeadersInput;
  body?: string | Buffer | Uint8Array | NodeJS.ReadableStream | null;
  signal?: AbortSignal;
}

export const EMPTY_OPTIONS: Readonly<CallOptions> = Object.freeze({});

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
  readonly options: Readonly<CallOptions>;
}

export function buildMeshRequest(upstream: Readonly<ResolvedUpstream>, url: URL, spec: CallSpec): MeshRequest {
  const path = url.pathname + url.search;
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
    protocol: url.protocol === 'https:' ? 'https:' : 'http:',
    headers,
    body: spec.body,
    signal: spec.signal,
    attemptSignal: undefined,
    options: spec.options,
    deadline: Infinity,
    tried: new Set<string>(),
    attempt: 0,
    endpoint: undefined,
  };
}

/** The per-call overrides found in an options object. */
export function callOptionsOf(o: CallOptions | undefined): Readonly<CallOptions> {
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
