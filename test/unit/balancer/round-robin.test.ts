import { describe, expect, it } from 'vitest';
import { createLoadBalancer } from '../../../src/balancer/balancer.ts';
import { countPicks, ep, eps, lbConfig, odConfig, seeded } from './helpers.ts';

describe('round_robin', () => {
  it('returns undefined with no endpoints', () => {
    const lb = createLoadBalancer(lbConfig(), odConfig(), { random: seeded(1) });
    expect(lb.pick()).toBeUndefined();
    lb.update([]);
    expect(lb.pick()).toBeUndefined();
  });

  it('spreads evenly over equal weights, in rotation', () => {
    const lb = createLoadBalancer(lbConfig(), odConfig(), { random: seeded(1) });
    lb.update(eps(4));
    const counts = countPicks(lb, 400);
    expect([...counts.values()]).toEqual([100, 100, 100, 100]);
    // Strict rotation: 4 consecutive picks hit 4 distinct endpoints.
    const ids = new Set([0, 1, 2, 3].map(() => lb.pick()!.endpoint.id));
    expect(ids.size).toBe(4);
  });

  it('honours weights exactly over a full cycle (EDF)', () => {
    const lb = createLoadBalancer(lbConfig(), odConfig(), { random: seeded(1) });
    lb.update([ep('a', 1), ep('b', 3), ep('c', 6)]);
    const counts = countPicks(lb, 1000);
    expect(counts.get('a')).toBe(100);
    expect(counts.get('b')).toBe(300);
    expect(counts.get('c')).toBe(600);
  });

  it('interleaves weighted picks smoothly (no long bursts)', () => {
    const lb = createLoadBalancer(lbConfig(), odConfig(), { random: seeded(1) });
    lb.update([ep('a', 1), ep('b', 2)]);
    const seq = Array.from({ length: 9 }, () => lb.pick()!.endpoint.id).join('');
    expect(seq.includes('aa')).toBe(false);
    expect(seq.includes('bbb')).toBe(false);
  });

  it('avoids excluded endpoints while another exists', () => {
    const lb = createLoadBalancer(lbConfig(), odConfig(), { random: seeded(1) });
    lb.update(eps(3));
    for (let i = 0; i < 30; i++) {
      expect(lb.pick({ exclude: new Set(['e0', 'e1']) })!.endpoint.id).toBe('e2');
    }
    // Everything excluded: still picks (a retry may go back to a tried host).
    expect(lb.pick({ exclude: new Set(['e0', 'e1', 'e2']) })).toBeDefined();
  });

  it('avoids excluded endpoints with weights too', () => {
    const lb = createLoadBalancer(lbConfig(), odConfig(), { random: seeded(1) });
    lb.update([ep('a', 100), ep('b', 1)]);
    for (let i = 0; i < 20; i++) expect(lb.pick({ exclude: new Set(['a']) })!.endpoint.id).toBe('b');
  });

  it('counts active picks until done, and done is idempotent', () => {
    const lb = createLoadBalancer(lbConfig(), odConfig(), { random: seeded(1) });
    lb.update([ep('a')]);
    const p1 = lb.pick()!;
    const p2 = lb.pick()!;
    expect(lb.stats()[0]!.active).toBe(2);
    p1.done('success', 1);
    p1.done('success', 1);
    expect(lb.stats()[0]!.active).toBe(1);
    p2.done('success', 1);
    expect(lb.stats()[0]!.active).toBe(0);
  });
});
