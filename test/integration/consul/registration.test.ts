/**
 * Registration against the real agent: the default TTL check (the crash safety
 * net; its DeregisterCriticalServiceAfter in deregister-critical.test.ts), tags,
 * meta and HTTP checks refused before anything is sent, the port taken from a listening server, leave() deregistering even when
 * maintenance mode is refused, and mesh.close({ drainMs }) draining before it
 * deregisters.
 */
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../../src/errors.ts';
import { createMesh } from '../../../src/index.ts';
import { ConsulRegistry } from '../../../src/registry/consul.ts';
import { registerService, type ConsulRegistration, type HttpCheckOptions } from '../../../src/registry/consul-register.ts';
import { consulApi, sharedConsul, sharedConsulAddr } from '../../harness/consul.ts';
import { countingProxy } from '../../harness/http-helpers.ts';
import { captureLogger } from '../../harness/registry-helpers.ts';

interface AgentCheck {
  CheckID: string;
  Status: string;
  ServiceID: string;
  Type?: string;
}

const unique = (p: string): string => `${p}-${randomBytes(3).toString('hex')}`;

describe('registration (real agent)', () => {
  const cleanups: (() => Promise<unknown> | undefined)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const track = (r: ConsulRegistration): ConsulRegistration => {
    cleanups.push(async () => {
      await r.deregister().catch(() => undefined);
      r.close();
    });
    return r;
  };

  it('without a check: a TTL check kept alive by the SDK, passing', async () => {
    const { host, port, url } = sharedConsul();
    const reg = track(await registerService({ name: unique('ttl-default'), port: 18800, address: '127.0.0.1', connection: { host, port }, verifyIntervalMs: 0 }));
    expect(reg.checkId).toBe(`service:${reg.id}`);
    const checks = await consulApi<Record<string, AgentCheck>>(url, 'GET', '/v1/agent/checks');
    expect(checks.data[`service:${reg.id}`]).toMatchObject({ ServiceID: reg.id, Status: 'passing', Type: 'ttl' });
    // DeregisterCriticalServiceAfter is not readable through 1.8.7's API: deregister-critical.test.ts
    // shows the agent acting on it.
  });

  it('refuses tags and meta that discovery would drop, naming the field and the shortened value; what it accepts, discovery finds', async () => {
    const { host, port, url } = sharedConsul();
    const name = unique('labels');
    const base = { name, port: 18805, address: '127.0.0.1', connection: { host, port }, verifyIntervalMs: 0, check: false as const };
    const refused: [Record<string, unknown>, RegExp][] = [
      [{ tags: ['ok', 'a\r\nb'] }, /^invalid service tags: tags\[1\] must not contain control characters .*: "a\\r\\nb"$/],
      [{ tags: ['x'.repeat(10_240)] }, /^invalid service tags: tags\[0\] must be at most 512 characters, got 10240: "x{100,}\.\.\.$/],
      [{ meta: { note: 'bell\u0007' } }, /^invalid service meta: meta\["note"\] must not contain control characters .*: "bell\\u0007"$/],
      [{ meta: JSON.parse('{"__proto__":"x"}') as Record<string, string> }, /^invalid service meta: meta\["__proto__"\]: the key "__proto__" is refused$/],
      [{ tags: ['t\n'], meta: { v: 'y'.repeat(600) } }, /^invalid service tags and meta: tags\[0\] .*; meta\["v"\] must be at most 512 characters, got 600: "y+\.\.\.$/],
    ];
    for (const [extra, message] of refused) {
      const attempt = registerService({ ...base, ...extra });
      await expect(attempt).rejects.toThrow(InvalidArgumentError);
      await expect(attempt).rejects.toThrow(message);
    }
    // Nothing reached the agent.
    const services = await consulApi<Record<string, { Service: string }>>(url, 'GET', '/v1/agent/services');
    expect(Object.values(services.data).filter((s) => s.Service === name)).toEqual([]);

    // The limits themselves are accepted, and discovery finds the instance with every tag and meta pair.
    const tags = Array.from({ length: 64 }, (_, i) => `${String(i).padStart(2, '0')}${'t'.repeat(510)}`);
    const meta = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, `${'v'.repeat(511)}${i % 10}`]));
    const reg = track(await registerService({ ...base, tags, meta }));
    const registry = new ConsulRegistry({ connection: { host, port }, logger: captureLogger() });
    cleanups.push(() => registry.close());
    const found = await registry.resolve({ service: name, passingOnly: false });
    expect(found.map((e) => e.id)).toEqual([expect.stringMatching(new RegExp(`/${reg.id}$`))]);
    expect([...(found[0]?.tags ?? [])].sort()).toEqual(tags);
    expect(found[0]?.meta).toEqual(meta);
  });

  it('HTTP checks only to the instance itself or loopback, GET or HEAD, no credentials (the agent follows redirects)', async () => {
    const { host, port, url } = sharedConsul();
    const name = unique('httpcheck');
    const health = createServer((req, res) => res.writeHead(req.url === '/healthz' ? 200 : 404).end());
    health.listen(0, '127.0.0.1');
    await once(health, 'listening');
    cleanups.push(() => new Promise((r) => health.close(r)));
    const healthPort = (health.address() as { port: number }).port;
    // An hour between checks: nothing registered here is probed during the test, whatever it points at.
    const base = { name, port: 18806, address: '127.0.0.1', connection: { host, port }, verifyIntervalMs: 0 };
    const refused: [Record<string, unknown>, string][] = [
      [{ http: 'http://192.0.2.10:8080/healthz' }, `check.http must point at the instance's own address (127.0.0.1) or loopback, got "http://192.0.2.10:8080/healthz"`],
      [{ http: 'http://metadata.google.internal/' }, 'got "http://metadata.google.internal/"'],
      [{ http: 'http://admin:s3cret@127.0.0.1:1/healthz' }, 'check.http must not carry credentials (user:password@), got "http://127.0.0.1:1/healthz"'],
      [{ http: 'ftp://127.0.0.1/' }, 'check.http must be an http(s) URL, got "ftp://127.0.0.1/"'],
      [{ http: '127.0.0.1/healthz' }, 'check.http must be a full http(s) URL, got "127.0.0.1/healthz"'],
      [{ http: 'http://127.0.0.1:1/', method: 'POST' }, 'check.method must be GET or HEAD, got "POST"'],
    ];
    for (const [check, message] of refused) {
      const attempt = registerService({ ...base, check: { intervalMs: 3_600_000, ...check } as unknown as HttpCheckOptions });
      await expect(attempt).rejects.toThrow(InvalidArgumentError);
      await expect(attempt).rejects.toThrow(message);
      await attempt.catch((err: unknown) => expect(String(err)).not.toContain('s3cret'));
    }
    const services = await consulApi<Record<string, { Service: string }>>(url, 'GET', '/v1/agent/services');
    expect(Object.values(services.data).filter((s) => s.Service === name)).toEqual([]);

    // The instance's own address (and loopback): registered, and the agent runs it (passing).
    for (const [target, method] of [[`http://127.0.0.1:${healthPort}/healthz`, 'GET'], [`http://localhost:${healthPort}/healthz`, 'HEAD']] as const) {
      const reg = track(await registerService({ ...base, check: { http: target, method, intervalMs: 200, timeoutMs: 1_000 } }));
      await expect
        .poll(async () => (await consulApi<Record<string, AgentCheck>>(url, 'GET', '/v1/agent/checks')).data[`service:${reg.id}`], { timeout: 10_000 })
        .toMatchObject({ ServiceID: reg.id, Status: 'passing', Type: 'http' });
    }
  });

  it('check: false registers without a check', async () => {
    const { host, port, url } = sharedConsul();
    const reg = track(await registerService({ name: unique('nocheck'), port: 18802, address: '127.0.0.1', check: false, connection: { host, port }, verifyIntervalMs: 0 }));
    expect(reg.checkId).toBeUndefined();
    const checks = await consulApi<Record<string, AgentCheck>>(url, 'GET', '/v1/agent/checks');
    expect(Object.values(checks.data).filter((c) => c.ServiceID === reg.id)).toEqual([]);
  });

  it('takes the port from a listening server; refuses a server that is not listening', async () => {
    const { host, port, url } = sharedConsul();
    const server = createServer((_q, r) => r.end());
    await expect(registerService({ name: 'x', server, connection: { host, port } })).rejects.toThrow(/options\.server is not listening yet/);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => new Promise((r) => server.close(r)));
    const reg = track(await registerService({ name: unique('server-port'), server, address: '127.0.0.1', connection: { host, port }, verifyIntervalMs: 0 }));
    const own = (server.address() as { port: number }).port;
    expect(reg.port).toBe(own);
    const svc = await consulApi<{ Port: number }>(url, 'GET', `/v1/agent/service/${reg.id}`);
    expect(svc.data.Port).toBe(own);
  });

  it('leave(): a refused maintenance call still deregisters', async () => {
    const { host, port, url } = sharedConsul();
    const proxy = await countingProxy({ host, port }, (r) => (r.path.startsWith('/v1/agent/service/maintenance/') ? 500 : undefined));
    cleanups.push(() => proxy.close());
    const logger = captureLogger();
    const reg = track(await registerService({ name: unique('leave'), port: 18803, address: '127.0.0.1', connection: { host: proxy.host, port: proxy.port }, verifyIntervalMs: 0, logger }));
    await reg.leave({ drainMs: 10 });
    expect(proxy.count('/v1/agent/service/maintenance/')).toBe(1);
    expect(proxy.count('/v1/agent/service/deregister/')).toBe(1);
    await expect(consulApi(url, 'GET', `/v1/agent/service/${reg.id}`)).rejects.toThrow(/404/);
    expect(reg.state).toBe('deregistered');
    expect(logger.warnings().join('\n')).toMatch(/draining .* failed; deregistering anyway: .*answered 500/);
  });

  it('mesh.close({ drainMs }): out of rotation at once, still registered while draining, then deregistered', async () => {
    const { url } = sharedConsul();
    const name = unique('drain');
    const mesh = createMesh({ env: { CONSUL_HTTP_ADDR: sharedConsulAddr(), INMESH_TRACING: 'false' } });
    const reg = await mesh.register({ name, port: 18804, address: '127.0.0.1', verifyIntervalMs: 0 });
    const passing = async (): Promise<number> => (await consulApi<unknown[]>(url, 'GET', `/v1/health/service/${name}?passing=1`)).data.length;
    expect(await passing()).toBe(1);
    const started = performance.now();
    const closing = mesh.close({ drainMs: 400 });
    await expect.poll(passing, { timeout: 2000, interval: 20 }).toBe(0);
    // Draining: gone from ?passing, but still known to the agent.
    expect((await consulApi<{ ID: string }>(url, 'GET', `/v1/agent/service/${reg.id}`)).data.ID).toBe(reg.id);
    await closing;
    expect(performance.now() - started).toBeGreaterThanOrEqual(390);
    await expect(consulApi(url, 'GET', `/v1/agent/service/${reg.id}`)).rejects.toThrow(/404/);
    expect(reg.state).toBe('deregistered');
    await expect(mesh.close({ drainMs: -1 })).resolves.toBeUndefined(); // already closed: a no-op
  });
});
