import { describe, expect, it } from 'vitest';
import { AbortedError, ClosedError, ErrorCodes, LoadShedError, TimeoutError, UpstreamError } from '../../../src/errors.ts';
import { createLimitLayer } from '../../../src/resilience/limits.ts';
import type { Handler, MeshResponse } from '../../../src/core/types.ts';
import type { ResolvedUpstream } from '../../../src/policy/types.ts';
import { fakeRequest } from '../../harness/mesh-request.ts';

function upstream(maxRequests: number, maxPendingRequests: number): ResolvedUpstream {
  return {
    name: 'orders',
    limits: { maxConnections: 1024, maxPendingRequests, maxRequests, maxRequestsPerConnection: 0 },
    timeouts: { connect: 1000, request: 5000, perTry: 0, idle: 1000 },
    rateLimit: undefined,
  } as unknown as ResolvedUpstream;
}

const request = fakeRequest;

const ok = (): MeshResponse => ({ statusCode: 200, headers: {}, body: null as never, trailers: {}, endpoint: '127.0.0.1:1', attempts: 1 });

/** An inner handler whose calls stay in flight until released by the test. */
function gate() {
  const held: { resolve: (r: MeshResponse) => void; reject: (e: Error) => void; id: number }[] = [];
  let calls = 0;
  let concurrent = 0;
  let maxConcurrent = 0;
  const started: number[] = [];
  const handler: Handler = (req) => {
    calls++;
    concurrent++;
    maxConcurrent = Math.max(maxConcurrent, concurrent);
    started.push(Number(req.headers['x-id'] ?? -1));
    return new Promise<MeshResponse>((resolve, reject) => {
      held.push({ resolve, reject, id: calls });
    }).finally(() => {
      concurrent--;
    });
  };
  const releaseOne = (fail = false): void => {
    const h = held.shift();
    if (!h) throw new Error('nothing held');
    if (fail) h.reject(new UpstreamError('orders', [{ endpoint: undefined, error: 'ECONNRESET' }]));
    else h.resolve(ok());
  };
  return { handler, releaseOne, held, started, calls: () => calls, max: () => maxConcurrent };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('createLimitLayer', () => {
  it('keeps in-flight calls at or below maxRequests (measured) and runs every call', async () => {
    const up = upstream(3, 1000);
    const layer = createLimitLayer(up)!;
    let concurrent = 0;
    let max = 0;
    const h = layer(async () => {
      concurrent++;
      max = Math.max(max, concurrent);
      for (let i = 0; i < 1 + (concurrent % 3); i++) await tick();
      concurrent--;
      return ok();
    });
    const results = await Promise.all(Array.from({ length: 200 }, () => h(request(up))));
    expect(results).toHaveLength(200);
    expect(max).toBe(3);
    expect(layer.inFlight).toBe(0);
    expect(layer.pending).toBe(0);
  });

  it('queues in FIFO order and hands each released permit to the oldest waiter', async () => {
    const up = upstream(1, 10);
    const layer = createLimitLayer(up)!;
    const g = gate();
    const h = layer(g.handler);
    const calls = [0, 1, 2, 3].map((i) => {
      const r = request(up);
      r.headers['x-id'] = String(i);
      return h(r);
    });
    expect(layer.inFlight).toBe(1);
    expect(layer.pending).toBe(3);
    for (let i = 0; i < 4; i++) {
      await tick();
      g.releaseOne();
    }
    await Promise.all(calls);
    expect(g.started).toEqual([0, 1, 2, 3]);
    expect(g.max()).toBe(1);
  });

  it('sheds at once with LoadShedError when the pending queue is full, without calling the inner handler', async () => {
    const up = upstream(1, 2);
    const layer = createLimitLayer(up)!;
    const g = gate();
    const h = layer(g.handler);
    const admitted = [h(request(up)), h(request(up)), h(request(up))];
    expect(layer.pending).toBe(2);
    const err = await h(request(up)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LoadShedError);
    expect((err as LoadShedError).code).toBe(ErrorCodes.LOAD_SHED);
    expect((err as LoadShedError).limit).toBe('maxPendingRequests');
    expect((err as LoadShedError).message).toBe('orders: maxPendingRequests reached, request shed');
    expect(g.calls()).toBe(1); // the shed call never reached the handler, and nothing was released
    for (let i = 0; i < 3; i++) {
      await tick();
      g.releaseOne();
    }
    await Promise.all(admitted);
    expect(layer.inFlight).toBe(0);
  });

  it('sheds at once when maxPendingRequests is 0', async () => {
    const up = upstream(1, 0);
    const layer = createLimitLayer(up)!;
    const g = gate();
    const h = layer(g.handler);
    const first = h(request(up));
    await expect(h(request(up))).rejects.toBeInstanceOf(LoadShedError);
    g.releaseOne();
    await first;
  });

  it('removes a queued call when the caller aborts, rejects it with AbortedError and frees its place', async () => {
    const up = upstream(1, 1);
    const layer = createLimitLayer(up)!;
    const g = gate();
    const h = layer(g.handler);
    const first = h(request(up));
    const ac = new AbortController();
    const queued = h(request(up, { signal: ac.signal }));
    expect(layer.pending).toBe(1);
    ac.abort('caller gave up');
    const err = await queued.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect((err as AbortedError).code).toBe(ErrorCodes.ABORTED);
    expect((err as AbortedError).cause).toBe('caller gave up');
    expect(layer.pending).toBe(0);
    // Its place is free again, and the aborted call never got a permit.
    const next = h(request(up));
    expect(layer.pending).toBe(1);
    g.releaseOne();
    await first;
    await tick();
    g.releaseOne();
    await next;
    expect(g.calls()).toBe(2);
    expect(layer.inFlight).toBe(0);
  });

  it('keeps an inmesh abort reason, and rejects an already aborted call at once', async () => {
    const up = upstream(1, 5);
    const layer = createLimitLayer(up)!;
    const g = gate();
    const h = layer(g.handler);
    const first = h(request(up));
    const ac = new AbortController();
    const queued = h(request(up, { signal: ac.signal }));
    const reason = new TimeoutError('total', 10, { service: 'orders' });
    ac.abort(reason);
    await expect(queued).rejects.toBe(reason);
    await expect(h(request(up, { signal: AbortSignal.abort() }))).rejects.toBeInstanceOf(AbortedError);
    expect(layer.pending).toBe(0);
    g.releaseOne();
    await first;
  });

  it('honours the total deadline while queued', async () => {
    const up = upstream(1, 5);
    const layer = createLimitLayer(up)!;
    const g = gate();
    const h = layer(g.handler);
    const first = h(request(up));
    const err = await h(request(up, { deadline: performance.now() + 20, timeout: 20 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).phase).toBe('total');
    expect((err as TimeoutError).message).toBe('orders: total timeout of 20 ms exceeded');
    expect(layer.pending).toBe(0);
    await expect(h(request(up, { deadline: performance.now() - 1 }))).rejects.toBeInstanceOf(TimeoutError);
    g.releaseOne();
    await first;
    expect(layer.inFlight).toBe(0);
  });

  it('releases the permit when the inner handler throws synchronously or rejects', async () => {
    const up = upstream(1, 0);
    const layer = createLimitLayer(up)!;
    const h = layer(() => {
      throw new Error('sync');
    });
    await expect(h(request(up))).rejects.toThrow('sync');
    expect(layer.inFlight).toBe(0);
    const h2 = layer(() => Promise.reject(new Error('async')));
    await expect(h2(request(up))).rejects.toThrow('async');
    expect(layer.inFlight).toBe(0);
  });

  it('leaks no permit after 1,000 mixed calls (success, failure, sync throw, queued abort, shed)', async () => {
    const up = upstream(4, 8);
    const layer = createLimitLayer(up)!;
    let concurrent = 0;
    let max = 0;
    let n = 0;
    const h = layer((req) => {
      const kind = Number(req.headers['x-kind']);
      if (kind === 2) throw new Error('sync');
      concurrent++;
      max = Math.max(max, concurrent);
      return (async () => {
        for (let i = 0; i < (n++ % 3); i++) await tick();
        concurrent--;
        if (kind === 1) throw new UpstreamError('orders', [{ endpoint: undefined, status: 503 }]);
        return ok();
      })();
    });
    const outcomes = { ok: 0, failed: 0, shed: 0, aborted: 0, sync: 0 };
    const all: Promise<void>[] = [];
    for (let i = 0; i < 1000; i++) {
      const ac = new AbortController();
      const r = request(up, { signal: ac.signal });
      r.headers['x-kind'] = String(i % 5 === 3 ? 0 : i % 3);
      const p = h(r).then(
        () => {
          outcomes.ok++;
        },
        (e: unknown) => {
          if (e instanceof LoadShedError) outcomes.shed++;
          else if (e instanceof AbortedError) outcomes.aborted++;
          else if (e instanceof UpstreamError) outcomes.failed++;
          else outcomes.sync++;
        },
      );
      if (i % 5 === 3) queueMicrotask(() => ac.abort());
      all.push(p);
      if (i % 50 === 49) await tick();
    }
    await Promise.all(all);
    expect(outcomes.ok + outcomes.failed + outcomes.shed + outcomes.aborted + outcomes.sync).toBe(1000);
    expect(outcomes.shed).toBeGreaterThan(0);
    expect(outcomes.aborted).toBeGreaterThan(0);
    expect(max).toBeLessThanOrEqual(4);
    expect(layer.inFlight).toBe(0);
    expect(layer.pending).toBe(0);
    // All four permits are still there: four calls run at once, the fifth waits.
    const g = gate();
    const hg = layer(g.handler);
    const calls = Array.from({ length: 5 }, () => hg(request(up)));
    expect(layer.inFlight).toBe(4);
    expect(layer.pending).toBe(1);
    for (let i = 0; i < 5; i++) {
      await tick();
      g.releaseOne();
    }
    await Promise.all(calls);
    expect(layer.inFlight).toBe(0);
  });

  it('close() rejects waiting and later calls with ClosedError; calls in flight finish', async () => {
    const up = upstream(1, 5);
    const layer = createLimitLayer(up)!;
    const g = gate();
    const h = layer(g.handler);
    const first = h(request(up));
    const queued = [h(request(up)), h(request(up))];
    await layer.close();
    await layer.close();
    for (const q of queued) {
      const err = await q.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ClosedError);
      expect((err as ClosedError).message).toBe('limits of orders is closed');
    }
    await expect(h(request(up))).rejects.toBeInstanceOf(ClosedError);
    g.releaseOne();
    expect((await first).statusCode).toBe(200);
    expect(layer.inFlight).toBe(0);
    expect(layer.pending).toBe(0);
  });
});
