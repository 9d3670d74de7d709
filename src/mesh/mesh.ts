/**
 * `createMesh()`: the public face of the client data path. It loads the
 * configuration, and hands each part of a call to its own module: which hosts
 * are mesh services (hosts.ts), which registry serves an upstream
 * (registries.ts), the upstream runtime and its chain (client/), registration
 * (registration.ts). Hosts that are not mesh services pass through, untouched,
 * to a plain undici Agent (`mesh.request`, `mesh.dispatcher`) or to the
 * platform `fetch` (`mesh.fetch`).
 */
import { Agent, type Dispatcher } from 'undici';
import { createLoadBalancer } from '../balancer/balancer.ts';
import { MeshDispatcher } from '../client/dispatcher.ts';
import { meshFetch, type MeshFetchInit } from '../client/fetch.ts';
import { passThroughRequest } from '../client/pass-through.ts';
import { callOptionsOf, toMeshRequest, type MeshRequestOptions } from '../client/request.ts';
import { UpstreamRuntime, type DiscoveryStatus } from '../client/upstream.ts';
import { loadConfig, type CodePolicy, type ConfigInput, type ResolvedConfig } from '../config/load.ts';
import type { MeshResponse } from '../core/types.ts';
import { ClosedError, InvalidArgumentError, isInmeshError } from '../errors.ts';
import { describeValue } from '../internal/describe.ts';
import { sleep } from '../internal/sleep.ts';
import type { ResolvedPolicy, ResolvedUpstream } from '../policy/types.ts';
import { isPreflightRefusal } from '../registry/consul-preflight.ts';
import { registerService, type ConsulRegistration } from '../registry/consul-register.ts';
import { validateWatchOptions, type ConsulWatchOptions } from '../registry/consul-watch.ts';
import { ConsulRegistry } from '../registry/consul.ts';
import { consoleLogger } from '../registry/logger.ts';
import type { Logger, Registry } from '../registry/types.ts';
import { createTelemetry, type Telemetry } from '../telemetry/layer.ts';
import type { TelemetryOptions } from '../telemetry/types.ts';
import { UpstreamHosts } from './hosts.ts';
import { secretRedactor } from './redact.ts';
import { MeshRegistries } from './registries.ts';
import { registrationOptions, type MeshRegistrationOptions } from './registration.ts';
import { warnOnce } from './warnings.ts';
import { allOrThrow, checkShutdownOptions, installSignalHandlers, runShutdown, type ShutdownOptions, type ShutdownResult, type SignalOptions } from './lifecycle.ts';
import { drainServers } from '../server/lifecycle.ts';
import { safeLogger } from '../registry/logger.ts';
import { InboundServer, type InboundGate, type InboundOptions } from '../server/inbound.ts';
import { isServer, wrapListener, wrapServer, type RequestListener } from '../server/node.ts';
import { ServerTelemetry } from '../telemetry/server.ts';
import { ClientMetrics, type UpstreamObservation } from '../telemetry/client-metrics.ts';
import { startAdminServer, type AdminOptions, type AdminServer } from '../admin/server.ts';
import { meshAdminSource } from './admin-source.ts';
import { callUnguarded, Guard, guardedWith, type GuardedFn, type GuardOptions } from '../guard/guard.ts';
import { createResourceTelemetry } from '../telemetry/resource.ts';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

export type { MeshRequestOptions } from '../client/request.ts';
export type { DiscoveryStatus } from '../client/upstream.ts';
export type { MeshFetchInit } from '../client/fetch.ts';
export type { MeshRegistrationOptions } from './registration.ts';
export type { InboundOptions, InboundGate, InboundAdmission, EnterHints } from '../server/inbound.ts';
export type { RequestListener } from '../server/node.ts';
export type { AdminOptions, AdminServer } from '../admin/server.ts';
export type { GuardOptions, GuardedFn } from '../guard/guard.ts';
export type { ShutdownOptions, ShutdownResult, ShutdownStep, ShutdownStepError, SignalOptions } from './lifecycle.ts';

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
  /** Random source for retry backoff jitter and the choice of a split's subset (tests). @default Math.random */
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
   * Puts a node:http / node:https request listener behind the inbound chain
   * (health probes, the request's deadline, `inbound.rateLimit`,
   * `inbound.maxConcurrent`, `inbound.timeouts.request`, a SERVER span): the
   * listener runs only for requests inbound policy lets through. Given a
   * Server, its current 'request' listeners are wrapped in place and the
   * server is returned. See docs/server.md.
   */
  server<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(
    listener: RequestListener<Req, Res>,
    options?: InboundOptions,
  ): (req: Req, res: Res) => void;
  server<S extends Server>(server: S, options?: InboundOptions): S;
  /**
   * Starts the read-only admin endpoint on a listener of its own (127.0.0.1
   * and a free port by default; a non-loopback host needs
   * `allowNonLoopback: true`): JSON of the resolved configuration and policy
   * (secrets redacted), each upstream's endpoints, ejections, breaker,
   * in-flight calls, retry budget and discovery, and the inbound limits.
   * `mesh.close()` closes it. See docs/admin.md.
   */
  admin(options?: AdminOptions): Promise<AdminServer>;
  /**
   * Runs `fn(signal)` under the policy of resource `name` (`resources.<name>`
   * in the policy document): total and per-try timeout (the AbortSignal handed
   * to `fn`), retries with backoff and the retry budget for failures the
   * policy classifies retryable (or per-try timeouts and resets of a call that
   * says `idempotent: true`), the error-rate breaker, the concurrency limit
   * with load shedding, the rate limit. Resolves with what `fn` returns, or
   * rejects with a typed error (docs/errors.md). A name with no policy and no
   * options calls `fn(undefined)` directly. See docs/resources.md.
   */
  guard<T>(name: string, fn: GuardedFn<T>, options?: GuardOptions): Promise<T>;
  /** `fn` wrapped for repeated use under resource `name`'s policy: the signal first, then the arguments. */
  guarded<A extends unknown[], T>(
    name: string,
    fn: (signal: AbortSignal | undefined, ...args: A) => PromiseLike<T> | T,
    options?: GuardOptions,
  ): (...args: A) => Promise<T>;
  /** The inbound chain itself, for framework adapters (`inmesh/express`, `inmesh/fastify` use it). */
  inbound(options?: InboundOptions): InboundGate;
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
   * breakers and registries the mesh created. A `register()` in flight is waited
   * for: its instance leaves again and it rejects with ClosedError.
   */
  close(options?: MeshCloseOptions): Promise<void>;
  /**
   * Leaves the mesh without dropping a request, in SHUTDOWN_ORDER: readiness
   * fails and the Consul registrations go to maintenance → serve on for
   * `propagationDelayMs` → the servers stop accepting, idle keep-alive sockets
   * close, the responses left carry `Connection: close` → requests in flight
   * are waited for up to `drainTimeoutMs` (then cut) → deregistration →
   * `telemetry.shutdown()` → `close()`. The servers drained are those given to
   * `mesh.server(server)` and `options.servers`. Every step runs even when an
   * earlier one failed (each failure is logged and reported). Idempotent: a
   * second call returns the first one's promise. See docs/server.md#shutdown.
   */
  shutdown(options?: ShutdownOptions): Promise<ShutdownResult>;
  /**
   * Opt-in: runs `shutdown(options)` on the first SIGTERM or SIGINT, then
   * exits (0, or 1 when a step failed or requests were cut); a second signal
   * exits at once (128 + the signal's number). Returns a function that removes
   * the listeners. One set of listeners per mesh.
   */
  handleSignals(options?: SignalOptions): () => void;
}

function isRegistry(r: MeshOptions['registry']): r is Registry {
  return r !== undefined && typeof (r as Registry).subscribe === 'function';
}

function isResolvedPolicy(p: CodePolicy | ResolvedPolicy): p is ResolvedPolicy {
  const d = (p as { defaults?: { timeouts?: { connect?: unknown }; discovery?: { endpoints?: unknown } } }).defaults;
  return typeof d?.timeouts?.connect === 'number' && Array.isArray(d.discovery?.endpoints) && 'inbound' in p;
}

/** The most upstreams one mesh runs at once, by default. */
const DEFAULT_MAX_UPSTREAMS = 1024;

class MeshImpl implements Mesh {
  readonly policy: ResolvedPolicy;
  readonly config: ResolvedConfig;
  readonly dispatcher: Dispatcher;
  readonly #logger: Logger | undefined;
  readonly #random: (() => number) | undefined;
  readonly #passThrough: Dispatcher;
  readonly #ownsPassThrough: boolean;
  readonly #registries: MeshRegistries;
  readonly #hosts: UpstreamHosts;
  readonly #registrations: ConsulRegistration[] = [];
  /** register() calls in flight: close() waits for them (each leaves Consul if the mesh closed meanwhile). */
  readonly #registering = new Set<Promise<unknown>>();
  readonly #telemetry: Telemetry | undefined;
  readonly #telemetryOptions: TelemetryOptions | undefined;
  #inbound: InboundServer | undefined;
  readonly #admins = new Set<AdminServer>();
  readonly #clientMetrics: ClientMetrics | undefined;
  /** Servers given to `server(server)`: drained by shutdown(). */
  readonly #servers = new Set<Server>();
  /** True from the start of shutdown(): readiness fails. */
  #draining = false;
  #shutdown: Promise<ShutdownResult> | undefined;
  #removeSignalHandlers: (() => void) | undefined;
  readonly #redact: (text: string) => string;
  /** The resources' guard, made on first use (its breakers run timers). */
  #guard: Guard | undefined;
  #closed = false;

  constructor(options: MeshOptions) {
    const max = options.maxUpstreams ?? DEFAULT_MAX_UPSTREAMS;
    if (!(Number.isInteger(max) && max >= 1)) {
      throw new InvalidArgumentError(`maxUpstreams must be an integer >= 1 (got ${describeValue(options.maxUpstreams)})`);
    }
    // Checked here: the Consul registry is made on first need, where a bad option would fail every call instead.
    if (options.consulWatch !== undefined) validateWatchOptions(options.consulWatch, 'consulWatch');
    const env = options.env ?? process.env;
    const { policy, cwd, registry, telemetry } = options;
    this.#logger = options.logger;
    this.#random = options.random;
    const given = policy !== undefined && isResolvedPolicy(policy) ? policy : undefined;
    const codePolicy = policy !== undefined && given === undefined ? (policy as CodePolicy) : undefined;
    this.config = loadConfig({
      code: {
        ...(options.policyFile === undefined ? {} : { policyFile: options.policyFile }),
        ...(options.service === undefined ? {} : { service: options.service }),
        ...(options.consul === undefined ? {} : { consul: options.consul }),
        ...(options.redisUrl === undefined ? {} : { redisUrl: options.redisUrl }),
        ...(codePolicy === undefined ? {} : { policy: codePolicy }),
        ...(telemetry?.enabled === undefined ? {} : { telemetry: { enabled: telemetry.enabled } }),
      },
      env,
      ...(cwd === undefined ? {} : { cwd }),
    });
    this.policy = given ?? this.config.policy;
    warnOnce(this.config.warnings, options.logger ?? consoleLogger);

    const services: Record<string, readonly string[]> = Object.create(null) as Record<string, readonly string[]>;
    if (!isRegistry(registry) && registry?.static !== undefined) Object.assign(services, registry.static);
    for (const u of Object.values(this.policy.upstreams)) {
      const d = u.discovery;
      if (d.registry === 'static' && d.endpoints.length > 0) services[d.service ?? u.name] = d.endpoints;
    }
    this.#registries = new MeshRegistries({
      registry: isRegistry(registry) ? registry : undefined,
      services,
      env,
      consul: this.config.consul,
      consulWatch: options.consulWatch,
      logger: options.logger,
    });
    this.#redact = secretRedactor(this.config);
    this.#telemetryOptions = telemetry;
    this.#telemetry = createTelemetry({
      enabled: this.config.telemetry.enabled,
      tracer: telemetry?.tracer,
      meter: telemetry?.meter,
      requestHook: telemetry?.requestHook,
      responseHook: telemetry?.responseHook,
    });
    this.#clientMetrics = this.config.telemetry.enabled
      ? ClientMetrics.create({ meter: telemetry?.meter, observe: () => this.#observeUpstreams() })
      : undefined;
    this.#hosts = new UpstreamHosts({
      policy: this.policy,
      isStatic: (service) => this.#registries.static.has(service),
      maxUpstreams: max,
      createRuntime: (upstream) => this.#createRuntime(upstream),
    });
    this.#ownsPassThrough = options.passThrough === undefined;
    this.#passThrough = options.passThrough ?? new Agent();
    this.dispatcher = new MeshDispatcher(this, this.#passThrough);
  }

  get closed(): boolean {
    return this.#closed;
  }

  isMeshHost(hostname: string): boolean {
    return this.#hosts.isMeshHost(hostname);
  }

  discoveryStatus(hostname: string): DiscoveryStatus | undefined {
    return this.runtimeFor(hostname)?.discoveryStatus();
  }

  /** The upstream runtime of a host name, or undefined when it is not a mesh service. */
  runtimeFor(hostname: string): UpstreamRuntime | undefined {
    return this.#hosts.runtimeFor(hostname);
  }

  #createRuntime(upstream: Readonly<ResolvedUpstream>): UpstreamRuntime {
    const registry = this.#registries.for(upstream);
    // With a Redis configured (INMESH_REDIS_URL / redisUrl) every client rate limit is
    // shared through it; `rateLimit.shared: true` without one fails here, naming the fix.
    const redisUrl = upstream.rateLimit === undefined ? undefined : this.config.redisUrl?.reveal();
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
      redact: this.#redact,
      createBalancer: (u) => {
        const metrics = this.#clientMetrics;
        return createLoadBalancer(
          u.loadBalancer,
          u.outlierDetection,
          metrics === undefined ? {} : { onEject: (e) => metrics.ejected(u.name, e.reason) },
        );
      },
      telemetry: this.#telemetry,
      ...(this.#clientMetrics === undefined ? {} : { onStateChange: this.#clientMetrics.breakerChanged.bind(this.#clientMetrics) }),
      ...(redisUrl === undefined ? {} : { redis: { url: redisUrl } }),
      logger: this.#logger,
      random: this.#random,
    });
  }

  /** The started upstreams, as the client metrics' observable instruments read them (on collection only). */
  *#observeUpstreams(): Iterable<UpstreamObservation> {
    for (const rt of this.#hosts.started().values()) {
      const st = rt.state();
      yield {
        service: rt.name,
        registry: st.discovery.registry,
        stalenessMs: st.discovery.stalenessMs,
        breaker: st.breaker,
        ejected: st.discovery.endpoints - st.discovery.available,
      };
    }
  }

  start(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError());
    const c = this.config.consul;
    if (c.namespace === undefined && c.partition === undefined) return Promise.resolve();
    // A registry given in code is used for every upstream: check it if it is a Consul one.
    const given = this.#registries.given;
    if (given !== undefined) return given instanceof ConsulRegistry ? given.preflight() : Promise.resolve();
    return this.#registries.consul().preflight();
  }

  async register(options: MeshRegistrationOptions = {}): Promise<ConsulRegistration> {
    if (this.#closed) throw new ClosedError();
    const registering = this.#register(options);
    this.#registering.add(registering);
    try {
      return await registering;
    } finally {
      this.#registering.delete(registering);
    }
  }

  async #register(options: MeshRegistrationOptions): Promise<ConsulRegistration> {
    const registration = await registerService({
      ...registrationOptions(this.config, options),
      ...(this.#logger === undefined ? {} : { logger: this.#logger }),
    });
    if (this.#isClosed()) {
      // close() ran while the agent was registering us: leave again and stop the timers.
      try {
        await registration.leave();
      } finally {
        registration.close();
      }
      throw new ClosedError();
    }
    this.#registrations.push(registration);
    return registration;
  }

  server<Req extends IncomingMessage, Res extends ServerResponse>(listener: RequestListener<Req, Res>, options?: InboundOptions): (req: Req, res: Res) => void;
  server<S extends Server>(server: S, options?: InboundOptions): S;
  server(target: RequestListener | Server, options?: InboundOptions): RequestListener | Server {
    const gate = this.inbound(options);
    if (!isServer(target)) return wrapListener(gate, target);
    wrapServer(gate, target);
    this.#servers.add(target);
    return target;
  }

  inbound(options?: InboundOptions): InboundGate {
    // One inbound side per mesh: every server it wraps shares its limits.
    this.#inbound ??= new InboundServer({
      policy: this.policy.inbound,
      service: this.config.service?.name,
      telemetry: this.config.telemetry.enabled
        ? new ServerTelemetry({ tracer: this.#telemetryOptions?.tracer, meter: this.#telemetryOptions?.meter })
        : undefined,
      closing: () => this.#draining || this.#closed,
      // With a Redis configured the inbound rate limit is shared, as every client one is.
      ...(this.policy.inbound.rateLimit === undefined || this.config.redisUrl === undefined ? {} : { redis: { url: this.config.redisUrl.reveal() } }),
      logger: this.#logger ?? consoleLogger,
    });
    return this.#inbound.gate(options);
  }

  async admin(options: AdminOptions = {}): Promise<AdminServer> {
    if (this.#closed) throw new ClosedError();
    const source = meshAdminSource({
      config: this.config,
      policy: this.policy,
      started: () => this.#hosts.started(),
      inbound: () => (this.#inbound === undefined ? undefined : { inFlight: this.#inbound.inFlight }),
      closing: () => this.#closed,
      resources: () => this.#guard?.states() ?? [],
      redact: this.#redact,
    });
    const admin = await startAdminServer(source, options);
    if (this.#isClosed()) {
      await admin.close();
      throw new ClosedError();
    }
    this.#admins.add(admin);
    return admin;
  }

  /** The guard of the policy's resources (made on first use). */
  #guardOf(): Guard {
    if (this.#closed) throw new ClosedError();
    if (this.#guard !== undefined) return this.#guard;
    const resources = this.policy.resources;
    const rated = Object.values(resources).some((r) => r.rateLimit !== undefined);
    const redisUrl = rated ? this.config.redisUrl?.reveal() : undefined;
    const metrics = this.#clientMetrics;
    this.#guard = new Guard(
      {},
      {
        resources,
        telemetry: this.config.telemetry.enabled
          ? createResourceTelemetry({ tracer: this.#telemetryOptions?.tracer, meter: this.#telemetryOptions?.meter })
          : undefined,
        ...(metrics === undefined ? {} : { onStateChange: metrics.breakerChanged.bind(metrics) }),
        ...(redisUrl === undefined ? {} : { redis: { url: redisUrl } }),
        logger: this.#logger,
        random: this.#random,
      },
    );
    return this.#guard;
  }

  guard<T>(name: string, fn: GuardedFn<T>, options?: GuardOptions): Promise<T> {
    // The fast path for a name with no policy, before any set-up.
    if (options === undefined && !Object.hasOwn(this.policy.resources, name) && !this.#closed && typeof fn === 'function') return callUnguarded(fn);
    try {
      return this.#guardOf().guard(name, fn, options);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  guarded<A extends unknown[], T>(
    name: string,
    fn: (signal: AbortSignal | undefined, ...args: A) => PromiseLike<T> | T,
    options?: GuardOptions,
  ): (...args: A) => Promise<T> {
    return guardedWith(this, name, fn, options);
  }

  /** A method, so that TypeScript does not narrow the field across awaits. */
  #isClosed(): boolean {
    return this.#closed;
  }

  request(url: string | URL, options?: MeshRequestOptions): Promise<MeshResponse> {
    try {
      if (this.#closed) throw new ClosedError();
      const u = parseUrl(url);
      const input = {
        method: options?.method,
        headers: options?.headers,
        body: options?.body,
        signal: options?.signal,
        options: callOptionsOf(options),
      };
      const rt = this.runtimeFor(u.hostname);
      if (rt === undefined) return passThroughRequest(this.#passThrough, u, input);
      return rt.call(toMeshRequest(rt.upstream, u, input));
    } catch (error) {
      return Promise.reject(isInmeshError(error) ? error : new InvalidArgumentError('invalid request', { cause: error }));
    }
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
    if (!Number.isFinite(drainMs) || drainMs < 0) throw new InvalidArgumentError(`close({ drainMs }) must be a number of ms >= 0, got ${describeValue(options.drainMs)}`);
    // Readiness probes fail from here on (the inbound chain reads `#closed`).
    this.#closed = true;
    // Leave Consul first (maintenance, drain, deregister) so no new traffic arrives; then stop the timers.
    // A register() in flight leaves again on its own once the agent has answered (#register): wait for it.
    await Promise.allSettled([
      ...this.#registering,
      ...this.#registrations.map(async (r) => {
        try {
          await r.leave({ drainMs });
        } finally {
          r.close();
        }
      }),
    ]);
    await Promise.all([
      this.#hosts.close(),
      this.#registries.close(),
      this.#ownsPassThrough ? this.#passThrough.close() : undefined,
      this.#inbound?.close(),
      this.#guard?.close(),
      ...[...this.#admins].map((a) => a.close()),
    ]);
  }

  shutdown(options: ShutdownOptions = {}): Promise<ShutdownResult> {
    if (this.#shutdown !== undefined) return this.#shutdown;
    let checked: ReturnType<typeof checkShutdownOptions>;
    try {
      checked = checkShutdownOptions(options);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new InvalidArgumentError(String(error)));
    }
    this.#shutdown = this.#runShutdown(checked);
    return this.#shutdown;
  }

  async #runShutdown(o: ReturnType<typeof checkShutdownOptions>): Promise<ShutdownResult> {
    const logger = safeLogger(this.#logger ?? consoleLogger);
    let cut = 0;
    const errors = await runShutdown(
      {
        maintenance: () => {
          // Readiness fails from here on (the inbound chain reads `#draining`).
          this.#draining = true;
          return allOrThrow(
            this.#registrations.map((r) => r.drain(o.reason)),
            'registrations going to maintenance',
          );
        },
        propagationDelay: () => sleep(o.propagationDelayMs, undefined),
        drain: async () => {
          const outcome = await drainServers([...new Set([...this.#servers, ...o.servers])], this.#inbound, o.drainTimeoutMs);
          cut = outcome.cut;
          if (outcome.timedOut) {
            logger.warn(`shutdown: requests still in flight after drainTimeoutMs (${o.drainTimeoutMs} ms); their connections were cut`, { cut });
          }
        },
        deregister: () =>
          allOrThrow(
            this.#registrations.map((r) => r.deregister()),
            'deregistrations',
          ),
        telemetry: async () => {
          await o.telemetry?.shutdown();
        },
        close: () => this.close(),
      },
      logger,
    );
    this.#removeSignalHandlers?.();
    return { ok: errors.length === 0 && cut === 0, errors, cut };
  }

  handleSignals(options: SignalOptions = {}): () => void {
    if (this.#removeSignalHandlers !== undefined) throw new InvalidArgumentError('mesh.handleSignals() was called already: one set of signal listeners per mesh');
    checkShutdownOptions(options); // a bad option fails here, not at the signal
    const remove = installSignalHandlers(() => this.shutdown(options), options, safeLogger(this.#logger ?? consoleLogger));
    this.#removeSignalHandlers = remove;
    return remove;
  }
}

/** The URL of a call: a URL, or a string parsed once; InvalidArgumentError naming it otherwise. */
function parseUrl(url: string | URL): URL {
  if (url instanceof URL) return url;
  if (typeof url !== 'string') throw new InvalidArgumentError(`url must be a string or a URL (got ${describeValue(url)})`);
  try {
    return new URL(url);
  } catch (cause) {
    throw new InvalidArgumentError(`invalid URL: ${describeValue(url)}`, { cause });
  }
}

export type { MeshImpl };

/** Creates a mesh. See docs/data-path.md. */
export function createMesh(options: MeshOptions = {}): Mesh {
  return new MeshImpl(options);
}
