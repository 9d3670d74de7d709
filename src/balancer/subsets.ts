/**
 * Subset balancers (Envoy's subset load balancing, Istio's DestinationRule
 * subsets): one balancer per named subset of an upstream, fed with the
 * discovered endpoints that carry every tag and every meta pair of the subset.
 * Each subset has its own balancer, so outlier ejection and the panic
 * threshold count within the subset, as a sidecar does with one cluster per
 * subset. Built only when the upstream names subsets.
 */
import type { Endpoint } from '../core/types.ts';
import type { ResolvedSubset } from '../policy/types.ts';
import type { LoadBalancer } from './types.ts';

/** True when `endpoint` carries every tag and every meta pair of `subset`. */
export function inSubset(endpoint: Endpoint, subset: Readonly<ResolvedSubset>): boolean {
  for (const tag of subset.tags) if (!endpoint.tags.includes(tag)) return false;
  for (const key in subset.meta) {
    if (!Object.hasOwn(endpoint.meta, key) || endpoint.meta[key] !== subset.meta[key]) return false;
  }
  return true;
}

export class SubsetBalancers {
  readonly #subsets: readonly (readonly [string, Readonly<ResolvedSubset>, LoadBalancer])[];
  readonly #byName: ReadonlyMap<string, LoadBalancer>;

  /** `create` makes one balancer (the upstream's algorithm and outlier settings) per subset. */
  constructor(subsets: Readonly<Record<string, Readonly<ResolvedSubset>>>, create: () => LoadBalancer) {
    this.#subsets = Object.entries(subsets).map(([name, subset]) => [name, subset, create()] as const);
    this.#byName = new Map(this.#subsets.map(([name, , balancer]) => [name, balancer]));
  }

  /** The balancer of subset `name`; undefined for a name the upstream does not define. */
  get(name: string): LoadBalancer | undefined {
    return this.#byName.get(name);
  }

  /** Feeds each subset's balancer with the endpoints of `endpoints` that belong to it. */
  update(endpoints: readonly Endpoint[]): void {
    for (const [, subset, balancer] of this.#subsets) balancer.update(endpoints.filter((e) => inSubset(e, subset)));
  }

  close(): void {
    for (const [, , balancer] of this.#subsets) balancer.close();
  }
}
