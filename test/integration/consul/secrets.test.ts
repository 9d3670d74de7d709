/**
 * The ACL token never shows up in `util.inspect` (any depth, hidden properties
 * included) or JSON.stringify of a Consul registry, a registration or a mesh,
 * also while a blocking query (whose request headers carry the token) is in
 * flight. The shared agent runs without ACLs, so it ignores the token; what is
 * checked here is only what the objects print.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { createMesh } from '../../../src/index.ts';
import { Secret } from '../../../src/internal/secret.ts';
import { ConsulRegistry } from '../../../src/registry/consul.ts';
import { registerService } from '../../../src/registry/consul-register.ts';
import { sharedConsul, sharedConsulAddr } from '../../harness/consul.ts';
import { countingProxy } from '../../harness/http-helpers.ts';
import { loadConfig } from '../../../src/config/load.ts';
import { captureLogger } from '../../harness/registry-helpers.ts';

function expectNoToken(value: unknown, token: string): void {
  expect(inspect(value, { depth: Infinity, showHidden: true })).not.toContain(token);
  expect(inspect(value, { depth: Infinity })).not.toContain(token);
  expect(JSON.stringify(value)).not.toContain(token);
}

describe('the ACL token is never printed', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('ConsulRegistry, with a blocking query in flight', async () => {
    const { host, port } = sharedConsul();
    const token = randomUUID();
    const registry = new ConsulRegistry({ connection: { host, port, token: new Secret(token) }, logger: captureLogger(), minIntervalMs: 5 });
    cleanups.push(() => registry.close());
    const sub = registry.subscribe({ service: `secret-${randomBytes(3).toString('hex')}` }, () => undefined);
    cleanups.push(() => sub.close());
    await sub.ready();
    // The second request is the blocking one, held by the agent.
    await expect.poll(() => registry.stats().requests, { timeout: 5000 }).toBeGreaterThanOrEqual(2);
    expectNoToken(registry, token);
    expectNoToken(sub, token);
    expect(JSON.stringify(registry)).toContain('[redacted]');
  });

  it('ConsulRegistration', async () => {
    const { host, port } = sharedConsul();
    const token = randomUUID();
    const reg = await registerService({
      name: `secret-${randomBytes(3).toString('hex')}`,
      port: 18500,
      address: '127.0.0.1',
      check: { ttlMs: 30_000 },
      connection: { host, port, token: new Secret(token) },
      verifyIntervalMs: 0,
    });
    cleanups.push(async () => {
      await reg.deregister();
      reg.close();
    });
    expectNoToken(reg, token);
  });

  it('a mesh and what mesh.register() returns, with a watch running', async () => {
    const token = randomUUID();
    const name = `secret-${randomBytes(3).toString('hex')}`;
    const mesh = createMesh({ env: { INMESH_TRACING: 'false' }, consul: { address: sharedConsulAddr(), token } });
    cleanups.push(() => mesh.close());
    const reg = await mesh.register({ name, port: 18501, address: '127.0.0.1', verifyIntervalMs: 0 });
    const res = await mesh.request(`http://${name}.service.consul/`, { retries: 0 }).catch((e: unknown) => e);
    expect(res).toBeInstanceOf(Error); // nothing listens on 18501
    expectNoToken(mesh, token);
    expectNoToken(reg, token);
    expectNoToken(mesh.config, token);
  });

  it('CONSUL_HTTP_AUTH: sent as basic auth on every request, never printed, scrubbed from error text', async () => {
    const proxy = await countingProxy(sharedConsul());
    cleanups.push(() => proxy.close());
    const password = `pw-${randomUUID()}`;
    const config = loadConfig({ env: { CONSUL_HTTP_ADDR: `127.0.0.1:${proxy.port}`, CONSUL_HTTP_AUTH: `operator:${password}` } });
    expect(config.consul.auth?.reveal()).toBe(`operator:${password}`);
    expect(config.sources['consul.auth']).toBe('env:CONSUL_HTTP_AUTH');
    expectNoToken(config, password);
    const registry = new ConsulRegistry({ connection: config.consul, logger: captureLogger() });
    cleanups.push(() => registry.close());
    expect(await registry.resolve({ service: `auth-${randomBytes(3).toString('hex')}` })).toEqual([]);
    expect(proxy.requests.length).toBeGreaterThan(0);
    const expected = `Basic ${Buffer.from(`operator:${password}`).toString('base64')}`;
    for (const r of proxy.requests) expect(r.headers.authorization).toBe(expected);
    expectNoToken(registry, password);
    // A code setting is a Secret too.
    const fromCode = loadConfig({ env: {}, code: { consul: { auth: `u:${password}` } } });
    expectNoToken(fromCode, password);
    expect(fromCode.sources['consul.auth']).toBe('code');
  });
});
