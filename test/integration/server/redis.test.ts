// inbound.rateLimit shared through a real redis-server: two meshes (two "instances"
// of one service) with the same Redis draw from one bucket.
import { createServer } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createMesh } from '../../../src/mesh/mesh.ts';
import { startRedis, type RedisServer } from '../../harness/redis.ts';
import { client, close, listen } from './helpers.ts';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  try {
    for (const c of cleanup.splice(0).reverse()) await c();
  } finally {
    await (redis as RedisServer | undefined)?.stop();
  }
});

it('two instances of a service with a Redis configured share one inbound bucket', async () => {
  const bases: string[] = [];
  let calls = 0;
  for (let i = 0; i < 2; i++) {
    const mesh = createMesh({
      policy: { apiVersion: 'inmesh/v1', inbound: { rateLimit: { requestsPerSecond: 0.1, burst: 3 } } },
      service: { name: 'inbound-shared-test' },
      redisUrl: redis.url,
      env: {},
      telemetry: { enabled: false },
    });
    const server = createServer(
      mesh.server((_req, res) => {
        calls++;
        res.end('ok');
      }),
    );
    bases.push(await listen(server));
    cleanup.push(() => mesh.close(), () => close(server));
  }
  const c = client();
  cleanup.push(() => c.close());
  const statuses: number[] = [];
  // Alternate between the instances: 3 tokens in all, not 3 each.
  for (let i = 0; i < 6; i++) statuses.push((await c.get(`${bases[i % 2]}/`)).status);
  expect(statuses.filter((s) => s === 200)).toHaveLength(3);
  expect(statuses.filter((s) => s === 429)).toHaveLength(3);
  expect(calls).toBe(3);
});
