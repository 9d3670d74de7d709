import { describe, expect, it } from 'vitest';
import { createLoadBalancer } from '../../../src/balancer/balancer.ts';
import { murmur3 } from '../../../src/balancer/hash.ts';
import type { Pick } from '../../../src/balancer/types.ts';
import type { LoadBalancerPolicy } from '../../../src/policy/types.ts';
import { FakeClock, countPicks, ep, eps, lbConfig, odConfig, seeded } from './helpers.ts';

function make(policy: LoadBalancerPolicy, seed = 42, clock = new FakeClock()) {
  return createLoadBalancer(lbConfig({ policy }), odConfig(), { random: seeded(seed), clock: clock.fn });
}

describe('murmur3', () => {
  it('matches MurmurHash3_x86_32 reference vectors (UTF-16LE bytes)', () => {
    expect(murmur3('')).toBe(0);
    expect(murmur3('', 1)).toBe(0x514e28b7);
    expect(murmur3('\u0000\u0000')).toBe(0x2362f9de); // bytes 00 00 00 00
    expect(murmur3('\u6161\u6161', 0x9747b28c)).toBe(0x5a97808a); // bytes "aaaa"
    expect(murmur3('\u6161', 0x9747b28c)).toBe(0x5d211726); // bytes "aa" (tail)
  });
});

describe('random', () => {
  it('spreads uniformly within bounds (seeded)', () => {
    const lb = make('random');
    lb.update(eps(4));
    const counts = countPicks(lb, 40_000);
    for (const c of counts.values()) expect(Math.abs(c - 10_000)).toBeLessThan(400);
  });

  it('honours weights', () => {
    const lb = make('random');
    lb.update([ep('a', 1), ep('b', 3)]);
    const counts = countPicks(lb, 40_000);
    expect(counts.get('b')! / 40_000).toBeGreaterThan(0.73);
    expect(counts.get('b')! / 40_000).toBeLessThan(0.77);
  });

  it('avoids excluded endpoints', () => {
    const lb = make('random');
    lb.update([ep('a', 50), ep('b', 1), ep('c', 1)]);
    for (let i = 0; i < 200; i++) expect(lb.pick({ exclude: new Set(['a', 'b']) })!.endpoint.id).toBe('c');
  });
});

describe('least_request', () => {
  it('prefers the less loaded endpoint', () => {
    const lb = make('least_request');
    lb.update(eps(3));
    // Load e0 with 10 picks not yet done (exclude steers them there).
    const held: Pick[] = Array.from({ length: 10 }, () => lb.pick({ exclude: new Set(['e1', 'e2']) })!);
    expect(held.every((p) => p.endpoint.id === 'e0')).toBe(true);
    const counts = countPicks(lb, 3000);
    // Two distinct draws out of three always include a less loaded endpoint.
    expect(counts.get('e0') ?? 0).toBe(0);
    for (const p of held) p.done('success', 1);
    expect(countPicks(lb, 3000).get('e0')).toBeGreaterThan(800);
  });

  it('keeps concurrent load balanced', () => {
    const lb = make('least_request');
    lb.update(eps(5));
    const held = Array.from({ length: 100 }, () => lb.pick()!);
    const active = lb.stats().map((s) => s.active);
    expect(Math.max(...active) - Math.min(...active)).toBeLessThanOrEqual(2);
    for (const p of held) p.done('success', 1);
  });

  it('honours weights (active / weight)', () => {
    const lb = make('least_request');
    lb.update([ep('a', 1), ep('b', 3)]);
    const held = Array.from({ length: 400 }, () => lb.pick()!);
    const byId = new Map(lb.stats().map((s) => [s.id, s.active]));
    expect(byId.get('b')! / 400).toBeGreaterThan(0.7);
    expect(byId.get('b')! / 400).toBeLessThan(0.8);
    for (const p of held) p.done('success', 1);
  });

  it('compares all candidates when choiceCount >= n, and avoids excluded ones', () => {
    const lb = createLoadBalancer(lbConfig({ policy: 'least_request', choiceCount: 5 }), odConfig(), {
      random: seeded(3),
    });
    lb.update(eps(3));
    const p = lb.pick({ exclude: new Set(['e0']) })!;
    expect(p.endpoint.id).not.toBe('e0');
    for (let i = 0; i < 100; i++) expect(lb.pick({ exclude: new Set(['e0', 'e2']) })!.endpoint.id).toBe('e1');
  });
});

describe('ring_hash', () => {
  function keys(n: number): string[] {
    return Array.from({ length: n }, (_, i) => `user-${i}`);
  }
  function assign(lb: ReturnType<typeof make>, ks: string[]): Map<string, string> {
    const m = new Map<string, string>();
    for (const k of ks) {
      const p = lb.pick({ hashKey: k })!;
      m.set(k, p.endpoint.id);
      p.done('success', 1);
    }
    return m;
  }
  function moved(a: Map<string, string>, b: Map<string, string>): number {
    let n = 0;
    for (const [k, v] of a) if (b.get(k) !== v) n++;
    return n;
  }

  it('maps the same key to the same endpoint, in every process', () => {
    const a = make('ring_hash', 1);
    const b = make('ring_hash', 2);
    a.update(eps(5));
    b.update([...eps(5)].reverse()); // order of the registry answer does not matter
    for (const k of keys(500)) expect(a.pick({ hashKey: k })!.endpoint.id).toBe(b.pick({ hashKey: k })!.endpoint.id);
  });

  it('spreads keys over the hosts', () => {
    const lb = make('ring_hash');
    lb.update(eps(4));
    const counts = countPicks(lb, 0);
    expect(counts.size).toBe(0);
    const m = assign(lb, keys(10_000));
    const per = new Map<string, number>();
    for (const v of m.values()) per.set(v, (per.get(v) ?? 0) + 1);
    for (const c of per.values()) expect(c / 10_000).toBeGreaterThan(0.18);
  });

  it('adding a 4th endpoint moves about 1/4 of the keys, all to the new one', () => {
    const lb = make('ring_hash');
    lb.update(eps(3));
    const before = assign(lb, keys(10_000));
    lb.update(eps(4));
    const after = assign(lb, keys(10_000));
    const share = moved(before, after) / 10_000;
    expect(share).toBeGreaterThan(0.15);
    expect(share).toBeLessThan(0.35);
    for (const [k, v] of after) if (before.get(k) !== v) expect(v).toBe('e3');
  });

  it('removing one endpoint moves only its keys', () => {
    const lb = make('ring_hash');
    lb.update(eps(4));
    const before = assign(lb, keys(10_000));
    lb.update(eps(4).filter((e) => e.id !== 'e1'));
    const after = assign(lb, keys(10_000));
    for (const [k, v] of before) {
      if (v !== 'e1') expect(after.get(k)).toBe(v);
      else expect(after.get(k)).not.toBe('e1');
    }
  });

  it('weights scale the share of keys', () => {
    const lb = make('ring_hash');
    lb.update([ep('a', 1), ep('b', 3)]);
    const m = assign(lb, keys(10_000));
    const b = [...m.values()].filter((v) => v === 'b').length / 10_000;
    expect(b).toBeGreaterThan(0.68);
    expect(b).toBeLessThan(0.82);
  });

  it('moves a retried key to another host, and only the excluded host is skipped', () => {
    const lb = make('ring_hash');
    lb.update(eps(4));
    for (const k of keys(200)) {
      const first = lb.pick({ hashKey: k })!.endpoint.id;
      const retry = lb.pick({ hashKey: k, exclude: new Set([first]) })!.endpoint.id;
      expect(retry).not.toBe(first);
      expect(lb.pick({ hashKey: k, exclude: new Set([first]) })!.endpoint.id).toBe(retry);
    }
  });

  it('skips ejected hosts and gives their keys back on return', () => {
    const clock = new FakeClock();
    const lb = createLoadBalancer(lbConfig({ policy: 'ring_hash' }), odConfig({ consecutive5xx: 1, maxEjectionPercent: 50 }), {
      random: seeded(5),
      clock: clock.fn,
    });
    lb.update(eps(4));
    const before = assign(lb, keys(2000));
    const victim = before.get('user-0')!;
    const p = lb.pick({ hashKey: 'user-0' })!;
    p.done('server-error', 1);
    const during = assign(lb, keys(2000));
    for (const [k, v] of before) {
      if (v === victim) expect(during.get(k)).not.toBe(victim);
      else expect(during.get(k)).toBe(v);
    }
    clock.now = 30_000;
    expect(assign(lb, keys(2000))).toEqual(before);
  });

  it('uses a random key without hashKey', () => {
    const lb = make('ring_hash');
    lb.update(eps(4));
    expect(countPicks(lb, 2000).size).toBe(4);
  });
});

describe('peak_ewma', () => {
  function simulate(policy: LoadBalancerPolicy): Map<string, number> {
    const clock = new FakeClock();
    const lb = make(policy, 9, clock);
    lb.update(eps(3));
    const latency: Record<string, number> = { e0: 10, e1: 10, e2: 200 };
    const counts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      clock.advance(5);
      const p = lb.pick()!;
      counts.set(p.endpoint.id, (counts.get(p.endpoint.id) ?? 0) + 1);
      p.done('success', latency[p.endpoint.id]!);
    }
    return counts;
  }

  it('sends less traffic to a slow endpoint than round robin does', () => {
    const rr = simulate('round_robin');
    const ewma = simulate('peak_ewma');
    expect(rr.get('e2')).toBe(1000);
    expect(ewma.get('e2') ?? 0).toBeLessThan(300);
    expect(ewma.get('e2') ?? 0).toBeGreaterThan(0); // decay toward 0 lets it be probed again
  });

  it('takes a peak at once and decays back over ewmaDecay', () => {
    const clock = new FakeClock();
    const lb = make('peak_ewma', 1, clock);
    lb.update([ep('a')]);
    expect(lb.stats()[0]!.ewma).toBe(30); // ewmaDefaultRtt
    lb.pick()!.done('success', 500); // sample dated pick time + latency = 500
    clock.advance(500);
    expect(lb.stats()[0]!.ewma).toBe(500);
    clock.advance(10_000); // one decay window: e^-1
    expect(lb.stats()[0]!.ewma).toBeCloseTo(500 / Math.E, 5);
  });

  it('does not let fast failures or ignored attempts lower the estimate', () => {
    const clock = new FakeClock();
    const lb = make('peak_ewma', 1, clock);
    lb.update([ep('a')]);
    clock.advance(1000);
    const before = lb.stats()[0]!.ewma;
    lb.pick()!.done('gateway-error', 1);
    lb.pick()!.done('ignored', 1);
    expect(lb.stats()[0]!.ewma).toBeCloseTo(before, 10);
  });

  it('prefers idle endpoints when latencies are equal (cost x (active + 1))', () => {
    const lb = make('peak_ewma');
    lb.update(eps(4));
    const held = Array.from({ length: 100 }, () => lb.pick()!);
    const active = lb.stats().map((s) => s.active);
    expect(Math.max(...active) - Math.min(...active)).toBeLessThanOrEqual(2);
    for (const p of held) p.done('success', 30);
  });

  it('avoids excluded endpoints', () => {
    const lb = make('peak_ewma');
    lb.update(eps(3));
    for (let i = 0; i < 50; i++) expect(lb.pick({ exclude: new Set(['e0', 'e1']) })!.endpoint.id).toBe('e2');
  });
});

describe('every policy', () => {
  const policies: LoadBalancerPolicy[] = ['round_robin', 'random', 'least_request', 'ring_hash', 'peak_ewma'];
  it.each(policies)('%s: skips ejected endpoints and respects exclude', (policy) => {
    const lb = createLoadBalancer(lbConfig({ policy }), odConfig({ consecutive5xx: 1, maxEjectionPercent: 50 }), {
      random: seeded(11),
      clock: new FakeClock().fn,
    });
    lb.update(eps(4));
    let victim: string | undefined;
    while (victim === undefined) {
      const p = lb.pick()!;
      victim = p.endpoint.id;
      p.done('server-error', 1);
    }
    // Latency = ewmaDefaultRtt, so peak_ewma sees no endpoint as faster (frozen clock).
    const counts = countPicks(lb, 2000, 'success', undefined, 30);
    expect(counts.has(victim)).toBe(false);
    expect(counts.size).toBe(3);
    const others = lb.endpoints.map((e) => e.id).filter((id) => id !== victim);
    for (let i = 0; i < 50; i++) {
      const p = lb.pick({ hashKey: `k${i}`, exclude: new Set(others.slice(0, 2)) })!;
      expect(p.endpoint.id).toBe(others[2]);
    }
  });

  it.each(policies)('%s: returns undefined without endpoints and survives empty updates', (policy) => {
    const lb = make(policy);
    expect(lb.pick()).toBeUndefined();
    lb.update(eps(2));
    expect(lb.pick()).toBeDefined();
    lb.update([]);
    expect(lb.pick()).toBeUndefined();
    lb.update(eps(1));
    expect(lb.pick()!.endpoint.id).toBe('e0');
  });
});
