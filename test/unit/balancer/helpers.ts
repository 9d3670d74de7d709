/** Shared fixtures for the balancer unit tests: endpoints, configs, a fake clock and a seeded random. */
import type { Endpoint } from '../../../src/registry/types.ts';
import type { ResolvedLoadBalancer, ResolvedOutlierDetection } from '../../../src/policy/types.ts';
import type { AttemptOutcome } from '../../../src/balancer/types.ts';
import type { MeshLoadBalancer } from '../../../src/balancer/types.ts';

export function ep(id: string, weight = 1): Endpoint {
  return { id, address: '10.0.0.1', port: 8080, tags: [], meta: {}, weight };
}

export function eps(n: number, prefix = 'e'): Endpoint[] {
  return Array.from({ length: n }, (_, i) => ep(`${prefix}${i}`));
}

export function lbConfig(overrides: Partial<ResolvedLoadBalancer> = {}): ResolvedLoadBalancer {
  return {
    policy: 'round_robin',
    choiceCount: 2,
    hashOn: undefined,
    minimumRingSize: 1024,
    ewmaDecay: 10_000,
    ewmaDefaultRtt: 30,
    ...overrides,
  };
}

/** Outlier detection off unless overridden. */
export function odConfig(overrides: Partial<ResolvedOutlierDetection> = {}): ResolvedOutlierDetection {
  return {
    consecutive5xx: 0,
    consecutiveGatewayErrors: 0,
    interval: 10_000,
    baseEjectionTime: 30_000,
    maxEjectionTime: 300_000,
    maxEjectionPercent: 10,
    panicThresholdPercent: 0,
    ...overrides,
  };
}

export class FakeClock {
  now = 0;
  readonly fn = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Picks `n` times, closing each pick at once with `outcome`; returns counts per id. */
export function countPicks(
  lb: MeshLoadBalancer,
  n: number,
  outcome: AttemptOutcome = 'success',
  hashKey?: string,
  latencyMs = 1,
): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const p = lb.pick(hashKey === undefined ? undefined : { hashKey });
    if (p === undefined) throw new Error('no pick');
    counts.set(p.endpoint.id, (counts.get(p.endpoint.id) ?? 0) + 1);
    p.done(outcome, latencyMs);
  }
  return counts;
}

/** Sends `n` attempts with `outcome` straight to endpoint `id` (picking until it comes up). */
export function failOn(lb: MeshLoadBalancer, id: string, n: number, outcome: AttemptOutcome): void {
  let sent = 0;
  for (let guard = 0; sent < n && guard < 100_000; guard++) {
    const p = lb.pick();
    if (p === undefined) throw new Error('no pick');
    if (p.endpoint.id === id) {
      p.done(outcome, 1);
      sent++;
    } else {
      p.done('ignored', 1);
    }
  }
  if (sent < n) throw new Error(`could not reach ${id}`);
}

export function statsOf(lb: MeshLoadBalancer, id: string) {
  const s = lb.stats().find((x) => x.id === id);
  if (s === undefined) throw new Error(`no stats for ${id}`);
  return s;
}
