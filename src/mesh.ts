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
import { loadConfig, type CodePolicy, type ConfigInput, type ResolvedConfig } from './config/load.ts';
import { ClosedError, InvalidArgumentError, isInmeshError } from './errors.ts';
import { defaultUpstream, parseConsulHost, upstreamFor } from './policy/index.ts';
import type { ResolvedPolicy, ResolvedUpstream } from './policy/types.ts';
import { ConsulRegistry } from './registry/consul.ts';
import { isPreflightRefusal } from './registry/consul-preflight.ts';
import { consoleLogger } from './registry/logger.ts';
import { registerService, type ConsulRegistration, type ServiceRegistrationOptions } from './registry/consul-register.ts';
import type { ConsulWatchOptions } from './registry/consul-watch.ts';
import { FileRegistry } from './registry/file.ts';
import { StaticRegistry } from './registry/static.ts';
import type { Logger, Registry } from './registry/types.ts';
import { createBreakerLayer } from './resilience/breaker.ts';
import { createLimitLayer } from './resilience/limits.ts';
import { createRateLimitLayer } from './resilience/rate-limit.ts';
import { createTelemetryLayer } from './telemetry/layer.ts';
import type { TelemetryOptions } from './telemetry/types.ts';
import { MeshDispatcher } from './client/dispatcher.ts';
import { meshFetch, type MeshFetchInit } from './client/fetch.ts';
import { buildMeshRequest, callOptionsOf, normalizeHeaders, requestPath, type MeshRequestOptions } from './client/request.ts';
import type { MeshResponse } from './client/types.ts';
import { UpstreamRuntime, type DiscoveryStatus, type UpstreamLayers } from './client/upstream.ts';

export type { MeshRequestOptions } from './client/request.ts';
export type { DiscoveryStatus } from './client/upstream.ts';
export type { MeshFetchInit } from './client/fetch.ts';

/**
 * Options of `createMesh()`. Everything here is optional: a setting given in
 * code wins over the environment (`INMESH_*`, `CONSUL_*`, `OTEL_*`), which wins
 * over the policy file (`policyFile` or `INMESH_POLICY_FILE`), which wins over
 * the built-in defaults (see docs/configuration.md).
 */
export interface MeshOptions extends Omit<ConfigInput, 'policy' | 'telemetry'> {
  /** A policy document (merged over env and file, then validated and resolved) or an already resolved policy (used as is). */
  policy?: CodePolicy | ResolvedPolicy;
  /** Environment to read settings from. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** Directory a relative policy file is resolved against. @default process.cwd() */
  cwd?: string;
  /**
   * Where endpoints come from: a Registry used for every upstream, or a static
   * map `{ static: { orders: ['127.0.0.1:8080'] } }` (its services become mesh
   * services). Default: each upstream's `discovery` — the static registry
   * (policy `endpoints` and `INMESH_ENDPOINTS_<SERVICE>`), the file registry, or
   * the Consul agent from `consul` / `CONSUL_HTTP_ADDR`, each created on first need.
   */
  registry?: Registry | { static: Readonly<Record<string, readonly string[]>> };
  /** Tuning of Consul blocking queries (wait, back-off, stale/cached reads). */
  consulWatch?: ConsulWatchOptions;
  logger?: Logger;
  /** Telemetry layer options; `{ enabled: false }` removes the layer. @default enabled unless INMESH_TRACING=false or OTEL_SDK_DISABLED=true */
  telemetry?: TelemetryOptions;
  /** Dispatcher for hosts that are not mesh services. @default a new undici Agent */
  passThrough?: Dispatcher;
  /** Jitter source for retry backoff (tests). @default Math.random */
  random?: () => number;
  /**
   * The most upstreams one mesh runs at once. Each one holds a registry watch
   * (a Consul blocking query) and its pools, and `*.service[.dc].consul` host
   * names make one on first use, so a host name built from untrusted input
   * could otherwise grow them without bound. A call to a new upstream beyond
   * the limit fails with InvalidArgumentError. @default 1024
   */
  maxUpstreams?: number;
}

export interface MeshCloseOptions {
  /** Time between taking this process's registrations out of rotation and deregistering them, for callers to move away. @default 0 ms */
  drainMs?: number;
}

/** What `mesh.register()` takes; name, address and port default to the configured service (`INMESH_SERVICE_*`). */
export type MeshRegistrationOptions = Partial<Omit<ServiceRegistrationOptions, 'connection'>>;

export interface Mesh {
  /** The resolved policy in force (deep-frozen). */
  readonly policy: ResolvedPolicy;
  /** The resolved configuration (deep-frozen; secrets print as [redacted]). */
  readonly config: ResolvedConfig;
  /** Fast path, undici `request` semantics. */
  request(url: string | URL, options?: MeshRequestOptions): Promise<MeshResponse>;
  /** WHATWG-compatible fetch (a drop-in wrap of `fetch`). */
  fetch(input: string | URL | Request, init?: MeshFetchInit): Promise<Response>;
  /** An undici Dispatcher: mesh hosts go through the mesh, others to a plain Agent. */
  readonly dispatcher: Dispatcher;
  /** Whether a host name is a mesh service. A pure lookup: it starts no upstream and never throws. */
  isMeshHost(hostname: string): boolean;
  /**
   * Discovery state of a mesh service, by host name (`orders`, `orders.service.consul`):
   * endpoints known and available, staleness, the registry's last error (redacted).
   * Undefined when the host is not a mesh service. Starts the service's registry
   * watch if no request has yet.
   */
  discoveryStatus(hostname: string): DiscoveryStatus | undefined;
  /**
   * Registers this process in Consul (the agent from the configuration). On
   * `close()` the instance is drained (maintenance mode) and deregistered.
   */
  register(options?: MeshRegistrationOptions): Promise<ConsulRegistration>;
  /**
   * Checks the Consul settings against the agent now: a namespace
   * (CONSUL_NAMESPACE) on an OSS agent, or an admin partition (CONSUL_PARTITION)
   * on an agent without partitions, rejects with a RegistryError (statusCode 400)
   * that names the variable and the agent's version. Resolves at once when
   * neither is set. Optional: the first request to a Consul upstream and
   * `register()` run the same check and fail with the same error.
   */
  start(): Promise<void>;
  /**
   * Leaves Consul (each registration: maintenance mode, `drainMs` for callers to
   * move away, deregistration, timers stopped), then closes pools, subscriptions,
   * breakers and registries the mesh created.
   */
  close(options?: MeshCloseOptions): Promise<void>;
}

/** Configuration warnings already logged by this process (each is logged once, however many meshes). */
const warnedOnce = new Set<string>();

function isRegistry(r: MeshOptions['registry']): r is Registry {
  return r !== undefined && typeof (r as Registry).subscribe === 'function';
}

function isResolvedPolicy(p: CodePolicy | ResolvedPolicy): p is ResolvedPolicy {
  const d = (p as { defaults?: { timeouts?: { connect?: unknown }; discovery?: { endpoints?: unknown } } }).defaults;
  return typeof d?.timeouts?.connect === 'number' && Array.isArray(d.discovery?.endpoints) && 'inbound' in p;
}

const DEFAULT_MAX_UPSTREAMS = 1024;
const HOST_CACHE_LIMIT = 4096;

class MeshImpl implements Mesh {
  readonly policy: ResolvedPolicy;
  readonly config: ResolvedConfig;
  readonly dispatcher: Dispatcher;
  readonly #options: MeshOptions;
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #passThrough: Dispatcher;
  readonly #ownsPassThrough: boolean;
  /** The user's registry, used for every upstream. */
  readonly #registry: Registry | undefined;
  /** Static endpoints: the `{ static }` option, every upstream's policy `endpoints`, INMESH_ENDPOINTS_*. */
  readonly #static: StaticRegistry;
  readonly #files = new Map<string, FileRegistry>();
  #consul: ConsulRegistry | undefined;
  readonly #registrations: ConsulRegistration[] = [];
  readonly #hosts = new Map<string, UpstreamRuntime>();
  /** By upstream name: one runtime per upstream, even when its resolved policy object is built anew. */
  readonly #runtimes = new Map<string, UpstreamRuntime>();
  /** Layers with state to shut down with the mesh (breakers, limits). */
  readonly #closables: { close(): Promise<void> }[] = [];
  readonly #telemetry: UpstreamLayers['telemetry'];
  #closed = false;

  constructor(options: MeshOptions) {
    const max = options.maxUpstreams;
    if (max !== undefined && !(Number.isInteger(max) && max >= 1)) {
      throw new InvalidArgumentError(`maxUpstreams must be an integer >= 1 (got ${String(max)})`);
    }
    this.#options = options;
    this.#env = options.env ?? process.env;
    const { policy, cwd, registry, telemetry } = options;
    // The ConfigInput part of the options (settings loadConfig ranks against env and file).
    const settings: Omit<ConfigInput, 'policy' | 'telemetry'> = {
      ...(options.policyFile === undefined ? {} : { policyFile: options.policyFile }),
      ...(options.service === undefined ? {} : { service: options.service }),
      ...(options.consul === undefined ? {} : { consul: options.consul }),
      ...(options.redisUrl === undefined ? {} : { redisUrl: options.redisUrl }),
    };
    const given = policy !== undefined && isResolvedPolicy(policy) ? policy : undefined;
    const codePolicy = policy !== undefined && given === undefined ? (policy as CodePolicy) : undefined;
    this.config = loadConfig({
      code: {
        ...settings,
        ...(codePolicy === undefined ? {} : { policy: codePolicy }),
        ...(telemetry?.enabled === undefined ? {} : { telemetry: { enabled: telemetry.enabled } }),
      },
      env: this.#env,
      ...(cwd === undefined ? {} : { cwd }),
    });
    this.policy = given ?? this.config.policy;
    // Unknown INMESH_* / CONSUL_* variables: probably typos, worth one line each.
    for (const warning of this.config.warnings) {
      if (warnedOnce.has(warning)) continue;
      warnedOnce.add(warning);
      (options.logger ?? consoleLogger).warn(warning);
    }

    if (isRegistry(registry)) this.#registry = registry;
    const services: Record<string, readonly string[]> = { ...(isRegistry(registry) ? {} : registry?.static) };
    for (const u of Object.values(this.policy.upstreams)) {
      const d = u.discovery;
      if (d.registry === 'static' && d.endpoints.length > 0) services[d.service ?? u.name] = d.endpoints;
    }
    this.#static = new StaticRegistry({ services, env: this.#env, ...(options.logger === undefined ? {} : { logger: options.logger }) });

    this.#ownsPassThrough = options.passThrough === undefined;
    this.#passThrough = options.passThrough ?? new Agent();
    this.#telemetry = createTelemetryLayer({
      enabled: this.config.telemetry.enabled,
      tracer: telemetry?.tracer,
      meter: telemetry?.meter,
      requestHook: telemetry?.requestHook,
      responseHook: telemetry?.responseHook,
    });
    this.dispatcher = new MeshDispatcher(this, this.#passThrough);
  }

  isMeshHost(hostname: string): boolean {
    // A pure lookup: no runtime, no registry watch, never throws.
    return this.#hosts.has(hostname) || this.#upstreamOf(hostname) !== undefined;
  }

  /** The resolved upstream a host name stands for, or undefined when it is not a mesh service. */
  #upstreamOf(hostname: string): Readonly<ResolvedUpstream> | undefined {
    const host = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
    const upstream = upstreamFor(this.policy, host);
    if (upstream !== undefined) return upstream;
    if (this.#static.has(host) || parseConsulHost(host) !== undefined) return defaultUpstream(this.policy, host);
    return undefined;
  }

  /** Takes the configured secrets (Consul token, basic-auth pair and password, Redis URL) out of a text. */
  #redact(text: string): string {
    const c = this.config.consul;
    const secrets: string[] = [];
    if (c.token !== undefined) secrets.push(c.token.reveal());
    if (c.auth !== undefined) {
      const pair = c.auth.reveal();
      secrets.push(pair, pair.slice(pair.indexOf(':') + 1));
    }
    if (this.config.redisUrl !== undefined) {
      const url = this.config.redisUrl.reveal();
      secrets.push(url);
      try {
        const password = decodeURIComponent(new URL(url).password);
        if (password !== '') secrets.push(password);
      } catch {
        // not a URL: the whole value is already listed
      }
    }
    let out = text;
    for (const s of secrets) if (s !== '') out = out.split(s).join('[redacted]');
    return out;
  }

  discoveryStatus(hostname: string): DiscoveryStatus | undefined {
    return this.runtimeFor(hostname)?.discoveryStatus();
  }

  /** The upstream runtime of a host name, or undefined when it is not a mesh service. */
  runtimeFor(hostname: string): UpstreamRuntime | undefined {
    const hit = this.#hosts.get(hostname);
    if (hit !== undefined) return hit;
    const upstream = this.#upstreamOf(hostname);
    if (upstream === undefined) return undefined;
    if (this.#closed) throw new ClosedError();
    let rt = this.#runtimes.get(upstream.name);
    if (rt === undefined) {
      const max = this.#options.maxUpstreams ?? DEFAULT_MAX_UPSTREAMS;
      if (this.#runtimes.size >= max) {
        throw new InvalidArgumentError(
          `maxUpstreams: this mesh already runs ${this.#runtimes.size} upstreams (the limit), so "${upstream.name}" gets none; raise maxUpstreams if that many are meant`,
        );
      }
      rt = this.#createRuntime(upstream);
      this.#runtimes.set(upstream.name, rt);
    }
    // The host → runtime map is only a cache of the lookup above; aliases of one
    // upstream (a trailing dot, tag or datacenter forms) must not grow it for good.
    if (this.#hosts.size >= HOST_CACHE_LIMIT) this.#hosts.clear();
    this.#hosts.set(hostname, rt);
    return rt;
  }

  #registryFor(upstream: Readonly<ResolvedUpstream>): Registry {
    if (this.#registry !== undefined) return this.#registry;
    const d = upstream.discovery;
    const logger = this.#options.logger === undefined ? {} : { logger: this.#options.logger };
    if (d.registry === 'static' || this.#static.has(d.service ?? upstream.name)) return this.#static;
    if (d.registry === 'file') {
      // The schema requires `file` with the file registry.
      const path = d.file ?? '';
      let file = this.#files.get(path);
      if (file === undefined) {
        file = new FileRegistry({ path, ...logger });
        this.#files.set(path, file);
      }
      return file;
    }
    return this.#consulRegistry();
  }

  #consulRegistry(): ConsulRegistry {
    const logger = this.#options.logger === undefined ? {} : { logger: this.#options.logger };
    this.#consul ??= new ConsulRegistry({ ...this.#options.consulWatch, connection: this.config.consul, ...logger });
    return this.#consul;
  }

  start(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError());
    const c = this.config.consul;
    if (c.namespace === undefined && c.partition === undefined) return Promise.resolve();
    // A registry given in code is used for every upstream: check it if it is a Consul one.
    if (this.#registry !== undefined) return this.#registry instanceof ConsulRegistry ? this.#registry.preflight() : Promise.resolve();
    return this.#consulRegistry().preflight();
  }

  async register(options: MeshRegistrationOptions = {}): Promise<ConsulRegistration> {
    if (this.#closed) throw new ClosedError();
    const service = this.config.service;
    const name = options.name ?? service?.name;
    // An explicit port, else the port of the given server, else INMESH_SERVICE_PORT.
    const port = options.port ?? (options.server === undefined ? service?.port : undefined);
    if (name === undefined || (port === undefined && options.server === undefined)) {
      throw new InvalidArgumentError(
        `mesh.register() needs a service name and port: pass { name, port } or { name, server } or set INMESH_SERVICE_NAME and INMESH_SERVICE_PORT (got name ${String(name)}, port ${String(port)})`,
      );
    }
    const address = options.address ?? service?.address;
    const registration = await registerService({
      ...options,
      name,
      ...(port === undefined ? {} : { port }),
      ...(address === undefined ? {} : { address }),
      ...(this.#options.logger === undefined ? {} : { logger: this.#options.logger }),
      connection: this.config.consul,
    });
    this.#registrations.push(registration);
    return registration;
  }

  #createRuntime(upstream: Readonly<ResolvedUpstream>): UpstreamRuntime {
    const breaker = createBreakerLayer(upstream);
    if (breaker !== undefined) this.#closables.push(breaker);
    const limit = createLimitLayer(upstream);
    if (limit !== undefined) this.#closables.push(limit);
    const o = this.#options;
    // With a Redis configured (INMESH_REDIS_URL / redisUrl) every client rate limit is
    // shared through it; `rateLimit.shared: true` without one fails here, naming the fix.
    const redisUrl = upstream.rateLimit === undefined ? undefined : this.config.redisUrl?.reveal();
    const rateLimit = createRateLimitLayer(upstream, {
      ...(redisUrl === undefined ? {} : { redis: { url: redisUrl } }),
      ...(o.logger === undefined ? {} : { logger: o.logger }),
    });
    if (rateLimit !== undefined) this.#closables.push(rateLimit);
    const registry = this.#registryFor(upstream);
    return new UpstreamRuntime(upstream, {
      registry,
      // A namespace/partition the agent cannot honour fails the upstream's calls with
      // that error; a transient failure is left to the watch (it retries).
      preflight:
        registry instanceof ConsulRegistry
          ? () =>
              registry.preflight().catch((error: unknown) => {
                if (isPreflightRefusal(error)) throw error;
              })
          : undefined,
      redact: (text) => this.#redact(text),
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

  /**
   * A host that is not a mesh service: one plain request through the
   * passThrough dispatcher. The options are checked as for a mesh call and
   * `query` applies; the per-call overrides (timeout, retries, …) are mesh
   * policy and do not.
   */
  async #passThroughRequest(u: URL, options: MeshRequestOptions | undefined): Promise<MeshResponse> {
    const res = await this.#passThrough.request({
      origin: u.origin,
      path: requestPath(u, callOptionsOf(options)),
      method: options?.method?.toUpperCase() ?? 'GET',
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

  /** What JSON.stringify shows: the resolved configuration (secrets print as [redacted]). */
  toJSON(): Record<string, unknown> {
    return { config: this.config, closed: this.#closed };
  }

  async close(options: MeshCloseOptions = {}): Promise<void> {
    if (this.#closed) return;
    const drainMs = options.drainMs ?? 0;
    if (!Number.isFinite(drainMs) || drainMs < 0) throw new InvalidArgumentError(`close({ drainMs }) must be a number of ms >= 0, got ${String(options.drainMs)}`);
    this.#closed = true;
    // Leave Consul first (maintenance, drain, deregister) so no new traffic arrives; then stop the timers.
    await Promise.allSettled(
      this.#registrations.map(async (r) => {
        try {
          await r.leave({ drainMs });
        } finally {
          r.close();
        }
      }),
    );
    const runtimes = [...this.#runtimes.values()];
    this.#runtimes.clear();
    this.#hosts.clear();
    await Promise.all([
      ...runtimes.map((rt) => rt.close()),
      ...this.#closables.map((c) => c.close()),
      this.#consul?.close(),
      this.#static.close(),
      ...[...this.#files.values()].map((f) => f.close()),
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
