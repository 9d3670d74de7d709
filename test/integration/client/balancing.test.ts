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
  async function slowShare(policy: string): Promise<number> {
    const held = new Set<ServerResponse>();
    const slow: TestServer = await startServer((_req, res) => {
      held.add(res);
      setTimeout(() => {
        held.delete(res);
        res.end('slow');
      }, 20);
    });
    const fast = await Promise.all([startServer(ok), startServer(ok)]);
    const m = createMesh({
      policy: policyFor(
        { orders: { endpoints: [slow, ...fast].map((s) => s.address), doc: { loadBalancer: { policy } } } },
        { outlierDetection: { consecutive5xx: 0 } },
      ),
      telemetry: { enabled: false },
    });
    const total = 300;
    let next = 0;
    try {
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next++ < total) await (await m.request('http://orders/')).body.dump();
        }),
      );
    } finally {
      await m.close();
    }
    const all = slow.hits + fast[0].hits + fast[1].hits;
    expect(all).toBe(total);
    return slow.hits / all;
  }

  it('least_request and peak_ewma send less traffic to a slow instance than round_robin', async () => {
    const rr = await slowShare('round_robin');
    const lr = await slowShare('least_request');
    const ewma = await slowShare('peak_ewma');
    expect(rr).toBeGreaterThan(0.3);
    expect(lr).toBeLessThan(rr * 0.7);
    expect(ewma).toBeLessThan(rr * 0.7);
  });
});
