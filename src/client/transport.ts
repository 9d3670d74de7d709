/**
 * The wire tier: one keep-alive undici `Pool` per endpoint, created on first
 * use and closed when the endpoint leaves the set (`retain()`).
 *
 * Host and SNI: the pool's origin is the endpoint (`http://10.0.0.7:8080`), the
 * request keeps the authority the caller used as its `Host` header
 * (`orders`, `orders.service.consul:8080`), and for `https:` the TLS
 * servername is the caller's host name (after undici's dns interceptor). A
 * pool is keyed by endpoint id, plus the servername for https.
 *
 * Requests go through `pool.request()`, never `fetch`. The remaining total
 * deadline is written into `x-inmesh-deadline-ms` just before sending. Every
 * response body is guarded (translate.ts `guardBody`), so an error met while
 * the caller reads it is an inmesh error too.
 */
import type { EventEmitter } from 'node:events';
import { Pool } from 'undici';
import type { ResolvedLimits, ResolvedTimeouts } from '../policy/types.ts';
import type { Endpoint } from '../registry/types.ts';
import { guardBody, translateError } from './translate.ts';
import type { Handler, MeshRequest, MeshResponse } from './types.ts';

/** Header carrying the caller's remaining total deadline, in whole ms, at send time. */
export const DEADLINE_HEADER = 'x-inmesh-deadline-ms';

interface PoolEntry {
  readonly pool: Pool;
  readonly label: string;
  readonly id: string;
}

export interface PoolSettings {
  readonly timeouts: Readonly<ResolvedTimeouts>;
  readonly limits: Readonly<ResolvedLimits>;
}

function hostForUrl(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
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

  get(endpoint: Endpoint, req: MeshRequest): PoolEntry {
    const key = req.protocol === 'http:' ? endpoint.id : `${endpoint.id}|${req.host}`;
    const entry = this.#pools.get(key);
    if (entry !== undefined) return entry;
    return this.#create(key, endpoint, req);
  }

  #create(key: string, endpoint: Endpoint, req: MeshRequest): PoolEntry {
    const { timeouts, limits } = this.#settings;
    const origin = new URL(`${req.protocol}//${hostForUrl(endpoint.address)}:${endpoint.port}`);
    const options: Pool.Options = {
      connections: limits.maxConnections > 0 ? limits.maxConnections : null,
      pipelining: 1,
      connectTimeout: timeouts.connect,
      keepAliveTimeout: timeouts.idle,
      ...(limits.maxRequestsPerConnection > 0 ? { maxRequestsPerClient: limits.maxRequestsPerConnection } : {}),
      ...(req.protocol === 'https:' ? { connect: { servername: stripPort(req.host) } } : {}),
    };
    const entry: PoolEntry = {
      pool: new Pool(origin, options),
      label: `${endpoint.address}:${endpoint.port}`,
      id: endpoint.id,
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

/** The innermost handler: send the attempt to the endpoint the balance layer picked. */
export function createTransport(pools: EndpointPools): Handler {
  return async function transport(req: MeshRequest): Promise<MeshResponse> {
    const endpoint = req.endpoint;
    if (endpoint === undefined) throw new TypeError('inmesh: transport reached without a picked endpoint');
    const entry = pools.get(endpoint, req);
    const headers = req.headers;
    if (req.deadline !== Infinity) {
      headers[DEADLINE_HEADER] = String(Math.max(0, Math.floor(req.deadline - performance.now())));
    }
    try {
      const res = await entry.pool.request({
        path: req.path,
        method: req.method,
        headers,
        body: req.body ?? null,
        // undici's types want a whole EventEmitter; it calls only what AttemptSignal has (attempt-signal.ts).
        signal: (req.attemptSignal as unknown as EventEmitter | undefined) ?? req.signal ?? null,
      });
      guardBody(res.body, req);
      return {
        statusCode: res.statusCode,
        headers: res.headers,
        body: res.body,
        trailers: res.trailers,
        endpoint: entry.label,
        attempts: req.attempt + 1,
      };
    } catch (error) {
      throw translateError(error, req);
    }
  };
}
