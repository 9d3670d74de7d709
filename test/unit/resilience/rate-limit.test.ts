import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClosedError, ErrorCodes, InvalidArgumentError, RateLimitedError } from '../../../src/errors.ts';
import { createRateLimitLayer, refillStep } from '../../../src/resilience/rate-limit.ts';
import type { Handler, MeshRequest, MeshResponse } from '../../../src/core/types.ts';
import type { ResolvedRateLimit, ResolvedUpstream } from '../../../src/policy/types.ts';
import { fakeRequest } from '../../harness/mesh-request.ts';

function upstream(rateLimit: ResolvedRateLimit | undefined): ResolvedUpstream {
  return { name: 'orders', rateLimit } as unknown as ResolvedUpstream;
}

const request = (up: ResolvedUpstream): MeshRequest => fakeRequest(up);

const ok: MeshResponse = { statusCode: 200, headers: {}, body: null as never, trailers: {}, endpoint: '127.0.0.1:1', attempts: 1 };

function counting(): { handler: Handler; calls: () => number } {
  let calls = 0;
  return {
    handler: async () => {
      calls++;
      return ok;
    },
    calls: () => calls,
  };
}

/** Calls h n times; returns how many were admitted and checks every refusal is a RateLimitedError. */
async function fire(h: Handler, up: ResolvedUpstream, n: number): Promise<number> {
  let admitted = 0;
  for (let i = 0; i < n; i++) {
    try {
      await h(request(up));
      admitted++;
    } catch (e) {
      expect(e).toBeInstanceOf(RateLimitedError);
    }
  }
  return admitted;
}

describe('createRateLimitLayer (process-local bucket)', () => {
  let savedEnv: string | undefined;
  beforeEach(() => {
    savedEnv = process.env.INMESH_REDIS_URL;
    delete process.env.INMESH_REDIS_URL;
  });
  afterEach(() => {
    if (savedEnv === undefined) delete process.env.INMESH_REDIS_URL;
    else process.env.INMESH_REDIS_URL = savedEnv;
  });

  it('returns undefined when the upstream has no rate limit', () => {
    expect(createRateLimitLayer(upstream(undefined))).toBeUndefined();
  });

  it('admits a burst, then fails fast with RateLimitedError without calling the inner handler', async () => {
    let t = 0;
    const up = upstream({ requestsPerSecond: 10, burst: 5, shared: false });
    const layer = createRateLimitLayer(up, { now: () => t })!;
    expect(layer.shared).toBe(false);
    await layer.ready();
    const inner = counting();
    const h = layer(inner.handler);
    expect(await fire(h, up, 5)).toBe(5);
    const err = await h(request(up)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitedError);
    expect((err as RateLimitedError).code).toBe(ErrorCodes.RATE_LIMITED);
    expect((err as RateLimitedError).message).toBe('orders: client rate limit exceeded');
    expect(inner.calls()).toBe(5);
    // 99 ms later still no whole token at 10/s; at 100 ms there is one.
    t += 99;
    expect(await fire(h, up, 1)).toBe(0);
    t += 1;
    expect(await fire(h, up, 2)).toBe(1);
  });

  it('refills at requestsPerSecond and never holds more than burst', async () => {
    let t = 1_000;
    const up = upstream({ requestsPerSecond: 20, burst: 4, shared: false });
    const h = createRateLimitLayer(up, { now: () => t })!(counting().handler);
    expect(await fire(h, up, 10)).toBe(4);
    t += 60_000; // a long quiet period: the bucket is full, not 1,200 tokens deep
    expect(await fire(h, up, 10)).toBe(4);
    // Sustained: one call per ms for 10 s admits 20/s x 10 s (+ nothing left of the burst).
    let admitted = 0;
    for (let i = 0; i < 10_000; i++) {
      t += 1;
      admitted += await fire(h, up, 1);
    }
    expect(admitted).toBe(200);
  });

  it('admits burst + rate x time over a window that starts full', async () => {
    let t = 0;
    const up = upstream({ requestsPerSecond: 100, burst: 50, shared: false });
    const h = createRateLimitLayer(up, { now: () => t })!(counting().handler);
    let admitted = 0;
    for (let ms = 0; ms < 2_000; ms += 5) {
      t = ms;
      admitted += await fire(h, up, 3);
    }
    // 50 at once, then 100/s for the 1.995 s that passed.
    expect(admitted).toBe(50 + 199);
  });

  it('fails with ClosedError after close()', async () => {
    const up = upstream({ requestsPerSecond: 10, burst: 5, shared: false });
    const layer = createRateLimitLayer(up)!;
    await layer.close();
    await expect(layer(counting().handler)(request(up))).rejects.toBeInstanceOf(ClosedError);
  });

  it('refuses shared mode without a Redis URL, saying how to give one', () => {
    const up = upstream({ requestsPerSecond: 10, burst: 5, shared: true });
    expect(() => createRateLimitLayer(up)).toThrow(InvalidArgumentError);
    expect(() => createRateLimitLayer(up)).toThrow(
      'orders: rateLimit.shared is true but no Redis is configured: set INMESH_REDIS_URL (redis://host:port) or createMesh({ redisUrl })',
    );
  });

  it('rejects a non-positive rate', () => {
    expect(() => createRateLimitLayer(upstream({ requestsPerSecond: 0, burst: 1, shared: false }))).toThrow(InvalidArgumentError);
  });
});

describe('refillStep', () => {
  it.each([
    [1, 1, 1000],
    [5, 1, 200],
    [0.5, 1, 2000],
    [300, 3, 10],
    [1000, 1, 1],
    [1_000_000, 1000, 1],
  ])('%s/s -> %s every %s ms', (rps, amount, interval) => {
    expect(refillStep(rps)).toEqual({ amount, interval });
  });

  it('stays within 0.1 % of the rate for awkward rates', () => {
    for (const rps of [3, 7, 13, 333, 777, 12_345]) {
      const { amount, interval } = refillStep(rps);
      expect(Math.abs((amount * 1000) / interval - rps) / rps).toBeLessThanOrEqual(0.001);
    }
  });
});

describe('local bucket: takeNow', () => {
  it('decides at once from the same bucket the layer draws from, and gives undefined once closed', async () => {
    let t = 0;
    const layer = createRateLimitLayer(upstream({ requestsPerSecond: 1, burst: 2, shared: false }), { now: () => t });
    const takeNow = layer?.takeNow;
    expect(takeNow).toBeTypeOf('function');
    expect(takeNow?.()).toBe(true);
    expect(takeNow?.()).toBe(true);
    expect(takeNow?.()).toBe(false);
    t = 1000;
    expect(takeNow?.()).toBe(true);
    await layer?.close();
    expect(takeNow?.()).toBeUndefined();
  });
});
