import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { RetryBudgetExhaustedError, UpstreamError, AbortedError, TimeoutError } from '../../../src/errors.ts';
import { backoffDelay, bodyReplayable, createRetryLayer, parseRetryAfter } from '../../../src/resilience/retry.ts';
import type { MeshRequest, MeshResponse } from '../../../src/core/types.ts';
import { resolvePolicy } from '../../../src/policy/index.ts';

describe('backoffDelay (Envoy full jitter)', () => {
  it('draws in [0, min(max, base·(2^(n+1)−1)))', () => {
    expect(backoffDelay(0, 25, 250, () => 0.999)).toBe(24);
    expect(backoffDelay(1, 25, 250, () => 0.999)).toBe(74);
    expect(backoffDelay(2, 25, 250, () => 0.999)).toBe(174);
    expect(backoffDelay(3, 25, 250, () => 0.999)).toBe(249);
    expect(backoffDelay(40, 25, 250, () => 0.5)).toBe(125);
    expect(backoffDelay(5, 25, 250, () => 0)).toBe(0);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP dates', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(' 0 ')).toBe(0);
    const now = Date.parse('Wed, 21 Oct 2026 07:28:00 GMT');
    expect(parseRetryAfter('Wed, 21 Oct 2026 07:28:02 GMT', now)).toBe(2000);
    expect(parseRetryAfter('Wed, 21 Oct 2026 07:27:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe('bodyReplayable', () => {
  it('replays only buffered bodies up to maxBodyBytes', () => {
    expect(bodyReplayable(null, 10)).toBe(true);
    expect(bodyReplayable(undefined, 10)).toBe(true);
    expect(bodyReplayable('0123456789', 10)).toBe(true);
    expect(bodyReplayable('01234567890', 10)).toBe(false);
    expect(bodyReplayable('ééééé', 9)).toBe(false); // 10 bytes
    expect(bodyReplayable(Buffer.alloc(10), 10)).toBe(true);
    expect(bodyReplayable(new Uint8Array(11), 10)).toBe(false);
    expect(bodyReplayable(Readable.from(['x']), 10)).toBe(false);
  });
});

const policy = resolvePolicy({
  apiVersion: 'inmesh/v1',
  defaults: { retries: { attempts: 2, backoff: { base: '1ms', max: '2ms' }, retryOn: ['gateway-error', 'connect-failure'] } },
  upstreams: { orders: {} },
} as never);
const upstream = policy.upstreams.orders!;
/** The upstream with no retry budget (unlimited retries). */
const NO_BUDGET = { ...upstream, retries: { ...upstream.retries, budget: undefined } };
/** The upstream with this retry budget; the layer made from it exposes it as `layer.budget`. */
const withBudget = (budget: { percent: number; minConcurrency: number }) => ({ ...upstream, retries: { ...upstream.retries, budget } });

function request(method = 'GET', extra: Partial<MeshRequest> = {}): MeshRequest {
  return {
    service: 'orders', upstream, policy: upstream, method, path: '/', host: 'orders', hostname: 'orders', protocol: 'http:',
    headers: {}, body: null, signal: undefined, attemptControl: undefined, options: {}, deadline: Infinity, deadlineMs: 0, tried: undefined, attempt: 0,
    endpoint: undefined, ...extra,
  };
}

function response(statusCode: number): MeshResponse {
  return { statusCode, headers: {}, body: Readable.from([]) as never, trailers: {}, endpoint: 'e', attempts: 1 };
}
Object.assign(Readable.prototype, { dump: function (this: Readable) { this.destroy(); return Promise.resolve(); } });

const refused = (): Error => new UpstreamError('orders', [{ endpoint: 'e', error: 'ECONNREFUSED' }], { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) });

describe('retry layer', () => {
  it('does not enter the retry machinery on success', async () => {
    let calls = 0;
    const h = createRetryLayer(NO_BUDGET)(async () => { calls++; return response(200); });
    expect((await h(request())).statusCode).toBe(200);
    expect(calls).toBe(1);
  });

  it('retries up to `attempts` and returns the last retryable response', async () => {
    let calls = 0;
    const h = createRetryLayer(NO_BUDGET)(async () => { calls++; return response(503); });
    const res = await h(request());
    expect(res.statusCode).toBe(503);
    expect(calls).toBe(3);
  });

  it('succeeds on a later attempt', async () => {
    let calls = 0;
    const h = createRetryLayer(NO_BUDGET)(async () => (++calls < 3 ? response(502) : response(200)));
    expect((await h(request())).statusCode).toBe(200);
  });

  it('throws UpstreamError with every attempt when all fail with errors', async () => {
    const h = createRetryLayer(NO_BUDGET)(async () => { throw refused(); });
    const e = await h(request()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UpstreamError);
    expect((e as UpstreamError).attempts).toHaveLength(3);
    expect((e as UpstreamError).attempts[0]!.error).toBe('ECONNREFUSED');
    expect(((e as Error).cause as Error)).toBeInstanceOf(UpstreamError);
  });

  it('does not retry POST on a 503, but retries a connect failure', async () => {
    let calls = 0;
    const h = createRetryLayer(NO_BUDGET)(async () => { calls++; return response(503); });
    await h(request('POST'));
    expect(calls).toBe(1);
    calls = 0;
    const h2 = createRetryLayer(NO_BUDGET)(async () => { calls++; if (calls === 1) throw refused(); return response(200); });
    expect((await h2(request('POST'))).statusCode).toBe(200);
    expect(calls).toBe(2);
  });

  it('POST is retried when the call says idempotent', async () => {
    let calls = 0;
    const h = createRetryLayer(NO_BUDGET)(async () => { calls++; return response(503); });
    await h(request('POST', { options: { idempotent: true } }));
    expect(calls).toBe(3);
  });

  it('budget exhausted: a response is returned, an error becomes RetryBudgetExhaustedError', async () => {
    const layer = createRetryLayer(withBudget({ percent: 0, minConcurrency: 0 }));
    const budget = layer.budget!;
    const h = layer(async () => response(503));
    expect((await h(request())).statusCode).toBe(503);
    const h2 = layer(async () => { throw refused(); });
    const e = await h2(request()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RetryBudgetExhaustedError);
    expect((e as Error).cause).toBeInstanceOf(UpstreamError);
    expect(budget.active).toBe(0);
    expect(budget.retries).toBe(0);
  });

  it('a caller abort during backoff ends with AbortedError', async () => {
    const ac = new AbortController();
    const slow = resolvePolicy({ apiVersion: 'inmesh/v1', upstreams: { orders: { retries: { backoff: { base: '10s', max: '10s' } } } } } as never).upstreams.orders!;
    const h = createRetryLayer(NO_BUDGET, { random: () => 0.99 })(async () => { queueMicrotask(() => ac.abort()); return response(503); });
    const e = await h(request('GET', { policy: slow, upstream: slow, signal: ac.signal })).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AbortedError);
  });

  it('no retry when the backoff would pass the deadline: the last response stays', async () => {
    let calls = 0;
    const h = createRetryLayer(NO_BUDGET, { random: () => 0.99 })(async () => { calls++; return response(503); });
    const slow = resolvePolicy({ apiVersion: 'inmesh/v1', upstreams: { orders: { retries: { backoff: { base: '1s', max: '1s' } } } } } as never).upstreams.orders!;
    const res = await h(request('GET', { policy: slow, upstream: slow, deadline: performance.now() + 500 }));
    expect(res.statusCode).toBe(503);
    expect(calls).toBe(1);
  });

  it('Retry-After longer than maxRetryAfter or than the deadline left: no retry, that response returned, no budget token taken', async () => {
    const layer = createRetryLayer(withBudget({ percent: 0, minConcurrency: 1 }));
    const budget = layer.budget!;
    let calls = 0;
    let acquired = 0;
    const tryAcquire = budget.tryAcquire.bind(budget);
    budget.tryAcquire = () => { acquired++; return tryAcquire(); };
    const h = layer(async () => {
      calls++;
      const r = response(calls % 2 === 1 ? 503 : 200);
      return { ...r, headers: { 'retry-after': calls === 1 ? '11' : '0' } };
    });
    // the default maxRetryAfter is 10 s: 11 s is longer
    const res = await h(request());
    expect([res.statusCode, res.headers['retry-after'], calls, acquired]).toEqual([503, '11', 1, 0]);
    // 2 s asked, 500 ms left of the deadline
    calls = 0;
    const h2 = createRetryLayer(NO_BUDGET)(async () => {
      calls++;
      return { ...response(429), headers: { 'retry-after': '2' } };
    });
    const limited = resolvePolicy({
      apiVersion: 'inmesh/v1',
      upstreams: { orders: { retries: { retryOn: ['retriable-status-codes'], retriableStatusCodes: [429] } } },
    } as never).upstreams.orders!;
    const t0 = performance.now();
    const r2 = await h2(request('GET', { policy: limited, upstream: limited, deadline: performance.now() + 500 }));
    expect([r2.statusCode, calls]).toEqual([429, 1]);
    expect(performance.now() - t0).toBeLessThan(450); // waiting out the 500 ms deadline would take longer
  });

  it("Envoy's accounting: a retry holds its budget token from the decision, through its backoff, until the retried attempt ends", async () => {
    const budgeted = { ...upstream, retries: { ...upstream.retries, backoff: { base: 30, max: 30 }, budget: { percent: 0, minConcurrency: 1 } } };
    const layer = createRetryLayer(budgeted, { random: () => 0.99 }); // backoff ≈ 29 ms
    const budget = layer.budget!;
    let releaseRetried!: () => void;
    const retriedHeld = new Promise<void>((resolve) => { releaseRetried = resolve; });
    let retriedStarted!: () => void;
    const retriedRunning = new Promise<void>((resolve) => { retriedStarted = resolve; });
    let callsA = 0;
    const a = layer(async () => {
      if (++callsA === 1) return response(503);
      retriedStarted();
      await retriedHeld;
      return response(200);
    });
    const failing = layer(async () => response(503));

    const req = () => request('GET', { policy: budgeted, upstream: budgeted });
    const pending = a(req());
    // The first attempt answered 503; the retry is decided: its token is taken before the backoff.
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect([callsA, budget.retries]).toEqual([1, 1]);
    // During the backoff another call's retry is refused (minConcurrency 1, percent 0): its 503 comes back after one try.
    let callsB = 0;
    const b = layer(async () => { callsB++; return response(503); });
    expect([(await b(req())).statusCode, callsB]).toEqual([503, 1]);
    // The retried attempt runs: the token is still held.
    await retriedRunning;
    expect(budget.retries).toBe(1);
    expect((await failing(req())).statusCode).toBe(503);
    expect(budget.retries).toBe(1);
    // The retried attempt ends: the token is back, and another call may retry again.
    releaseRetried();
    expect((await pending).statusCode).toBe(200);
    expect(budget.retries).toBe(0);
    let callsC = 0;
    const c = layer(async () => (++callsC === 1 ? response(503) : response(200)));
    expect([(await c(req())).statusCode, callsC]).toEqual([200, 2]);
  });

  it('a total timeout is never retried nor wrapped', async () => {
    const h = createRetryLayer(NO_BUDGET)(async () => { throw new TimeoutError('total', 5); });
    await expect(h(request())).rejects.toBeInstanceOf(TimeoutError);
  });
});
