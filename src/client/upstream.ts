/**
 * The runtime of one upstream service: its discovery (the registry
 * subscription feeding its load balancer), its endpoint pools, and its call
 * chain, which chain.ts assembles once from the resolved upstream.
 */
import { SubsetBalancers } from '../balancer/subsets.ts';
import type { EndpointStats, LoadBalancer, MeshLoadBalancer } from '../balancer/types.ts';
import type { Endpoint, MeshRequest, MeshResponse } from '../core/types.ts';
import { ClosedError } from '../errors.ts';
import type { ResolvedUpstream } from '../policy/types.ts';
import type { Registry, Subscription } from '../registry/types.ts';
import type { BreakerLayer, BreakerState } from '../resilience/breaker.ts';
import type { LimitLayer } from '../resilience/limits.ts';
import type { RetryLayer } from '../resilience/retry.ts';
import type { DiscoveryState } from './balance.ts';
import { assembleChain, type ChainDeps, type UpstreamChain } from './chain.ts';
import { createTransport, EndpointPools } from './transport.ts';

/** What a runtime needs besides its upstream: discovery, and the deps of the layer factories. */
export interface UpstreamDeps extends Omit<ChainDeps, 'balancer' | 'discovery' | 'subsets'> {
  readonly registry: Registry;
  readonly createBalancer: (upstream: Readonly<ResolvedUpstream>) => LoadBalancer;
  /**
   * Checks what the registry cannot honour (a Consul namespace on an OSS agent).
   * A rejection fails every call of this upstream with that error; transient
   * failures must resolve (the watch retries them).
   */
  readonly preflight?: (() => Promise<void>) | undefined;
  /** Takes known secrets out of a registry error's message (for NoEndpointsError and discoveryStatus). */
  readonly redact?: ((text: string) => string) | undefined;
}

/** What `mesh.discoveryStatus(service)` reports about one upstream's discovery. */
export interface DiscoveryStatus {
  /** The upstream (policy) name. */
  readonly upstream: string;
  /** The name asked of the registry. */
  readonly service: string;
  readonly registry: Registry['kind'];
  /** Endpoints known now (the last good set while the registry fails). */
  readonly endpoints: number;
  /** Endpoints a request can be sent to now (not ejected by outlier detection). */
  readonly available: number;
  /** Milliseconds since the registry last answered: 0 while it answers, Infinity before its first answer. */
  readonly stalenessMs: number;
  /** The registry's last failure while it fails (its message never holds a token: registries redact them), else undefined. */
  readonly lastError: { readonly name: string; readonly code?: string; readonly message: string; readonly statusCode?: number } | undefined;
}

/**
 * A read-only snapshot of one upstream runtime's state (for the admin
 * endpoint): discovery, each endpoint's balancing and outlier state, and the
 * state of the layers that hold any. Built on demand; O(endpoints).
 */
export interface UpstreamState {
  readonly discovery: DiscoveryStatus;
  /** One entry per known endpoint (ejected ones included); empty when the balancer offers no per-endpoint view. */
  readonly endpoints: readonly EndpointStats[];
  /** True while too few endpoints are healthy and the balancer ignores ejections (Envoy's panic mode). */
  readonly panic: boolean;
  /** The error-rate breaker's state; undefined when `circuitBreaker.enabled` is false. */
  readonly breaker: BreakerState | undefined;
  /** Calls admitted by the concurrency limit and waiting for it; undefined when the limit is unbounded. */
  readonly limit: { readonly inFlight: number; readonly pending: number } | undefined;
  /** The retry budget's counters; undefined when the upstream has none. */
  readonly retryBudget: { readonly active: number; readonly retriesInFlight: number; readonly limit: number } | undefined;
}

export class UpstreamRuntime {
  readonly name: string;
  readonly upstream: Readonly<ResolvedUpstream>;
  readonly balancer: LoadBalancer;
  /** One balancer per subset the upstream names (for its splits); undefined when it names none. */
  readonly subsets: SubsetBalancers | undefined;
  readonly pools: EndpointPools;
  /** The assembled call chain (its layers are inspectable by name). */
  readonly chain: UpstreamChain;
  readonly #subscription: Subscription;
  readonly #registryKind: Registry['kind'];
  readonly #redact: (text: string) => string;
  readonly #service: string;
  /** The last failure heard through onError (for registries whose Subscription has no lastError). */
  #lastError: Error | undefined;
  #ready: Promise<void> | undefined;
  /** A setting the registry cannot honour (preflight): every call fails with it. */
  #fatal: Error | undefined;
  #closed = false;

  constructor(upstream: Readonly<ResolvedUpstream>, deps: UpstreamDeps) {
    this.name = upstream.name;
    this.upstream = upstream;
    this.balancer = deps.createBalancer(upstream);
    this.subsets = Object.keys(upstream.subsets).length === 0 ? undefined : new SubsetBalancers(upstream.subsets, () => deps.createBalancer(upstream));
    this.pools = new EndpointPools({
      timeouts: upstream.timeouts,
      limits: upstream.limits,
      allowLinkLocal: deps.registry.allowLinkLocal === true,
    });
    this.chain = assembleChain(
      upstream,
      { ...deps, balancer: this.balancer, subsets: this.subsets, discovery: () => this.#discoveryState() },
      createTransport(this.pools),
    );
    const d = upstream.discovery;
    const { datacenter, tags } = d;
    this.#registryKind = deps.registry.kind;
    this.#redact = deps.redact ?? ((text) => text);
    this.#service = d.service ?? upstream.name;
    this.#subscription = deps.registry.subscribe(
      {
        service: this.#service,
        ...(datacenter === undefined ? {} : { datacenter }),
        ...(tags.length === 0 ? {} : { tags }),
        passingOnly: d.passingOnly,
      },
      (endpoints) => {
        this.#lastError = undefined;
        this.#onEndpoints(endpoints);
      },
      {
        // The registry logs the failure; here it is kept for NoEndpointsError and discoveryStatus().
        onError: (error) => {
          this.#lastError = error;
        },
      },
    );
    const waits: Promise<unknown>[] = [];
    if (this.balancer.endpoints.length === 0) waits.push(this.#subscription.ready().catch(() => undefined));
    if (deps.preflight !== undefined) {
      waits.push(
        deps.preflight().catch((error: unknown) => {
          this.#fatal = error instanceof Error ? error : new Error(String(error));
        }),
      );
    }
    if (waits.length > 0) {
      this.#ready = Promise.all(waits).then(() => {
        this.#ready = undefined;
      });
    }
  }

  #onEndpoints(endpoints: readonly Endpoint[]): void {
    if (this.#closed) return;
    this.balancer.update(endpoints);
    this.subsets?.update(endpoints);
    this.pools.retain(endpoints);
  }

  #discoveryState(): DiscoveryState {
    const sub = this.#subscription;
    const raw = sub.lastError === undefined ? this.#lastError : sub.lastError();
    // A hint from inmesh's own registries (watch-hub.ts); a user's registry may not have one.
    const hint = (sub as { emptyHint?: () => string | undefined }).emptyHint?.();
    if (raw === undefined) return { error: undefined, stalenessMs: sub.staleness(), ...(hint === undefined ? {} : { emptyHint: this.#redact(hint) }) };
    const errorMessage = this.#redact(raw.message);
    // A registry of the user's own may put a secret in its error: then the cause
    // callers see (and print with the NoEndpointsError) is a scrubbed copy.
    const error = errorMessage === raw.message ? raw : scrubbedCopy(raw, errorMessage);
    return { error, stalenessMs: sub.staleness(), errorMessage };
  }

  /** Endpoints, staleness and the last registry error of this upstream. */
  discoveryStatus(): DiscoveryStatus {
    const { error, stalenessMs, errorMessage } = this.#discoveryState();
    const b = this.balancer as LoadBalancer & { stats?: () => readonly { ejected: boolean }[] };
    const known = this.balancer.endpoints.length;
    const available = b.stats === undefined ? known : b.stats().filter((s) => !s.ejected).length;
    let lastError: DiscoveryStatus['lastError'];
    if (error !== undefined) {
      const code = (error as { code?: unknown }).code;
      const statusCode = (error as { statusCode?: unknown }).statusCode;
      lastError = {
        name: error.name,
        ...(typeof code === 'string' ? { code } : {}),
        message: errorMessage ?? error.message,
        ...(typeof statusCode === 'number' ? { statusCode } : {}),
      };
    }
    return { upstream: this.name, service: this.#service, registry: this.#registryKind, endpoints: known, available, stalenessMs, lastError };
  }

  /** A read-only snapshot of this upstream's state (see UpstreamState). Never starts or changes anything. */
  state(): UpstreamState {
    const b = this.balancer as Partial<MeshLoadBalancer>;
    const { breaker, limit, retry } = this.chain.layers as { breaker?: BreakerLayer; limit?: LimitLayer; retry?: RetryLayer };
    const budget = retry?.budget;
    return {
      discovery: this.discoveryStatus(),
      endpoints: typeof b.stats === 'function' ? b.stats() : [],
      panic: b.panic === true,
      breaker: breaker?.state,
      limit: limit === undefined ? undefined : { inFlight: limit.inFlight, pending: limit.pending },
      retryBudget: budget === undefined ? undefined : { active: budget.active, retriesInFlight: budget.retries, limit: budget.limit },
    };
  }

  call(req: MeshRequest): Promise<MeshResponse> {
    if (this.#closed) return Promise.reject(new ClosedError('mesh', { service: this.name }));
    if (this.#fatal !== undefined) return Promise.reject(this.#fatal);
    const handler = this.chain.handler;
    const ready = this.#ready;
    if (ready !== undefined) return ready.then(() => (this.#fatal === undefined ? handler(req) : Promise.reject(this.#fatal)));
    return handler(req);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#subscription.close();
    this.balancer.close();
    this.subsets?.close();
    await Promise.all([this.chain.close(), this.pools.close()]);
  }
}

/** What the entry points (fetch.ts, dispatcher.ts) need from the mesh: host → upstream runtime, and whether it is closed. */
export interface RuntimeLookup {
  runtimeFor(hostname: string): UpstreamRuntime | undefined;
  readonly closed: boolean;
}

/** `error` with `message` instead of its own, keeping its name, code and statusCode (no stack, no cause: they may hold the secret too). */
function scrubbedCopy(error: Error, message: string): Error {
  const copy = new Error(message);
  copy.name = error.name;
  copy.stack = `${error.name}: ${message}`;
  const { code, statusCode } = error as { code?: unknown; statusCode?: unknown };
  if (typeof code === 'string') Object.assign(copy, { code });
  if (typeof statusCode === 'number') Object.assign(copy, { statusCode });
  return copy;
}
