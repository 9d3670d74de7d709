/**
 * The wire tier: one keep-alive undici `Pool` per endpoint, created on first
 * use and closed when the endpoint leaves the set (`retain()`).
 *
 * Host and SNI: the pool's origin is the endpoint (`http://10.0.0.7:8080`), the
 * request keeps the authority the caller used as its `Host` header
 * (`orders`, `orders.service.consul:8080`), and for `https:` the TLS
 * servername is the caller's host name (after undici's dns interceptor). A
 * pool is keyed by endpoint id for http, and by endpoint id and the caller's
 * authority (`id|host`) for https, whose pools differ in servername.
 *
 * An endpoint given by host name (not an IP literal) is resolved when its pool
 * connects, through `guardedLookup`: addresses the registry refuses as
 * literals (link-local, cloud metadata) are dropped unless `allowLinkLocal`.
 * IP-literal endpoints get no lookup at all (Node never resolves them).
 *
 * Requests go through `pool.request()`, never `fetch`. The remaining total
 * deadline is written into `x-inmesh-deadline-ms` just before sending. Every
 * response body is guarded (translate.ts `guardBody`), so an error met while
 * the caller reads it is an inmesh error too.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { checkServerIdentity } from 'node:tls';
import { Pool, type Dispatcher } from 'undici';
import type { ResolvedLimits, ResolvedTimeouts } from '../policy/types.ts';
import type { Endpoint } from '../registry/types.ts';
import { refuseIp } from '../registry/validate.ts';
import { kAttemptControl, type AttemptControl } from './attempt-control.ts';
import { QUEUED_ABORT } from './undici-internals.ts';
import { guardBody, translateError } from './translate.ts';
import { DEADLINE_HEADER } from '../core/deadline-context.ts';
import type { Handler, MeshRequest, MeshResponse } from '../core/types.ts';

/**
 * An undici Pool that lets an attempt's AttemptControl wrap the handler of
 * `request()` and hear when the request has to wait for a connection
 * (attempt-control.ts says why: aborting through the controller instead of a
 * signal). Requests without one are dispatched unchanged.
 */
export class MeshPool extends Pool {
  /** With an AttemptControl in `opts`, it also goes under undici's queued-abort key (set on `opts` itself). */
  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const control = (opts as { [kAttemptControl]?: AttemptControl | undefined })[kAttemptControl];
    if (control === undefined || QUEUED_ABORT === undefined) return super.dispatch(opts, handler);
    (opts as unknown as Record<symbol, unknown>)[QUEUED_ABORT] = control.onQueued;
    return super.dispatch(opts, control.wrap(handler));
  }
}

interface PoolEntry {
  readonly pool: Pool;
  readonly label: string;
  readonly id: string;
  /**
   * The request `servername` of an https pool: the caller's host name, or ''
   * when it is an IP literal (no SNI: RFC 6066 has none for addresses).
   * Undefined for http: undici derives it per request (see the transport).
   */
  readonly servername: string | undefined;
}

export interface PoolSettings {
  readonly timeouts: Readonly<ResolvedTimeouts>;
  readonly limits: Readonly<ResolvedLimits>;
  /**
   * Accept link-local and cloud metadata addresses when an endpoint's host name
   * resolves to one (the registry's `allowLinkLocal`). @default false
   */
  readonly allowLinkLocal?: boolean | undefined;
  /** The resolver behind the guarded lookup (tests). @default dns.lookup */
  readonly resolve?: typeof dnsLookup | undefined;
}

type LookupCallback = Parameters<LookupFunction>[2];

function refusedAddress(hostname: string, refused: readonly LookupAddress[]): NodeJS.ErrnoException {
  const list = refused.map((a) => `${a.address} (${refuseIp(a.address, a.family, false) ?? 'refused'})`).join(', ');
  // ENOTFOUND: to the classifier this is what it is, no usable address — a connect failure, nothing sent.
  const error: NodeJS.ErrnoException = new Error(
    `endpoint host name ${hostname} resolved only to refused addresses: ${list}; the registry must allow link-local addresses to use them`,
  );
  error.code = 'ENOTFOUND';
  return error;
}

/**
 * net/tls.connect's `lookup` for an endpoint given by host name (undici's
 * connector passes `connect` options through to them): the system resolver,
 * minus the addresses the registry refuses as IP literals (refuseIp in
 * src/registry/validate.ts: link-local, cloud metadata, unspecified), so a
 * name cannot smuggle in what an address could not. Handles both forms Node
 * asks for (`all: true` with autoSelectFamily, a single address otherwise).
 */
export function guardedLookup(allowLinkLocal: boolean, resolve: typeof dnsLookup = dnsLookup): LookupFunction {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err !== null) {
        callback(err, '', 0);
        return;
      }
      const usable: LookupAddress[] = [];
      const refused: LookupAddress[] = [];
      for (const a of addresses) (refuseIp(a.address, a.family, allowLinkLocal) === undefined ? usable : refused).push(a);
      const first = usable[0];
      if (first === undefined) {
        callback(refusedAddress(hostname, refused), '', 0);
        return;
      }
      if (options.all === true) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, usable);
      else callback(null, first.address, first.family);
    });
  };
}

function stripPort(authority: string): string {
  if (authority.startsWith('[')) return authority.slice(1, authority.indexOf(']'));
  const i = authority.lastIndexOf(':');
  return i === -1 ? authority : authority.slice(0, i);
}

export class EndpointPools {
  readonly #pools = new Map<string, PoolEntry>();
  readonly #settings: PoolSettings;
  #closed = false;

  constructor(settings: PoolSettings) {
    this.#settings = settings;
  }

  get size(): number {
    return this.#pools.size;
  }

  /** Whether host-name endpoints may resolve to link-local/metadata addresses (from the registry). */
  get allowLinkLocal(): boolean {
    return this.#settings.allowLinkLocal === true;
  }

  get(endpoint: Endpoint, req: MeshRequest): PoolEntry {
    const key = req.protocol === 'http:' ? endpoint.id : `${endpoint.id}|${req.host}`;
    const entry = this.#pools.get(key);
    if (entry !== undefined) return entry;
    return this.#create(key, endpoint, req);
  }

  #create(key: string, endpoint: Endpoint, req: MeshRequest): PoolEntry {
    const { timeouts, limits } = this.#settings;
    // Built from URL fields, never by concatenation; the hostname setter takes an IPv6 literal in brackets.
    const family = isIP(endpoint.address);
    const origin = new URL('http://endpoint.invalid');
    origin.protocol = req.protocol;
    origin.hostname = family === 6 ? `[${endpoint.address}]` : endpoint.address;
    origin.port = String(endpoint.port);
    // Only a host name is resolved at connect time, so only its pool gets the guarded lookup.
    const connect: { servername?: string; lookup?: LookupFunction; checkServerIdentity?: typeof checkServerIdentity } = {};
    let servername: string | undefined;
    if (req.protocol === 'https:') {
      const name = stripPort(req.host);
      if (isIP(name) === 0) {
        servername = name;
        connect.servername = name;
      } else {
        // An address as the host: no SNI (RFC 6066 has none for addresses), and the
        // certificate is still checked against that address, not the endpoint's.
        servername = '';
        connect.checkServerIdentity = (_host, cert) => checkServerIdentity(name, cert);
      }
    }
    if (family === 0) connect.lookup = guardedLookup(this.#settings.allowLinkLocal === true, this.#settings.resolve);
    const options: Pool.Options = {
      connections: limits.maxConnections > 0 ? limits.maxConnections : null,
      pipelining: 1,
      connectTimeout: timeouts.connect,
      keepAliveTimeout: timeouts.idle,
      ...(limits.maxRequestsPerConnection > 0 ? { maxRequestsPerClient: limits.maxRequestsPerConnection } : {}),
      ...(Object.keys(connect).length === 0 ? {} : { connect }),
    };
    const entry: PoolEntry = {
      pool: new MeshPool(origin, options),
      label: `${endpoint.address}:${endpoint.port}`,
      id: endpoint.id,
      servername,
    };
    if (this.#closed) void entry.pool.close();
    else this.#pools.set(key, entry);
    return entry;
  }

  /** Closes the pools of endpoints not in `endpoints` (in-flight requests finish first). */
  retain(endpoints: readonly Endpoint[]): void {
    if (this.#pools.size === 0) return;
    const keep = new Set<string>();
    for (const e of endpoints) keep.add(e.id);
    for (const [key, entry] of this.#pools) {
      if (!keep.has(entry.id)) {
        this.#pools.delete(key);
        void entry.pool.close().catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(all.map((e) => e.pool.close().catch(() => undefined)));
  }
}

/**
 * The innermost handler: send the attempt to the endpoint the balance layer picked.
 *
 * Not an async function, and undici's callback form of `request()`: an async
 * frame here was about 0.65 KB of garbage per request (its registers are kept
 * on the heap across the await), and undici's promise form adds a promise of
 * its own around the same callback. One promise, two small closures.
 */
export function createTransport(pools: EndpointPools): Handler {
  return function transport(req: MeshRequest): Promise<MeshResponse> {
    const endpoint = req.endpoint;
    if (endpoint === undefined) return Promise.reject(new TypeError('inmesh: transport reached without a picked endpoint'));
    const entry = pools.get(endpoint, req);
    const headers = req.headers;
    if (req.deadline !== Infinity) {
      headers[DEADLINE_HEADER] = String(Math.max(0, Math.floor(req.deadline - performance.now())));
    }
    const control = req.attemptControl;
    // servername is a dispatch option undici's request() passes through (its RequestOptions type omits it).
    const options: Dispatcher.RequestOptions & { servername: string | undefined } & Record<symbol, unknown> = {
      path: req.path,
      method: req.method,
      headers,
      body: req.body ?? null,
      // https: what undici would derive from the Host header per request (getServerName,
      // an IP check), worked out once per pool. http: undefined, undici derives it (for
      // an IP-literal endpoint it connects by that name, so it must never be an address).
      servername: entry.servername,
      // The attempt's abort handle when the attempt timeout layer made one (it links the
      // caller's signal to it; MeshPool wraps undici's handler with it), else the caller's
      // signal. Without undici's queued-abort key MeshPool does not wrap, and undici gets
      // the control's fallback signal.
      signal: control === undefined ? (req.signal ?? null) : QUEUED_ABORT === undefined ? control.signal : null,
      [kAttemptControl]: control,
    };
    return new Promise<MeshResponse>((resolve, reject) => {
      // undici reports a synchronous failure (bad options, a closed pool) through the callback too.
      entry.pool.request(options, (error, res) => {
        if (error !== null) {
          reject(translateError(error, req));
          return;
        }
        guardBody(res.body, req);
        resolve({
          statusCode: res.statusCode,
          headers: res.headers,
          body: res.body,
          trailers: res.trailers,
          endpoint: entry.label,
          attempts: req.attempt + 1,
        });
      });
    });
  };
}
