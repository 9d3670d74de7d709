import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { ClosedError, RateLimitedError } from '../../../src/errors.ts';
import { createRateLimitLayer } from '../../../src/resilience/rate-limit.ts';
import type { RateLimitLayer } from '../../../src/resilience/rate-limit.ts';
import type { Handler, MeshRequest, MeshResponse } from '../../../src/core/types.ts';
import type { ResolvedRateLimit, ResolvedUpstream } from '../../../src/policy/types.ts';
import { startRedis } from '../../harness/redis.ts';
import { createMesh } from '../../../src/mesh/mesh.ts';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RedisServer } from '../../harness/redis.ts';
import { fakeRequest } from '../../harness/mesh-request.ts';

function upstream(name: string, rateLimit: ResolvedRateLimit): ResolvedUpstream {
  return { name, rateLimit } as unknown as ResolvedUpstream;
}

const request = (up: ResolvedUpstream): MeshRequest => fakeRequest(up);

const ok: MeshResponse = { statusCode: 200, headers: {}, body: null as never, trailers: {}, endpoint: '127.0.0.1:1', attempts: 1 };
const inner: Handler = async () => ok;

async function tryCall(h: Handler, up: ResolvedUpstream): Promise<boolean> {
  try {
    await h(request(up));
    return true;
  } catch (e) {
    if (e instanceof RateLimitedError) return false;
    throw e;
  }
}

async function clientCount(admin: Redis): Promise<number> {
  const list = await admin.client('LIST');
  return String(list).trim().split('\n').length;
}

describe('shared rate limit (Bottleneck clustering over a real redis-server)', () => {
  let redis: RedisServer;
  let admin: Redis;
  const layers: RateLimitLayer[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
  });

  afterAll(async () => {
    // The server is stopped whatever happens to the layers.
    try {
      await Promise.allSettled(layers.map((l) => l.close()));
      (admin as Redis | undefined)?.disconnect();
    } finally {
      await (redis as RedisServer | undefined)?.stop();
    }
  });

  it('two meshes configured with INMESH_REDIS_URL share one bucket per upstream', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    server.keepAliveTimeout = 10;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const env = {
      INMESH_REDIS_URL: redis.url,
      INMESH_ENDPOINTS_STOCK: `127.0.0.1:${(server.address() as AddressInfo).port}`,
      INMESH_TRACING: 'false',
    };
    // 4 tokens, one more every 10 s: the 12 calls below take far less.
    const policy = { upstreams: { stock: { rateLimit: { requestsPerSecond: 0.1, burst: 4 } } } };
    const meshes = [createMesh({ env, policy }), createMesh({ env, policy })];
    try {
      const outcome = { ok: 0, limited: 0 };
      for (let i = 0; i < 12; i++) {
        try {
          await (await meshes[i % 2]!.request('http://stock/')).body.dump();
          outcome.ok++;
        } catch (e) {
          expect(e).toBeInstanceOf(RateLimitedError);
          outcome.limited++;
        }
      }
      // One bucket of 4 for both processes, not 4 each.
      expect(outcome).toEqual({ ok: 4, limited: 8 });
    } finally {
      await Promise.all(meshes.map((m) => m.close()));
      server.closeAllConnections();
      server.close();
    }
  });

  it('two limiters (as two processes) sharing one id split one reservoir', async () => {
    // 5 tokens, refilled at 0.5/s (one every 2 s): the 16 calls below take far less.
    const up = upstream('orders', { requestsPerSecond: 0.5, burst: 5, shared: true });
    const a = createRateLimitLayer(up, { redis: { url: redis.url } })!;
    const b = createRateLimitLayer(up, { redis: { url: redis.url } })!;
    layers.push(a, b);
    expect(a.shared).toBe(true);
    await Promise.all([a.ready(), b.ready()]);
    const ha = a(inner);
    const hb = b(inner);

    const got = { a: 0, b: 0 };
    const t0 = Date.now();
    for (let i = 0; i < 8; i++) {
      if (await tryCall(ha, up)) got.a++;
      if (await tryCall(hb, up)) got.b++;
    }
    const refills = Math.floor((Date.now() - t0) / 2000);
    expect(got.a + got.b).toBe(5 + refills);
    expect(got.a).toBeGreaterThan(0);
    expect(got.b).toBeGreaterThan(0);
    // The reservoir lives in Redis under the limiter id inmesh:orders.
    expect(await admin.keys('b_inmesh:orders_settings')).toEqual(['b_inmesh:orders_settings']);
  });

  it('refills the shared bucket over time, never above burst', async () => {
    // 2 tokens, 10/s: one every 100 ms.
    const up = upstream('catalog', { requestsPerSecond: 10, burst: 2, shared: true });
    const a = createRateLimitLayer(up, { redis: { url: redis.url } })!;
    const b = createRateLimitLayer(up, { redis: { url: redis.url } })!;
    layers.push(a, b);
    // Every script Bottleneck runs in Redis (each limiter's heartbeat, every
    // 100 ms here, and each call) refills the bucket from Redis' clock and
    // publishes the resulting capacity on the limiter's channel: listening
    // there sees the bucket's level at every refill, with no clock of ours.
    const listener = new Redis(redis.url);
    try {
      const capacities: { at: number; capacity: number }[] = [];
      listener.on('message', (_channel: string, message: string) => {
        const [type, value] = message.split(':');
        if ((type === 'capacity' || type === 'capacity-priority') && value !== undefined && value !== '') {
          capacities.push({ at: Date.now(), capacity: Number(value) });
        }
      });
      await listener.subscribe('b_inmesh:catalog');
      await Promise.all([a.ready(), b.ready()]);
      const ha = a(inner);
      const hb = b(inner);

      let drained = 0;
      for (let i = 0; i < 50; i++) {
        if (!(await tryCall(i % 2 === 0 ? ha : hb, up))) break;
        drained++;
      }
      expect(drained).toBeGreaterThanOrEqual(2);
      const emptied = Date.now();
      // Ten refill intervals after the bucket ran dry: without the cap it would
      // hold about ten tokens by then. Waits for the refills, not a timer.
      await expect
        .poll(() => capacities.some((c) => c.at >= emptied + 1_000), { timeout: 10_000, interval: 50 })
        .toBe(true);
      const seen = capacities.filter((c) => c.at >= emptied).map((c) => c.capacity);
      // Refilled up to the burst, and never one token above it.
      expect(Math.max(...seen)).toBe(2);

      // The calls see the same: the burst, plus at most the refills that land
      // while they run (one per 100 ms from the last one).
      const t0 = Date.now();
      let refilled = 0;
      for (let i = 0; i < 12; i++) {
        if (!(await tryCall(i % 2 === 0 ? ha : hb, up))) break;
        refilled++;
      }
      expect(refilled).toBeGreaterThanOrEqual(2);
      expect(refilled).toBeLessThanOrEqual(2 + Math.floor((Date.now() - t0) / 100) + 1);
    } finally {
      listener.disconnect();
    }
  });

  it('shares through deps.redis even when rateLimit.shared is false, and a different id has its own bucket', async () => {
    const up1 = upstream('payments', { requestsPerSecond: 1, burst: 3, shared: false });
    const up2 = upstream('billing', { requestsPerSecond: 1, burst: 3, shared: false });
    const p1 = createRateLimitLayer(up1, { redis: { url: redis.url } })!;
    const p2 = createRateLimitLayer(up1, { redis: { url: redis.url } })!;
    const q = createRateLimitLayer(up2, { redis: { url: redis.url } })!;
    layers.push(p1, p2, q);
    await Promise.all([p1.ready(), p2.ready(), q.ready()]);
    let admitted = 0;
    for (let i = 0; i < 6; i++) if (await tryCall((i % 2 === 0 ? p1 : p2)(inner), up1)) admitted++;
    expect(admitted).toBe(3);
    let other = 0;
    for (let i = 0; i < 4; i++) if (await tryCall(q(inner), up2)) other++;
    expect(other).toBe(3);
  });

  it('close() disconnects from Redis and later calls fail with ClosedError', async () => {
    const before = await clientCount(admin);
    const up = upstream('inventory', { requestsPerSecond: 10, burst: 10, shared: true });
    const layer = createRateLimitLayer(up, { redis: { url: redis.url } })!;
    await layer.ready();
    expect(await clientCount(admin)).toBe(before + 2); // a command client and a subscriber
    await layer.close();
    await layer.close();
    expect(await clientCount(admin)).toBe(before);
    await expect(layer(inner)(request(up))).rejects.toBeInstanceOf(ClosedError);
  });

  it('fails open (calls go through, one warning) when Redis is unreachable', async () => {
    // A port that was just free: nothing listens there.
    const dead = await startRedis();
    const url = dead.url;
    await dead.stop();
    const warnings: string[] = [];
    const up = upstream('search', { requestsPerSecond: 1, burst: 1, shared: true });
    const layer = createRateLimitLayer(up, { redis: { url }, logger: { warn: (m) => warnings.push(m) } })!;
    layers.push(layer);
    const h = layer(inner);
    const results = await Promise.all([h(request(up)), h(request(up)), h(request(up))]);
    expect(results.every((r) => r.statusCode === 200)).toBe(true);
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings.some((w) => w.includes('let through'))).toBe(true);
    await layer.close();
  });
});
