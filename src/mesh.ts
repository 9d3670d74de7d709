/**
 * `createMesh()`: the public entry of the client data path.
 *
 * Which hosts are mesh services (explicit and safe — nothing else is touched):
 * 1. upstreams declared in the policy (`http://orders/...`), also under their
 *    Consul DNS form (`orders.service.consul`, `v2.orders.service.dc2.consul`);
 * 2. services listed in a `{ static: {...} }` registry option;
 * 3. any Consul DNS name (`<svc>.service[.<dc>].consul`, optionally `<tag>.` first):
 *    the policy's defaults apply, the datacenter/tag come from the name.
 * Every other host passes through, untouched, to a plain undici Agent
 * (`mesh.request`, `mesh.dispatcher`) or to the platform `fetch` (`mesh.fetch`).
 */
import { Agent, type Dispatcher } from 'undici';
import { createLoadBalancer } from './balancer/balancer.ts';
import { ClosedError, InvalidArgumentError, isInmeshError } from './errors.ts';
import { defaultUpstream, parseConsulHost, resolvePolicy, upstreamFor, type PolicyDocument } from './policy/index.ts';
import type { ResolvedPolicy, ResolvedUpstream } from './policy/types.ts';
import { ConsulRegistry, type ConsulRegistryOptions } from './registry/consul.ts';
import type { Logger, Registry } from './registry/types.ts';
import { createBreakerLayer } from './resilience/breaker.ts';
import { createLimitLayer } from './resilience/limits.ts';
import { createRateLimitLayer } from './resilience/rate-limit.ts';
import { createTelemetryLayer } from './telemetry/layer.ts';
import type { TelemetryOptions } from './telemetry/types.ts';
import { MeshDispatcher } from './client/dispatcher.ts';
import { meshFetch, type MeshFetchInit } from './client/fetch.ts';
import { buildMeshRequest, callOptionsOf, normalizeHeaders, type MeshRequestOptions } from './client/request.ts';
import type { MeshResponse } from './client/types.ts';
import { UpstreamRuntime, type UpstreamLayers } from './client/upstream.ts';
import { StaticRegistry } from './internal/static-registry.ts';

export type { MeshRequestOptions } from './client/request.ts';
export type { MeshFetchInit } from './client/fetch.ts';

export interface MeshOptions {
  /** A policy document (validated and resolved here) or an already resolved policy. Default: every built-in default. */
  policy?: PolicyDocument | ResolvedPolicy;
  /**
   * Where endpoints come from: a Registry (e.g. a ConsulRegistry), or a static
   * map `{ static: { orders: ['127.0.0.1:8080'] } }` (its services become mesh
   * services). Default: each upstream's `discovery` (static endpoints from the
   * policy, else a Consul agent on 127.0.0.1:8500, created on first need).
   */
  registry?: Registry | { static: Readonly<Record<string, readonly string[]>> };
  /** Options of the Consul registry created when none is given. */
  consul?: ConsulRegistryOptions;
  logger?: Logger;
  /** Telemetry layer options; `{ enabled: false }` removes the layer. @default { enabled: true } */
  telemetry?: TelemetryOptions;
  /** Dispatcher for hosts that are not mesh services. @default a new undici Agent */
  passThrough?: Dispatcher;
  /** Redis for shared client rate limits (`rateLimit.shared`). @default INMESH_REDIS_URL */
  redis?: { url: string };
  /** Jitter source for retry backoff (tests). @default Math.random */
  random?: () => number;
}

export interface Mesh {
  /** The resolved policy in force (deep-frozen). */
  readonly policy: ResolvedPolicy;
  /** Fast path, undici `request` semantics. */
  request(url: string | URL, options?: MeshRequestOptions): Promise<MeshResponse>;
  /** WHATWG-compatible fetch (a drop-in wrap of `fetch`). */
  fetch(input: string | URL | Request, init?: MeshFetchInit): Promise<Response>;
  /** An undici Dispatcher: mesh hosts go through the mesh, others to a plain Agent. */
  readonly dispatcher: Dispatcher;
  /** Whether a host name is a mesh service. */
  isMeshHost(hostname: string): boolean;
  /** Closes pools, subscriptions, breakers and registries the mesh created. */
  close(): Promise<void>;
}

function isRegistry(r: MeshOptions['registry']): r is Registry {
  return r !== undefined && typeof (r as Registry).subscribe === 'function';
}

function isResolvedPolicy(p: PolicyDocument | ResolvedPolicy): p is ResolvedPolicy {
  const d = (p as { defaults?: { timeouts?: { connect?: unknown }; discovery?: { endpoints?: unknown } } }).defaults;
  return typeof d?.timeouts?.connect === 'number' && Array.isArray(d.discovery?.endpoints) && 'inbound' in p;
}

class MeshImpl implements Mesh {
  readonly policy: ResolvedPolicy;
  readonly dispatcher: Dispatcher;
  readonly #options: MeshOptions;
  readonly #passThrough: Dispatcher;
  readonly #ownsPassThrough: boolean;
  readonly #static: StaticRegistry | undefined;
  readonly #registry: Registry | undefined;
  #consul: ConsulRegistry | undefined;
  readonly #hosts = new Map<string, UpstreamRuntime>();
  readonly #runtimes = new Map<Readonly<ResolvedUpstream>, UpstreamRuntime>();
  /** Layers with state to shut down with the mesh (breakers, limits). */
  readonly #closables: { close(): Promise<void> }[] = [];
  readonly #telemetry: UpstreamLayers['telemetry'];
  #closed = false;

  constructor(options: MeshOptions) {
    this.#options = options;
    const p = options.policy;
    this.policy = p === undefined ? resolvePolicy({ apiVersion: 'inmesh/v1' }) : isResolvedPolicy(p) ? p : resolvePolicy(p);
    const r = options.registry;
    if (isRegistry(r)) this.#registry = r;
    else if (r !== undefined) this.#static = new StaticRegistry(r.static);
    this.#ownsPassThrough = options.passThrough === undefined;
    this.#passThrough = options.passThrough ?? new Agent();
    const t = options.telemetry;
    this.#telemetry = createTelemetryLayer({
      enabled: t?.enabled ?? true,
      tracer: t?.tracer,
      meter: t?.meter,
      requestHook: t?.requestHook,
      responseHook: t?.responseHook,
    });
    this.dispatcher = new MeshDispatcher(this, this.#passThrough);
  }

  isMeshHost(hostname: string): boolean {
    return this.runtimeFor(hostname) !== undefined;
  }

  /** The upstream runtime of a host name, or undefined when it is not a mesh service. */
  runtimeFor(hostname: string): UpstreamRuntime | undefined {
    const hit = this.#hosts.get(hostname);
    if (hit !== undefined) return hit;
    const host = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
    let upstream = upstreamFor(this.policy, host);
    if (upstream === undefined && (this.#static?.has(host) === true || parseConsulHost(host) !== undefined)) {
      upstream = defaultUpstream(this.policy, host);
    }
    if (upstream === undefined) return undefined;
    if (this.#closed) throw new ClosedError();
    let rt = this.#runtimes.get(upstream);
    if (rt === undefined) {
      rt = this.#createRuntime(upstream);
      this.#runtimes.set(upstream, rt);
    }
    this.#hosts.set(hostname, rt);
    return rt;
  }

  #registryFor(upstream: Readonly<ResolvedUpstream>): Registry {
    const d = upstream.discovery;
    if (d.registry === 'static' && d.endpoints.length > 0) {
      return new StaticRegistry({ [d.service ?? upstream.name]: d.endpoints });
    }
    if (this.#registry !== undefined) return this.#registry;
    if (this.#static?.has(d.service ?? upstream.name) === true) return this.#static;
    if (d.registry === 'consul') {
      this.#consul ??= new ConsulRegistry({
        ...this.#options.consul,
        ...(this.#options.logger === undefined ? {} : { logger: this.#options.logger }),
      });
      return this.#consul;
    }
    return this.#static ?? new StaticRegistry({});
  }

  #createRuntime(upstream: Readonly<ResolvedUpstream>): UpstreamRuntime {
    const breaker = createBreakerLayer(upstream);
    if (breaker !== undefined) this.#closables.push(breaker);
    const limit = createLimitLayer(upstream);
    if (limit !== undefined) this.#closables.push(limit);
    const o = this.#options;
    const rateLimit = createRateLimitLayer(upstream, {
      ...(o.redis === undefined ? {} : { redis: o.redis }),
      ...(o.logger === undefined ? {} : { logger: o.logger }),
    });
    if (rateLimit !== undefined) this.#closables.push(rateLimit);
    return new UpstreamRuntime(upstream, {
      registry: this.#registryFor(upstream),
      createBalancer: (u) => createLoadBalancer(u.loadBalancer, u.outlierDetection),
      layers: {
        telemetry: this.#telemetry,
        breaker,
        rateLimit,
        limit,
      },
      random: this.#options.random,
    });
  }

  request(url: string | URL, options?: MeshRequestOptions): Promise<MeshResponse> {
    let u: URL;
    let rt: UpstreamRuntime | undefined;
    try {
      u = typeof url === 'string' ? new URL(url) : url;
      rt = this.runtimeFor(u.hostname);
    } catch (error) {
      return Promise.reject(isInmeshError(error) ? error : new InvalidArgumentError(`invalid URL: ${String(url)}`, { cause: error }));
    }
    if (rt === undefined) return this.#passThroughRequest(u, options);
    let req;
    try {
      req = buildMeshRequest(rt.upstream, u, {
        method: options?.method?.toUpperCase() ?? 'GET',
        headers: normalizeHeaders(options?.headers),
        body: (options?.body ?? null) as MeshRequestOptionsBody,
        signal: options?.signal,
        options: callOptionsOf(options),
      });
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new InvalidArgumentError('invalid request', { cause: error }));
    }
    return rt.call(req);
  }

  async #passThroughRequest(u: URL, options: MeshRequestOptions | undefined): Promise<MeshResponse> {
    const res = await this.#passThrough.request({
      origin: u.origin,
      path: u.pathname + u.search,
      method: options?.method ?? 'GET',
      headers: normalizeHeaders(options?.headers),
      body: (options?.body ?? null) as MeshRequestOptionsBody,
      signal: options?.signal ?? null,
    });
    return {
      statusCode: res.statusCode,
      headers: res.headers,
      body: res.body,
      trailers: res.trailers,
      endpoint: u.host,
      attempts: 1,
    };
  }

  fetch(input: string | URL | Request, init?: MeshFetchInit): Promise<Response> {
    return meshFetch(this, input, init);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const runtimes = [...this.#runtimes.values()];
    this.#runtimes.clear();
    this.#hosts.clear();
    await Promise.all([
      ...runtimes.map((rt) => rt.close()),
      ...this.#closables.map((c) => c.close()),
      this.#consul?.close(),
      this.#ownsPassThrough ? this.#passThrough.close() : undefined,
    ]);
  }
}

type MeshRequestOptionsBody = NonNullable<Dispatcher.DispatchOptions["body"]> | null;

export type { MeshImpl };

/** Creates a mesh. See docs/data-path.md. */
export function createMesh(options: MeshOptions = {}): Mesh {
  return new MeshImpl(options);
}
