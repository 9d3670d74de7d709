/**
 * A tiny private round-robin balancer with the LoadBalancer contract, used only
 * when the balancer module cannot build one (it is the fallback of
 * client/upstream.ts). No outlier detection: `done()` is a no-op.
 */
import type { LoadBalancer, Pick, PickContext } from '../balancer/types.ts';
import type { Endpoint } from '../registry/types.ts';

const noop = (): void => undefined;

export class RoundRobinBalancer implements LoadBalancer {
  #picks: Pick[] = [];
  #endpoints: readonly Endpoint[] = [];
  #next = 0;

  get endpoints(): readonly Endpoint[] {
    return this.#endpoints;
  }

  update(endpoints: readonly Endpoint[]): void {
    this.#endpoints = endpoints;
    this.#picks = endpoints.map((endpoint) => ({ endpoint, done: noop }));
  }

  pick(ctx?: PickContext): Pick | undefined {
    const picks = this.#picks;
    const n = picks.length;
    if (n === 0) return undefined;
    const exclude = ctx?.exclude;
    for (let i = 0; i < n; i++) {
      const p = picks[(this.#next++ & 0x7fffffff) % n];
      if (p !== undefined && (exclude === undefined || !exclude.has(p.endpoint.id))) return p;
    }
    return picks[(this.#next++ & 0x7fffffff) % n];
  }

  close(): void {
    this.#picks = [];
  }
}
