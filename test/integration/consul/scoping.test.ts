/**
 * What inmesh SENDS when a namespace and a partition are configured: `ns` and
 * `partition` on every watch query and every registration call (register, TTL
 * pass, maintenance, deregister), never on the agent-self preflight. No
 * Enterprise agent is available to the suite, so a scripted loopback responder
 * stands in for one (it answers /v1/agent/self with an Enterprise version and
 * records the rest); what an OSS agent does with these settings is tested
 * against the real agent in preflight.test.ts.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConsulRegistry } from '../../../src/registry/consul.ts';
import { registerService } from '../../../src/registry/consul-register.ts';
import { captureLogger } from '../../harness/registry-helpers.ts';

async function enterpriseResponder(version: string) {
  const requests: { method: string; path: string; query: URLSearchParams }[] = [];
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    requests.push({ method: req.method ?? '', path: u.pathname, query: u.searchParams });
    req.resume();
    if (u.pathname === '/v1/agent/self') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ Config: { Version: version } }));
    } else if (u.pathname.startsWith('/v1/health/service/')) {
      res.setHeader('content-type', 'application/json');
      res.setHeader('x-consul-index', '3');
      // Hold blocking queries briefly, like an agent with nothing new.
      setTimeout(() => res.end('[]'), u.searchParams.has('index') ? 200 : 0);
    } else {
      res.end();
    }
  });
  server.keepAliveTimeout = 10;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

describe('namespace and partition on the wire', () => {
  const cleanups: (() => Promise<unknown> | undefined)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('every watch query and registration call carries ns and partition; the preflight does not', async () => {
    const agent = await enterpriseResponder('1.11.1+ent');
    cleanups.push(() => agent.close());
    const connection = { host: '127.0.0.1', port: agent.port, namespace: 'team-a', partition: 'part-1' };
    const registry = new ConsulRegistry({ connection, logger: captureLogger() });
    cleanups.push(() => registry.close());
    await registry.resolve({ service: 'orders' });
    const reg = await registerService({ name: 'orders', port: 18700, address: '127.0.0.1', check: { ttlMs: 30_000 }, connection, verifyIntervalMs: 0 });
    await reg.leave();
    reg.close();
    const self = agent.requests.filter((r) => r.path === '/v1/agent/self');
    expect(self.length).toBe(2); // one per connection (registry, registration)
    for (const r of self) expect([r.query.get('ns'), r.query.get('partition')]).toEqual([null, null]);
    const scoped = agent.requests.filter((r) => r.path !== '/v1/agent/self');
    const paths = scoped.map((r) => `${r.method} ${r.path}`);
    expect(paths).toEqual(
      expect.arrayContaining([
        'GET /v1/health/service/orders',
        'PUT /v1/agent/service/register',
        `PUT /v1/agent/check/pass/service%3A${reg.id}`,
        `PUT /v1/agent/check/fail/service%3A${reg.id}`,
        `PUT /v1/agent/service/maintenance/${reg.id}`,
        `PUT /v1/agent/service/deregister/${reg.id}`,
      ]),
    );
    for (const r of scoped) expect([r.method, r.path, r.query.get('ns'), r.query.get('partition')]).toEqual([r.method, r.path, 'team-a', 'part-1']);
  });

  it('an Enterprise agent older than 1.11 takes a namespace but refuses a partition', async () => {
    const agent = await enterpriseResponder('1.10.3+ent');
    cleanups.push(() => agent.close());
    const ok = new ConsulRegistry({ connection: { host: '127.0.0.1', port: agent.port, namespace: 'team-a' }, logger: captureLogger() });
    cleanups.push(() => ok.close());
    await expect(ok.preflight()).resolves.toBeUndefined();
    const refused = new ConsulRegistry({ connection: { host: '127.0.0.1', port: agent.port, partition: 'p' }, logger: captureLogger() });
    cleanups.push(() => refused.close());
    await expect(refused.preflight()).rejects.toThrow(/CONSUL_PARTITION .*needs Consul Enterprise 1\.11 or later, but the agent at 127\.0\.0\.1:\d+ is Consul 1\.10\.3\+ent/);
  });
});
