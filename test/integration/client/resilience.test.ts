/**
 * Failure injection on real loopback servers: 503s, resets, hangs, a full
 * outage against the retry budget, POST safety and Retry-After.
 */
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createMesh, type Mesh } from '../../../src/index.ts';
import { closeAll, hanging, ok, policyFor, startServer } from './helpers.ts';

let mesh: Mesh | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await closeAll();
});

async function runConcurrently(total: number, concurrency: number, call: (i: number) => Promise<boolean>): Promise<number> {
  let next = 0;
  let good = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        if (await call(i)) good++;
      }
    }),
  );
  return good;
}

describe('retries and ejection', () => {
  it('one of three instances always 503: ≥ 99.9 % success over 1,000 calls and the bad one is ejected', async () => {
    const good = await Promise.all([startServer(ok), startServer(ok)]);
    const bad = await startServer((_req, res) => {
      res.statusCode = 503;
      res.end('down');
    });
    mesh = createMesh({
      policy: policyFor(
        { orders: { endpoints: [...good, bad].map((s) => s.address) } },
        { retries: { retryOn: ['gateway-error', '5xx'] }, outlierDetection: { consecutive5xx: 5, maxEjectionPercent: 34 } },
      ),
      telemetry: { enabled: false },
    });
    const m = mesh;
    // concurrency 3 = the budget's minConcurrency: every retry wanted is allowed
    const succeeded = await runConcurrently(1000, 3, async () => {
      const res = await m.request('http://orders/');
      await res.body.dump();
      return res.statusCode === 200;
    });
    expect(succeeded / 1000).toBeGreaterThanOrEqual(0.999);
    // ejected: after 5 consecutive 503s (plus what was in flight) it sees no more traffic
    expect(bad.hits).toBeLessThan(40);
    const before = bad.hits;
    for (let i = 0; i < 30; i++) await (await m.request('http://orders/')).body.dump();
    expect(bad.hits).toBe(before);
  });

  it('an instance that resets every connection: retried elsewhere, all succeed', async () => {
    const good = await Promise.all([startServer(ok), startServer(ok)]);
    const reset = await startServer((req) => req.socket.destroy());
    mesh = createMesh({
      policy: policyFor({ orders: { endpoints: [reset, ...good].map((s) => s.address) } }, { outlierDetection: { consecutive5xx: 0 } }),
      telemetry: { enabled: false },
    });
    const m = mesh;
    let retried = 0;
    const succeeded = await runConcurrently(300, 3, async () => {
      const res = await m.request('http://orders/');
      if (res.attempts > 1) retried++;
      await res.body.dump();
      return res.statusCode === 200;
    });
    expect(succeeded).toBe(300);
    expect(reset.hits).toBeGreaterThan(0);
    expect(retried).toBe(reset.hits);
  });

  it('an instance that hangs: per-try timeout, then success elsewhere', async () => {
    const good = await Promise.all([startServer(ok), startServer(ok)]);
    const hang = await startServer((_req, res) => hanging.push(res));
    mesh = createMesh({
      policy: policyFor(
        { orders: { endpoints: [hang, ...good].map((s) => s.address) } },
        { timeouts: { perTry: '100ms', request: '5s' }, outlierDetection: { consecutive5xx: 0 } },
      ),
      telemetry: { enabled: false },
    });
    const started = performance.now();
    for (let i = 0; i < 12; i++) {
      const t0 = performance.now();
      const res = await mesh.request('http://orders/');
      expect(res.statusCode).toBe(200);
      await res.body.dump();
      if (res.attempts > 1) expect(performance.now() - t0).toBeGreaterThanOrEqual(95);
    }
    expect(hang.hits).toBeGreaterThanOrEqual(3);
    expect(hang.hits).toBeLessThanOrEqual(6);
    expect(performance.now() - started).toBeLessThan(4000);
  });
});

describe('retry budget', () => {
  it('a full outage does not multiply load: hits ≤ N + B·R with B = max(minConcurrency, floor(percent·N/100))', async () => {
    const N = 20; // concurrent calls
    const R = 3; // retries per call
    const percent = 20;
    const minConcurrency = 3;
    const B = Math.max(minConcurrency, Math.floor((percent * N) / 100)); // 4
    let seen = 0;
    const held: ServerResponse[] = [];
    const fail = (res: ServerResponse): void => {
      res.statusCode = 503;
      res.end('down');
    };
    // Barrier: the first N requests are answered together, so every call's
    // first failure is judged while all N are active.
    const handler = (_req: unknown, res: ServerResponse): void => {
      seen++;
      if (seen < N) held.push(res);
      else {
        for (const r of held.splice(0)) fail(r);
        fail(res);
      }
    };
    const servers = await Promise.all([startServer(handler), startServer(handler), startServer(handler)]);
    mesh = createMesh({
      policy: policyFor(
        { orders: { endpoints: servers.map((s) => s.address) } },
        {
          retries: { attempts: R, backoff: { base: '5ms', max: '20ms' }, budget: { percent, minConcurrency } },
          outlierDetection: { consecutive5xx: 0 },
        },
      ),
      telemetry: { enabled: false },
    });
    const m = mesh;
    const results = await Promise.all(
      Array.from({ length: N }, async () => {
        const res = await m.request('http://orders/');
        await res.body.dump();
        return res.statusCode;
      }),
    );
    expect(results.every((s) => s === 503)).toBe(true);
    const hits = servers.reduce((n, s) => n + s.hits, 0);
    expect(hits).toBeGreaterThan(N); // some retries happened
    expect(hits).toBeLessThanOrEqual(N + B * R); // 32, instead of N·(1+R) = 80 without a budget
  });
});

describe('safety of retries', () => {
  it('POST is not retried on a 503 unless the call or the policy allows it', async () => {
    const s = await startServer((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    const make = (idempotentOnly: boolean): Mesh =>
      createMesh({
        policy: policyFor({ orders: { endpoints: [s.address] } }, { retries: { idempotentOnly, backoff: { base: '1ms', max: '2ms' } }, outlierDetection: { consecutive5xx: 0 } }),
        telemetry: { enabled: false },
      });
    mesh = make(true);
    await (await mesh.request('http://orders/', { method: 'POST', body: 'x' })).body.dump();
    expect(s.hits).toBe(1);
    await (await mesh.request('http://orders/', { method: 'POST', body: 'x', idempotent: true })).body.dump();
    expect(s.hits).toBe(4);
    await (await mesh.request('http://orders/', { method: 'GET', idempotent: false })).body.dump();
    expect(s.hits).toBe(5);
    await mesh.close();
    mesh = make(false);
    await (await mesh.request('http://orders/', { method: 'POST', body: Buffer.from('x') })).body.dump();
    expect(s.hits).toBe(8);
  });

  it('a POST whose connection was refused (nothing sent) is retried on another host; a streamed body is sent once', async () => {
    const closed = await startServer(ok);
    const closedAddress = closed.address;
    await new Promise<void>((resolve) => closed.server.close(() => resolve()));
    const bodies: string[] = [];
    const s = await startServer((req, res) => {
      let b = '';
      req.on('data', (c: Buffer) => (b += String(c)));
      req.on('end', () => {
        bodies.push(b);
        res.statusCode = 503;
        res.end();
      });
    });
    mesh = createMesh({
      policy: policyFor({ orders: { endpoints: [closedAddress, s.address] } }, { outlierDetection: { consecutive5xx: 0 } }),
      telemetry: { enabled: false },
    });
    for (let i = 0; i < 4; i++) {
      const res = await mesh.request('http://orders/', { method: 'POST', body: 'payload' });
      expect(res.statusCode).toBe(503);
      await res.body.dump();
    }
    expect(bodies).toEqual(['payload', 'payload', 'payload', 'payload']);
    await mesh.close();
    mesh = createMesh({
      policy: policyFor({ orders: { endpoints: [s.address] } }, { outlierDetection: { consecutive5xx: 0 } }),
      telemetry: { enabled: false },
    });
    const { Readable } = await import('node:stream');
    const res = await mesh.request('http://orders/', { method: 'PUT', body: Readable.from(['streamed']) });
    expect(res.statusCode).toBe(503);
    expect(res.attempts).toBe(1);
    await res.body.dump();
    // PUT is idempotent and 503 is retryable, but a streamed body is sent once
    expect(bodies.slice(4)).toEqual(['streamed']);
  });

  it('429 with Retry-After: waits exactly that long (gap measured at the server); longer than maxRetryAfter → not retried, the 429 returned', async () => {
    const times: number[] = [];
    let retryAfter = '1';
    const s = await startServer((_req, res) => {
      times.push(performance.now());
      if (times.length % 2 === 1) {
        res.statusCode = 429;
        res.setHeader('retry-after', retryAfter);
        res.end();
      } else res.end('ok');
    });
    const meshWith = (maxRetryAfter: string): Mesh =>
      createMesh({
        policy: policyFor(
          { orders: { endpoints: [s.address] } },
          { retries: { retryOn: ['retriable-status-codes'], retriableStatusCodes: [429], maxRetryAfter }, outlierDetection: { consecutive5xx: 0 } },
        ),
        telemetry: { enabled: false },
      });
    mesh = meshWith('300ms');
    retryAfter = '0';
    let res = await mesh.request('http://orders/');
    expect([res.statusCode, res.attempts]).toEqual([200, 2]);
    await res.body.dump();
    retryAfter = '1'; // 1 s asked, 300 ms allowed: the 429 is the answer
    const t0 = performance.now();
    res = await mesh.request('http://orders/');
    expect([res.statusCode, res.attempts, res.headers['retry-after']]).toEqual([429, 1, '1']);
    expect(performance.now() - t0).toBeLessThan(800); // honouring Retry-After would take >= 1 s
    await res.body.dump();
    expect(times).toHaveLength(3);
    await mesh.close();
    times.length = 0;
    mesh = meshWith('5s');
    res = await mesh.request('http://orders/');
    expect([res.statusCode, res.attempts]).toEqual([200, 2]);
    await res.body.dump();
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(995);
    expect(times[1]! - times[0]!).toBeLessThan(1900);
  });

  it('503 with Retry-After: waits that long and retries (default retryOn); longer than maxRetryAfter or the deadline left → the 503 is returned at once', async () => {
    const times: number[] = [];
    let retryAfter = '1';
    const s = await startServer((_req, res) => {
      times.push(performance.now());
      if (times.length % 2 === 1) {
        res.statusCode = 503;
        res.setHeader('retry-after', retryAfter);
        res.end('busy');
      } else res.end('ok');
    });
    mesh = createMesh({
      policy: policyFor({ orders: { endpoints: [s.address] } }, { retries: { maxRetryAfter: '2s' }, outlierDetection: { consecutive5xx: 0 } }),
      telemetry: { enabled: false },
    });
    let res = await mesh.request('http://orders/');
    expect([res.statusCode, res.attempts]).toEqual([200, 2]);
    await res.body.dump();
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(995);

    retryAfter = '3'; // more than maxRetryAfter (2 s)
    let t0 = performance.now();
    res = await mesh.request('http://orders/');
    expect([res.statusCode, res.attempts, res.headers['retry-after']]).toEqual([503, 1, '3']);
    expect(await res.body.text()).toBe('busy');
    expect(performance.now() - t0).toBeLessThan(800); // honouring Retry-After would take >= 3 s
    expect(times).toHaveLength(3);

    times.length = 0;
    retryAfter = '1'; // within maxRetryAfter but more than the 500 ms deadline
    t0 = performance.now();
    res = await mesh.request('http://orders/', { timeout: 500 });
    expect([res.statusCode, res.attempts]).toEqual([503, 1]);
    expect(performance.now() - t0).toBeLessThan(450); // waiting out the 500 ms deadline would take longer
    await res.body.dump();
    expect(times).toHaveLength(1);
  });
});

describe('x-envoy-ratelimited', () => {
  // Every server answers `status`, with the header when `limited`; the same calls without it are retried (the control).
  async function hitsPerCall(status: 429 | 503, retries: Record<string, unknown>): Promise<{ limited: number[]; plain: number[] }> {
    let limited = true;
    const handler = (_req: unknown, res: ServerResponse): void => {
      res.statusCode = status;
      if (limited) res.setHeader('x-envoy-ratelimited', 'true');
      res.end('limited');
    };
    const servers = await Promise.all([startServer(handler), startServer(handler), startServer(handler)]);
    mesh = createMesh({
      policy: policyFor(
        { orders: { endpoints: servers.map((s) => s.address) } },
        { retries: { attempts: 2, backoff: { base: '1ms', max: '2ms' }, ...retries }, outlierDetection: { consecutive5xx: 0 } },
      ),
      telemetry: { enabled: false },
    });
    const total = (): number => servers.reduce((n, s) => n + s.hits, 0);
    const run = async (): Promise<number[]> => {
      const seen: number[] = [];
      for (let i = 0; i < 5; i++) {
        const before = total();
        const res = await mesh!.request('http://orders/');
        expect(res.statusCode).toBe(status);
        await res.body.dump();
        seen.push(total() - before);
      }
      return seen;
    };
    const a = await run();
    limited = false;
    const b = await run();
    return { limited: a, plain: b };
  }

  it('a 429 carrying the header is not retried although retryOn lists 429; without the header it is', async () => {
    const hits = await hitsPerCall(429, { retryOn: ['retriable-status-codes', '5xx'], retriableStatusCodes: [429], maxRetryAfter: '0s' });
    expect(hits.limited).toEqual([1, 1, 1, 1, 1]);
    expect(hits.plain).toEqual([3, 3, 3, 3, 3]);
  });

  it('a 503 carrying the header is not retried under gateway-error, 5xx or retriable-status-codes; without the header it is', async () => {
    const hits = await hitsPerCall(503, { retryOn: ['gateway-error', '5xx', 'retriable-status-codes'], retriableStatusCodes: [503] });
    expect(hits.limited).toEqual([1, 1, 1, 1, 1]);
    expect(hits.plain).toEqual([3, 3, 3, 3, 3]);
  });
});
