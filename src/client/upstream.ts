/**
 * The runtime of one upstream service: its load balancer (fed by the registry
 * subscription), its endpoint pools, its retry budget, and its layer chains
 * (built once per presence variant, at most 8, never per request).
 */
import type { LoadBalancer } from '../balancer/types.ts';
import { ClosedError } from '../errors.ts';
import type { ResolvedCallPolicy, ResolvedUpstream } from '../policy/types.ts';
import type { Endpoint, Registry, Subscription } from '../registry/types.ts';
import { RetryBudget } from '../resilience/budget.ts';
import { createRetryLayer } from '../resilience/retry.ts';
import { createBalanceLayer } from './balance.ts';
import { composeChain, type Chain, type NamedLayers } from './compose.ts';
import { attemptTimeoutLayer, deadlineLayer } from './deadline.ts';
import { createTransport, EndpointPools } from './transport.ts';
import type { CallOptions, Handler, Layer, MeshRequest, MeshResponse } from './types.ts';

/** Layers that other modules build once per upstream (undefined = off). */
export interface UpstreamLayers {
  readonly telemetry?: Layer | undefined;
  readonly breaker?: Layer | undefined;
  readonly rateLimit?: Layer | undefined;
  readonly limit?: Layer | undefined;
}

export interface UpstreamDeps {
  readonly registry: Registry;
  readonly datacenter?: string | undefined;
  readonly tags?: readonly string[] | undefined;
  readonly createBalancer: (upstream: Readonly<ResolvedUpstream>) => LoadBalancer;
  readonly layers: UpstreamLayers;
  /** Jitter source (tests). */
  readonly random?: (() => number) | undefined;
}

const DEADLINE = 1;
const RETRY = 2;
const ATTEMPT_TIMEOUT = 4;

/** Which optional call-tier layers a call needs, given its policy and per-call options. */
export function presenceMask(policy: Readonly<ResolvedCallPolicy>, options: Readonly<CallOptions>): number {
  const total = options.timeout ?? policy.timeouts.request;
  const perTry = options.perTryTimeout ?? policy.timeouts.perTry;
  const r = options.retries;
  const retries = r === false ? 0 : (r ?? policy.retries.attempts);
  return (total > 0 ? DEADLINE | ATTEMPT_TIMEOUT : 0) | (perTry > 0 ? ATTEMPT_TIMEOUT : 0) | (retries > 0 ? RETRY : 0);
}

export class UpstreamRuntime {
  readonly name: string;
  readonly upstream: Readonly<ResolvedUpstream>;
  readonly balancer: LoadBalancer;
  readonly pools: EndpointPools;
  readonly budget: RetryBudget | undefined;
  readonly #subscription: Subscription;
  readonly #chains: (Chain | undefined)[] = [];
  readonly #layers: UpstreamLayers;
  readonly #transport: Handler;
  readonly #balance: Layer;
  readonly #retry: Layer;
  #ready: Promise<void> | undefined;
  #closed = false;

  constructor(upstream: Readonly<ResolvedUpstream>, deps: UpstreamDeps) {
    this.name = upstream.name;
    this.upstream = upstream;
    this.#layers = deps.layers;
    this.balancer = deps.createBalancer(upstream);
    this.pools = new EndpointPools({ timeouts: upstream.timeouts, limits: upstream.limits });
    const budget = upstream.retries.budget;
    this.budget = budget === undefined ? undefined : new RetryBudget(budget);
    this.#transport = createTransport(this.pools);
    this.#balance = createBalanceLayer(this.balancer);
    this.#retry = createRetryLayer({ budget: this.budget, ...(deps.random ? { random: deps.random } : {}) });
    const d = upstream.discovery;
    const datacenter = deps.datacenter ?? d.datacenter;
    const tags = deps.tags ?? d.tags;
    this.#subscription = deps.registry.subscribe(
      {
        service: d.service ?? upstream.name,
        ...(datacenter === undefined ? {} : { datacenter }),
        ...(tags.length === 0 ? {} : { tags }),
        passingOnly: d.passingOnly,
      },
      (endpoints) => this.#onEndpoints(endpoints),
    );
    if (this.balancer.endpoints.length === 0) {
      this.#ready = this.#subscription.ready().then(
        () => {
          this.#ready = undefined;
        },
        () => {
          this.#ready = undefined;
        },
      );
    }
  }

  #onEndpoints(endpoints: readonly Endpoint[]): void {
    if (this.#closed) return;
    this.balancer.update(endpoints);
    this.pools.retain(endpoints);
  }

  /** The chain for a call with this presence mask (built on first use). */
  chain(mask: number): Chain {
    const cached = this.#chains[mask];
    if (cached !== undefined) return cached;
    const layers: NamedLayers = {
      telemetry: this.#layers.telemetry,
      deadline: mask & DEADLINE ? deadlineLayer : undefined,
      breaker: this.#layers.breaker,
      rateLimit: this.#layers.rateLimit,
      limit: this.#layers.limit,
      retry: mask & RETRY ? this.#retry : undefined,
      attemptTimeout: mask & ATTEMPT_TIMEOUT ? attemptTimeoutLayer : undefined,
      balance: this.#balance,
    };
    const chain = composeChain(layers, this.#transport);
    this.#chains[mask] = chain;
    return chain;
  }

  call(req: MeshRequest): Promise<MeshResponse> {
    if (this.#closed) return Promise.reject(new ClosedError('mesh', { service: this.name }));
    const handler = this.chain(presenceMask(req.policy, req.options)).handler;
    const ready = this.#ready;
    if (ready !== undefined) return ready.then(() => handler(req));
    return handler(req);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#subscription.close();
    this.balancer.close();
    await this.pools.close();
  }
}

/** What fetch.ts and dispatcher.ts need from the mesh: host → upstream runtime. */
export interface RuntimeLookup {
  runtimeFor(hostname: string): UpstreamRuntime | undefined;
}
