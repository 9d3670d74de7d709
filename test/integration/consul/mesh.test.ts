/**
 * The mesh end to end against the real Consul agent: a server registers itself
 * through mesh.register(), a client reaches it as `<name>.service.consul`, and
 * closing the serving mesh takes the instance out of Consul.
 */
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ClosedError, createMesh, NoEndpointsError, type Mesh } from '../../../src/index.ts';
import { consulApi, sharedConsul, sharedConsulAddr } from '../../harness/consul.ts';

describe('mesh with the real Consul agent', () => {
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  });

  it('registers, is discovered through <name>.service.consul, and leaves Consul on close', async () => {
    const name = `shop-${randomBytes(3).toString('hex')}`;
    const server = createServer((_req, res) => res.end('from consul'));
    server.keepAliveTimeout = 10;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(() => new Promise((r) => (server.closeAllConnections(), server.close(r))));
    const port = (server.address() as AddressInfo).port;
    const env = { CONSUL_HTTP_ADDR: sharedConsulAddr(), INMESH_TRACING: 'false' };

    const serving = createMesh({ env: { ...env, INMESH_SERVICE_NAME: name, INMESH_SERVICE_PORT: String(port), INMESH_SERVICE_ADDRESS: '127.0.0.1' } });
    closers.push(() => serving.close());
    const registration = await serving.register();
    expect(registration.id).toContain(name);

    const client: Mesh = createMesh({ env, consulWatch: { minIntervalMs: 10 } });
    closers.push(() => client.close());
    const res = await client.request(`http://${name}.service.consul/hello`);
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('from consul');
    expect(res.endpoint).toBe(`127.0.0.1:${port}`);

    await serving.close();
    const base = sharedConsul().url;
    const after = await consulApi<unknown[]>(base, 'GET', `/v1/health/service/${name}`);
    expect(after.data).toEqual([]);
    // The client's watch sees the instance go: no endpoint is left.
    const deadline = Date.now() + 5_000;
    let error: unknown;
    while (Date.now() < deadline) {
      error = await client.request(`http://${name}.service.consul/hello`, { retries: 0 }).then(
        (r) => r.body.dump().then(() => undefined),
        (e: unknown) => e,
      );
      if (error !== undefined) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(error).toBeInstanceOf(NoEndpointsError);
  });

  it('close() while register() is in flight: the instance leaves again, its timers stop, register() rejects with ClosedError', async () => {
    const name = `late-${randomBytes(3).toString('hex')}`;
    const mesh = createMesh({ env: { CONSUL_HTTP_ADDR: sharedConsulAddr() }, telemetry: { enabled: false } });
    closers.push(() => mesh.close());
    const base = sharedConsul().url;
    const registering = mesh.register({ name, port: 18403, address: '127.0.0.1', verifyIntervalMs: 50 });
    const outcome = registering.then(
      () => 'registered',
      (e: unknown) => e,
    );
    await mesh.close();
    // When close() resolves the register() has settled and nothing is left in Consul.
    const settled = await Promise.race([outcome, Promise.resolve('still in flight')]);
    expect(settled).toBeInstanceOf(ClosedError);
    const services = async () => Object.values((await consulApi<Record<string, { Service: string }>>(base, 'GET', '/v1/agent/services')).data).filter((s) => s.Service === name);
    expect(await services()).toEqual([]);
    // No timer is left to register it again (the verify interval is 50 ms): still gone a few intervals later.
    await new Promise((r) => setTimeout(r, 300));
    expect(await services()).toEqual([]);
  });

  it('mesh.register() without a name and port says how to give them', async () => {
    const mesh = createMesh({ env: { CONSUL_HTTP_ADDR: sharedConsulAddr() }, telemetry: { enabled: false } });
    closers.push(() => mesh.close());
    await expect(mesh.register()).rejects.toThrow(/INMESH_SERVICE_NAME and INMESH_SERVICE_PORT/);
  });
});
