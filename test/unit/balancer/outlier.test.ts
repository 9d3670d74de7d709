import { describe, expect, it } from 'vitest';
import { createLoadBalancer } from '../../../src/balancer/balancer.ts';
import type { EjectionEvent, UnEjectionEvent } from '../../../src/balancer/types.ts';
import type { ResolvedOutlierDetection } from '../../../src/policy/types.ts';
import { FakeClock, countPicks, ep, eps, failOn, lbConfig, odConfig, seeded, statsOf } from './helpers.ts';

function setup(od: Partial<ResolvedOutlierDetection>, n = 10) {
  const clock = new FakeClock();
  const ejections: EjectionEvent[] = [];
  const returns: UnEjectionEvent[] = [];
  const lb = createLoadBalancer(lbConfig(), odConfig({ consecutive5xx: 5, maxEjectionPercent: 100, ...od }), {
    clock: clock.fn,
    random: seeded(7),
    onEject: (e) => ejections.push(e),
    onUnEject: (e) => returns.push(e),
  });
  lb.update(eps(n));
  return { lb, clock, ejections, returns };
}

describe('outlier detection: consecutive errors', () => {
  it('ejects on the 5th consecutive 5xx, immediately', () => {
    const { lb, ejections } = setup({});
    failOn(lb, 'e0', 4, 'server-error');
    expect(statsOf(lb, 'e0').ejected).toBe(false);
    expect(statsOf(lb, 'e0').consecutive5xx).toBe(4);
    failOn(lb, 'e0', 1, 'server-error');
    expect(statsOf(lb, 'e0').ejected).toBe(true);
    expect(ejections).toHaveLength(1);
    expect(ejections[0]).toMatchObject({ reason: 'consecutive-5xx', timesEjected: 1, durationMs: 30_000 });
    const counts = countPicks(lb, 900);
    expect(counts.has('e0')).toBe(false);
  });

  it('counts gateway errors toward consecutive 5xx too', () => {
    const { lb } = setup({});
    failOn(lb, 'e0', 3, 'gateway-error');
    failOn(lb, 'e0', 2, 'server-error');
    expect(statsOf(lb, 'e0').ejected).toBe(true);
  });

  it('has a separate consecutive gateway error detector', () => {
    const { lb, ejections } = setup({ consecutive5xx: 0, consecutiveGatewayErrors: 3 });
    failOn(lb, 'e0', 10, 'server-error');
    expect(statsOf(lb, 'e0').ejected).toBe(false); // 5xx detector off; 500s are not gateway errors
    failOn(lb, 'e0', 2, 'gateway-error');
    failOn(lb, 'e0', 1, 'server-error'); // a 500 breaks the gateway run (Envoy)
    failOn(lb, 'e0', 2, 'gateway-error');
    expect(statsOf(lb, 'e0').ejected).toBe(false);
    failOn(lb, 'e0', 1, 'gateway-error');
    expect(statsOf(lb, 'e0').ejected).toBe(true);
    expect(ejections[0]!.reason).toBe('consecutive-gateway-errors');
  });

  it('0 disables both detectors', () => {
    const { lb } = setup({ consecutive5xx: 0, consecutiveGatewayErrors: 0 });
    failOn(lb, 'e0', 50, 'gateway-error');
    expect(statsOf(lb, 'e0').ejected).toBe(false);
  });

  it('success resets both counters', () => {
    const { lb } = setup({ consecutiveGatewayErrors: 5 });
    failOn(lb, 'e0', 4, 'gateway-error');
    expect(statsOf(lb, 'e0')).toMatchObject({ consecutive5xx: 4, consecutiveGatewayErrors: 4 });
    failOn(lb, 'e0', 1, 'success');
    expect(statsOf(lb, 'e0')).toMatchObject({ consecutive5xx: 0, consecutiveGatewayErrors: 0 });
    failOn(lb, 'e0', 4, 'gateway-error');
    expect(statsOf(lb, 'e0').ejected).toBe(false);
  });

  it('ignored outcomes (local overflow, caller abort) touch nothing', () => {
    const { lb } = setup({});
    failOn(lb, 'e0', 4, 'server-error');
    failOn(lb, 'e0', 20, 'ignored');
    expect(statsOf(lb, 'e0').consecutive5xx).toBe(4);
    failOn(lb, 'e0', 1, 'server-error');
    expect(statsOf(lb, 'e0').ejected).toBe(true);
  });

  it('ignores outcomes from picks of endpoints removed since', () => {
    const { lb, ejections } = setup({ consecutive5xx: 1 });
    const picks = Array.from({ length: 10 }, () => lb.pick()!);
    lb.update(eps(10, 'x'));
    for (const p of picks) p.done('server-error', 1);
    expect(ejections).toHaveLength(0);
  });
});

describe('outlier detection: ejection time', () => {
  it('returns on the first interval tick after base ejection time (fake clock, lazy on pick)', () => {
    const { lb, clock, returns } = setup({});
    failOn(lb, 'e0', 5, 'server-error');
    expect(statsOf(lb, 'e0').ejectedUntil).toBe(30_000);
    clock.advance(29_999);
    expect(countPicks(lb, 100).has('e0')).toBe(false);
    clock.advance(1); // t = 30 s: a tick (interval 10 s)
    expect(countPicks(lb, 100).get('e0')).toBe(10);
    expect(returns).toHaveLength(1);
    expect(returns[0]!.endpoint.id).toBe('e0');
    // counters were reset on return
    expect(statsOf(lb, 'e0').consecutive5xx).toBe(0);
  });

  it('waits for the next tick when the time is up between ticks', () => {
    const { lb, clock } = setup({});
    clock.advance(5_000);
    failOn(lb, 'e0', 5, 'server-error'); // until 35 s; ticks at 10, 20, 30, 40 s
    clock.now = 39_999;
    expect(statsOf(lb, 'e0').ejected).toBe(true);
    clock.now = 40_000;
    expect(statsOf(lb, 'e0').ejected).toBe(false);
  });

  it('grows base x times ejected and caps at maxEjectionTime', () => {
    const { lb, clock, ejections } = setup({ baseEjectionTime: 30_000, maxEjectionTime: 100_000 });
    const durations: number[] = [];
    for (let round = 0; round < 6; round++) {
      failOn(lb, 'e0', 5, 'server-error');
      const e = ejections.at(-1)!;
      durations.push(e.durationMs);
      expect(e.ejectedUntil).toBe(clock.now + e.durationMs);
      clock.now = Math.ceil(e.ejectedUntil / 10_000) * 10_000; // the tick that returns it
      expect(statsOf(lb, 'e0').ejected).toBe(false);
    }
    expect(durations).toEqual([30_000, 60_000, 90_000, 100_000, 100_000, 100_000]);
    expect(statsOf(lb, 'e0').timesEjected).toBe(5); // Envoy stops growing it once base x m >= max + base
  });

  it('decays the multiplier by one per healthy interval', () => {
    const { lb, clock, ejections } = setup({});
    failOn(lb, 'e0', 5, 'server-error');
    clock.now = 30_000;
    lb.pick()!.done('success', 1);
    failOn(lb, 'e0', 5, 'server-error'); // second ejection: 60 s
    expect(ejections[1]!.durationMs).toBe(60_000);
    expect(statsOf(lb, 'e0').timesEjected).toBe(2);
    clock.now = 90_000; // returns at the 90 s tick (no decay on that tick)
    expect(statsOf(lb, 'e0')).toMatchObject({ ejected: false, timesEjected: 2 });
    clock.now = 100_000;
    expect(statsOf(lb, 'e0').timesEjected).toBe(1);
    clock.now = 110_000;
    expect(statsOf(lb, 'e0').timesEjected).toBe(0);
    failOn(lb, 'e0', 5, 'server-error');
    expect(ejections[2]!.durationMs).toBe(30_000);
  });

  it('applies several missed ticks at once like ticking one by one', () => {
    const { lb, clock } = setup({});
    failOn(lb, 'e0', 5, 'server-error');
    clock.now = 30_000;
    failOn(lb, 'e0', 5, 'server-error'); // multiplier 2, until 90 s
    clock.now = 125_000; // ticks 40..120: returns at 90, decays at 100, 110, 120 -> 0
    expect(statsOf(lb, 'e0')).toMatchObject({ ejected: false, timesEjected: 0 });
  });

  it('reviews on the unref timer too (real timers)', async () => {
    const returned: string[] = [];
    let back!: () => void;
    const unEjected = new Promise<void>((resolve) => (back = resolve));
    const lb2 = createLoadBalancer(
      lbConfig(),
      odConfig({ consecutive5xx: 1, interval: 5, baseEjectionTime: 5, maxEjectionPercent: 100 }),
      {
        random: seeded(1),
        onUnEject: (e) => {
          returned.push(e.endpoint.id);
          back();
        },
      },
    );
    lb2.update([ep('a'), ep('b')]);
    failOn(lb2, 'a', 1, 'server-error');
    // Nothing else reads the clock here (no pick, no stats): only the balancer's own interval timer can return it.
    await unEjected;
    expect(returned).toEqual(['a']);
    lb2.close();
  });
});

describe('outlier detection: events', () => {
  it('a throwing listener does not break picks or done()', () => {
    const clock = new FakeClock();
    const lb = createLoadBalancer(lbConfig(), odConfig({ consecutive5xx: 1, maxEjectionPercent: 100 }), {
      clock: clock.fn,
      random: seeded(1),
      onEject: () => {
        throw new Error('listener bug');
      },
      onUnEject: () => {
        throw new Error('listener bug');
      },
    });
    lb.update(eps(2));
    expect(() => lb.pick()!.done('server-error', 1)).not.toThrow();
    expect(lb.stats().filter((s) => s.ejected)).toHaveLength(1);
    clock.now = 30_000;
    expect(() => lb.pick()).not.toThrow();
    expect(lb.stats().filter((s) => s.ejected)).toHaveLength(0);
  });
});

describe('outlier detection: limits and panic', () => {
  it('maxEjectionPercent 10 with 3 hosts still allows exactly one ejection', () => {
    const { lb, ejections } = setup({ maxEjectionPercent: 10 }, 3);
    failOn(lb, 'e0', 5, 'server-error');
    failOn(lb, 'e1', 5, 'server-error');
    failOn(lb, 'e2', 5, 'server-error');
    expect(ejections.map((e) => e.endpoint.id)).toEqual(['e0']);
    expect(lb.stats().filter((s) => s.ejected)).toHaveLength(1);
  });

  it('maxEjectionPercent 50 with 4 hosts allows two', () => {
    const { lb } = setup({ maxEjectionPercent: 50 }, 4);
    for (const id of ['e0', 'e1', 'e2', 'e3']) failOn(lb, id, 5, 'server-error');
    expect(lb.stats().filter((s) => s.ejected)).toHaveLength(2);
  });

  it('an overflowing detection resets its counter (a new run is needed)', () => {
    const { lb } = setup({ maxEjectionPercent: 10 }, 3);
    failOn(lb, 'e0', 5, 'server-error');
    failOn(lb, 'e1', 5, 'server-error');
    expect(statsOf(lb, 'e1')).toMatchObject({ ejected: false, consecutive5xx: 0 });
  });

  it('panic: below the threshold, balances across all endpoints', () => {
    const { lb } = setup({ panicThresholdPercent: 50 }, 4);
    failOn(lb, 'e0', 5, 'server-error');
    expect(lb.panic).toBe(false);
    expect(countPicks(lb, 300).size).toBe(3);
    failOn(lb, 'e1', 5, 'server-error'); // 50 % healthy: not below 50
    expect(lb.panic).toBe(false);
    expect(countPicks(lb, 300).size).toBe(2);
    failOn(lb, 'e2', 5, 'server-error'); // 25 % healthy: panic
    expect(lb.panic).toBe(true);
    const counts = countPicks(lb, 400);
    expect([...counts.keys()].sort()).toEqual(['e0', 'e1', 'e2', 'e3']);
    expect(counts.get('e0')).toBe(100);
  });

  it('all ejected with panic off: pick returns undefined while endpoints are known', () => {
    const { lb, clock } = setup({ panicThresholdPercent: 0 }, 2);
    failOn(lb, 'e0', 5, 'server-error');
    failOn(lb, 'e1', 5, 'server-error');
    expect(lb.pick()).toBeUndefined();
    expect(lb.endpoints).toHaveLength(2);
    clock.now = 30_000;
    expect(lb.pick()).toBeDefined();
  });

  it('a single host with the default panic threshold keeps receiving traffic', () => {
    const { lb } = setup({ panicThresholdPercent: 50 }, 1);
    failOn(lb, 'e0', 5, 'server-error');
    expect(statsOf(lb, 'e0').ejected).toBe(true);
    expect(lb.pick()?.endpoint.id).toBe('e0');
  });

  it('exclude still applies to healthy hosts only', () => {
    const { lb } = setup({}, 3);
    failOn(lb, 'e0', 5, 'server-error');
    // e1 excluded, e0 ejected: e2
    for (let i = 0; i < 10; i++) expect(lb.pick({ exclude: new Set(['e1']) })!.endpoint.id).toBe('e2');
    // both healthy ones excluded: falls back to a healthy one, never the ejected one
    for (let i = 0; i < 10; i++) expect(lb.pick({ exclude: new Set(['e1', 'e2']) })!.endpoint.id).not.toBe('e0');
  });
});

describe('update()', () => {
  it('keeps state of endpoints that stay and drops removed ones', () => {
    const { lb, clock } = setup({}, 3);
    failOn(lb, 'e0', 5, 'server-error');
    failOn(lb, 'e1', 3, 'server-error');
    lb.update([ep('e0'), ep('e1', 2), ep('e9')]);
    expect(statsOf(lb, 'e0').ejected).toBe(true);
    expect(statsOf(lb, 'e1')).toMatchObject({ consecutive5xx: 3 });
    expect(statsOf(lb, 'e1').endpoint.weight).toBe(2);
    expect(lb.stats().map((s) => s.id)).toEqual(['e0', 'e1', 'e9']);
    lb.update([ep('e1'), ep('e9')]);
    lb.update([ep('e0'), ep('e1'), ep('e9')]);
    expect(statsOf(lb, 'e0')).toMatchObject({ ejected: false, timesEjected: 0, consecutive5xx: 0 });
    clock.now = 30_000;
    expect(lb.stats().every((s) => !s.ejected)).toBe(true);
  });

  it('1,000 updates do not leak state', () => {
    const { lb } = setup({}, 3);
    for (let i = 0; i < 1000; i++) {
      lb.update([ep(`a${i}`), ep(`b${i}`), ep('stable')]);
      lb.pick()!.done('server-error', 1);
    }
    expect(lb.stats()).toHaveLength(3);
    expect(lb.endpoints).toHaveLength(3);
    // the internal id index only holds the current endpoints
    expect(lb.stateCount).toBe(3);
  });

  it('ignores duplicate ids (first wins)', () => {
    const { lb } = setup({}, 0);
    lb.update([ep('a', 1), ep('a', 5), ep('b')]);
    expect(lb.endpoints.map((e) => e.id)).toEqual(['a', 'b']);
  });
});

describe('answering(): some non-ejected endpoint answered its last attempt', () => {
  it('is false before any attempt, true after a success, false once that endpoint fails or is ejected', () => {
    const { lb } = setup({ consecutive5xx: 2 }, 3);
    expect(lb.answering()).toBe(false);
    failOn(lb, 'e1', 1, 'success');
    expect(lb.answering()).toBe(true);
    // an ignored outcome (local refusal, abort) leaves the flag alone
    failOn(lb, 'e1', 1, 'ignored');
    expect(lb.answering()).toBe(true);
    failOn(lb, 'e1', 1, 'gateway-error');
    expect(lb.answering()).toBe(false);
    failOn(lb, 'e2', 1, 'success');
    expect(lb.answering()).toBe(true);
    failOn(lb, 'e0', 2, 'server-error'); // e0 ejected: e2 still answers
    expect(statsOf(lb, 'e0').ejected).toBe(true);
    expect(lb.answering()).toBe(true);
    failOn(lb, 'e2', 1, 'success');
    failOn(lb, 'e2', 1, 'server-error');
    expect(lb.answering()).toBe(false);
  });

  it('does not count an ejected endpoint whose last attempt succeeded', () => {
    const { lb } = setup({ consecutive5xx: 1 }, 2);
    // an attempt on e0 in flight while e0 is ejected, which then succeeds
    let held = lb.pick()!;
    while (held.endpoint.id !== 'e0') {
      held.done('ignored', 1);
      held = lb.pick()!;
    }
    failOn(lb, 'e0', 1, 'server-error');
    expect(statsOf(lb, 'e0').ejected).toBe(true);
    held.done('success', 1);
    expect(lb.answering()).toBe(false);
    failOn(lb, 'e1', 1, 'success');
    expect(lb.answering()).toBe(true);
  });
});
