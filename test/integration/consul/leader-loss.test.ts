/**
 * A Consul cluster loses its leader: three servers and a client agent on
 * loopback (test/harness/consul-cluster.ts), three real upstream servers
 * registered at the client agent, and two meshes calling them through the
 * client agent under a bounded load: one with the default consistency (reads
 * go to the leader: the last good set is served while there is none) and one
 * with `stale` reads (any server answers). The leader is killed by PID; no call
 * may fail for lack of endpoints, and a change made once the new leader is
 * elected must reach both meshes within 2 s. The election time and what the
 * meshes saw are printed for docs/benchmarks.md.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createMesh, NoEndpointsError, type Mesh } from '../../../src/index.ts';
import { startConsulCluster } from '../../harness/consul-cluster.ts';
import { consulApi } from '../../harness/consul.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('a Consul cluster loses its leader (3 servers + client agent)', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('no call fails for lack of endpoints during the election; a change after it arrives within 2 s', { timeout: 120_000 }, async () => {
    const cluster = await startConsulCluster();
    cleanups.push(() => cluster.close());

    // Three real upstream servers on loopback, registered at the client agent.
    const servers: Server[] = [];
    for (let i = 0; i < 3; i++) {
      const server = createServer((_req, res) => res.end(`upstream ${i}`));
      server.keepAliveTimeout = 1_000;
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      servers.push(server);
      cleanups.push(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
      const port = (server.address() as AddressInfo).port;
      await consulApi(cluster.clientUrl, 'PUT', '/v1/agent/service/register', { ID: `shop-${i}`, Name: 'shop', Address: '127.0.0.1', Port: port });
    }
    await expect.poll(async () => (await consulApi<unknown[]>(cluster.clientUrl, 'GET', '/v1/health/service/shop?passing=1')).data.length, { timeout: 15_000 }).toBe(3);

    const env = { CONSUL_HTTP_ADDR: cluster.clientAddr, INMESH_TRACING: 'false' };
    const meshes: { name: string; mesh: Mesh }[] = [
      { name: 'default', mesh: createMesh({ env, telemetry: { enabled: false } }) },
      { name: 'stale', mesh: createMesh({ env, telemetry: { enabled: false }, consulWatch: { stale: true } }) },
    ];
    for (const m of meshes) cleanups.push(() => m.mesh.close());
    const url = 'http://shop.service.consul/';
    for (const { mesh } of meshes) {
      const res = await mesh.request(url);
      await res.body.dump();
      await expect.poll(() => mesh.discoveryStatus('shop.service.consul')?.endpoints, { timeout: 5_000 }).toBe(3);
    }

    // Bounded load: 4 callers per mesh, until told to stop, at most 20 000 calls each mesh.
    const seen = meshes.map(() => ({ ok: 0, noEndpoints: 0, other: 0, otherErrors: new Set<string>() }));
    let running = true;
    const load = meshes.flatMap(({ mesh }, m) =>
      Array.from({ length: 4 }, async () => {
        const s = seen[m]!;
        while (running && s.ok + s.noEndpoints + s.other < 20_000) {
          try {
            const res = await mesh.request(url, { timeout: 5_000 });
            await res.body.dump();
            s.ok++;
          } catch (err) {
            if (err instanceof NoEndpointsError) s.noEndpoints++;
            else {
              s.other++;
              s.otherErrors.add((err as Error).message.slice(0, 120));
            }
          }
          await sleep(5);
        }
      }),
    );
    const stopLoad = async (): Promise<void> => {
      running = false;
      await Promise.all(load);
    };
    cleanups.push(stopLoad);

    await sleep(500);
    const before = seen.map((s) => s.ok);
    const leader = await cluster.leader();
    expect(leader).toBeDefined();
    const killedAt = performance.now();
    await cluster.kill(leader!);
    // The election, as the client agent sees it: a leader again, another one.
    let next: number | undefined;
    while (performance.now() - killedAt < 30_000) {
      next = await cluster.leader();
      if (next !== undefined && next !== leader) break;
      await sleep(25);
    }
    const electionMs = performance.now() - killedAt;
    expect(next).toBeDefined();
    expect(next).not.toBe(leader);
    const during = seen.map((s, i) => s.ok - before[i]!);

    // A change made after the new leader is elected: one instance leaves.
    await consulApi(cluster.clientUrl, 'PUT', '/v1/agent/service/deregister/shop-2');
    const changedAt = performance.now();
    const arrival = await Promise.all(
      meshes.map(async ({ mesh }) => {
        await expect.poll(() => mesh.discoveryStatus('shop.service.consul')?.endpoints, { timeout: 5_000, interval: 10 }).toBe(2);
        return performance.now() - changedAt;
      }),
    );
    await stopLoad();
    for (const [i, { name }] of meshes.entries()) {
      const s = seen[i]!;
      console.log(
        `consul leader loss (${name} reads): election ${electionMs.toFixed(0)} ms; ${during[i]} calls succeeded during it; ` +
          `overall ${s.ok} ok, ${s.noEndpoints} no-endpoints, ${s.other} other failures${s.other > 0 ? ` (${[...s.otherErrors].join(' | ')})` : ''}; ` +
          `the change reached the mesh ${arrival[i]!.toFixed(0)} ms after it was made`,
      );
    }
    for (const [i, s] of seen.entries()) {
      expect(s.noEndpoints).toBe(0);
      expect(s.other).toBe(0);
      // Calls went on through the election.
      expect(during[i]).toBeGreaterThan(0);
      expect(arrival[i]).toBeLessThan(2_000);
    }
    // The watch answers again: no staleness left.
    for (const { mesh } of meshes) expect(mesh.discoveryStatus('shop.service.consul')?.stalenessMs).toBe(0);
  });
});
