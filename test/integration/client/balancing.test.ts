/** Balancing through the mesh, counted at the servers. */
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createMesh, type Mesh } from '../../../src/index.ts';
import { closeAll, ok, policyFor, startServer, type TestServer } from './helpers.ts';

let mesh: Mesh | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await closeAll();
});

describe('ring_hash', () => {
  it('keeps a key on the same instance: per-call hashKey and a header hashOn', async () => {
    const servers = await Promise.all([1, 2, 3, 4].map(() => startServer(ok)));
    const seen = (): number[] => servers.map((s) => s.hits);
    mesh = createMesh({
      policy: policyFor({
        orders: { endpoints: servers.map((s) => s.address), doc: { loadBalancer: { policy: 'ring_hash', hashOn: { header: 'x-user-id' } } } },
      }),
      telemetry: { enabled: false },
    });
    for (const key of ['alice', 'bob', 'carol']) {
      const before = seen();
      for (let i = 0; i < 20; i++) await (await mesh.request('http://orders/', { hashKey: key })).body.dump();
      const delta = seen().map((n, i) => n - before[i]!);
      expect(delta.filter((d) => d > 0)).toEqual([20]);
      const before2 = seen();
      for (let i = 0; i < 20; i++) await (await mesh.request('http://orders/', { headers: { 'X-User-Id': key } })).body.dump();
      const delta2 = seen().map((n, i) => n - before2[i]!);
      expect(delta2.filter((d) => d > 0)).toEqual([20]);
    }
    // many keys spread over more than one instance
    const before = seen();
    for (let i = 0; i < 60; i++) await (await mesh.request('http://orders/', { hashKey: `user-${i}` })).body.dump();
    expect(seen().filter((n, i) => n > before[i]!).length).toBeGreaterThan(1);
  });
});

describe('latency-aware balancing', () => {
  /**
   * How many of `total` calls, made by 8 callers, reach a slow instance of
   * three. The slow one is slow in events, not in time: it holds
   * each response until 24 more requests have arrived at the three servers (a
   * few round trips of the fast ones, however loaded the machine), or until
   * every caller still running waits on it (so the callers can never all be
   * stuck there). The fast ones answer at once.
   */
  async function slowShare(policy: string, total = 600): Promise<{ slow: number; all: number }> {
    const workers = 8;
    const holdFor = 24;
    let arrivals = 0;
    let running = workers;
    const held: { res: ServerResponse; until: number }[] = [];
    const release = (): void => {
      while (held.length > 0 && (held[0]!.until <= arrivals || held.length >= running)) held.shift()!.res.end('slow');
    };
    const slow: TestServer = await startServer((_req, res) => {
      arrivals++;
      held.push({ res, until: arrivals + holdFor });
      release();
    });
    const fastHandler = (_req: unknown, res: ServerResponse): void => {
      arrivals++;
      res.end('ok');
      release();
    };
    const fast = await Promise.all([startServer(fastHandler), startServer(fastHandler)]);
    const m = createMesh({
      policy: policyFor(
        { orders: { endpoints: [slow, ...fast].map((s) => s.address), doc: { loadBalancer: { policy } } } },
        { outlierDetection: { consecutive5xx: 0 } },
      ),
      telemetry: { enabled: false },
    });
    let next = 0;
    try {
      await Promise.all(
        Array.from({ length: workers }, async () => {
          try {
            while (next++ < total) await (await m.request('http://orders/')).body.dump();
          } finally {
            running--;
            release();
          }
        }),
      );
    } finally {
      await m.close();
    }
    const all = slow.hits + fast[0].hits + fast[1].hits;
    expect(all).toBe(total);
    expect(held).toHaveLength(0);
    return { slow: slow.hits, all };
  }

  it('least_request and peak_ewma send less traffic to a slow instance than round_robin', async () => {
    // Round robin ignores load: exactly one call in three, whatever the timing.
    expect(await slowShare('round_robin')).toEqual({ slow: 200, all: 600 });
    const lr = await slowShare('least_request');
    const ewma = await slowShare('peak_ewma');
    expect(lr.slow).toBeLessThan(200 * 0.7);
    expect(ewma.slow).toBeLessThan(200 * 0.7);
  });
});
