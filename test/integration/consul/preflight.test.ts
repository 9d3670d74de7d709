/**
 * Settings the real (OSS 1.8.7) agent cannot honour fail at start with a clear,
 * typed error, not as a dead watch or a registration in the wrong place: a
 * namespace (CONSUL_NAMESPACE) and an admin partition (CONSUL_PARTITION), through
 * mesh.start(), the first request to a Consul upstream and mesh.register().
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMesh, NoEndpointsError, RegistryError, type Mesh } from '../../../src/index.ts';
import { registerService } from '../../../src/registry/consul-register.ts';
import { consulApi, sharedConsul, sharedConsulAddr } from '../../harness/consul.ts';
import { captureLogger } from '../../harness/registry-helpers.ts';

describe('preflight against the real agent', () => {
  let version: string;
  const closers: (() => Promise<unknown>)[] = [];
  beforeAll(async () => {
    const self = await consulApi<{ Config: { Version: string } }>(sharedConsul().url, 'GET', '/v1/agent/self');
    version = self.data.Config.Version;
    expect(version).not.toContain('+ent');
  });
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
  });

  function mesh(env: Record<string, string>): Mesh {
    const m = createMesh({ env: { CONSUL_HTTP_ADDR: sharedConsulAddr(), INMESH_TRACING: 'false', ...env }, logger: captureLogger() });
    closers.push(() => m.close());
    return m;
  }

  const cases = [
    ['CONSUL_NAMESPACE', (v: string) => new RegExp(`the Consul namespace "team-a" \\(CONSUL_NAMESPACE / consul\\.namespace\\) needs Consul Enterprise, but the agent at 127\\.0\\.0\\.1:\\d+ is Consul ${v.replace(/\./g, '\\.')} \\(OSS\\): unset CONSUL_NAMESPACE`)],
    ['CONSUL_PARTITION', (v: string) => new RegExp(`the Consul admin partition "team-a" \\(CONSUL_PARTITION / consul\\.partition\\) needs Consul Enterprise 1\\.11 or later, but the agent at 127\\.0\\.0\\.1:\\d+ is Consul ${v.replace(/\./g, '\\.')} \\(OSS\\)`)],
  ] as const;

  for (const [variable, message] of cases) {
    it(`${variable} on an OSS agent: start(), the first request and register() fail with a RegistryError naming it and the version`, async () => {
      const m = mesh({ [variable]: 'team-a' });
      const started = await m.start().catch((e: unknown) => e);
      expect(started).toBeInstanceOf(RegistryError);
      expect((started as RegistryError).statusCode).toBe(400);
      expect((started as Error).message).toMatch(message(version));

      const requested = await m.request(`http://anything-${randomBytes(2).toString('hex')}.service.consul/`).catch((e: unknown) => e);
      expect(requested).toBeInstanceOf(RegistryError);
      expect(requested).not.toBeInstanceOf(NoEndpointsError);
      expect((requested as Error).message).toMatch(message(version));

      const id = `preflight-${randomBytes(3).toString('hex')}`;
      const registered = await m.register({ name: 'preflight', id, port: 18600, address: '127.0.0.1', verifyIntervalMs: 0 }).catch((e: unknown) => e);
      expect(registered).toBeInstanceOf(RegistryError);
      expect((registered as Error).message).toMatch(message(version));
      // Nothing was written to the agent.
      await expect(consulApi(sharedConsul().url, 'GET', `/v1/agent/service/${id}`)).rejects.toThrow(/404/);
    });
  }

  it('registerService() alone runs the same check', async () => {
    const { host, port } = sharedConsul();
    const e = await registerService({ name: 'preflight', port: 18601, address: '127.0.0.1', connection: { host, port, namespace: 'team-a' }, verifyIntervalMs: 0 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RegistryError);
    expect((e as Error).message).toContain('CONSUL_NAMESPACE');
  });

  it('without a namespace or partition start() resolves and requests proceed', async () => {
    const m = mesh({});
    await expect(m.start()).resolves.toBeUndefined();
    const e = await m.request(`http://none-${randomBytes(2).toString('hex')}.service.consul/`).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(NoEndpointsError);
  });
});
