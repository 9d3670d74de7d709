/**
 * Consul discovery and registration against the real agent (shared, from the harness).
 */
import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ConsulRegistry } from '../../../src/registry/consul.ts';
import { ConsulRegistration, registerService } from '../../../src/registry/consul-register.ts';
import type { Subscription } from '../../../src/registry/types.ts';
import { consulApi, sharedConsul } from '../../harness/consul.ts';
import { captureLogger, EndpointRecorder, ids } from '../../harness/registry-helpers.ts';

const unique = (p: string): string => `${p}-${randomBytes(3).toString('hex')}`;

describe('consul discovery and registration (real agent)', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function registry(logger = captureLogger()): ConsulRegistry {
    const { host, port } = sharedConsul();
    const r = new ConsulRegistry({ connection: { host, port }, logger, minIntervalMs: 10 });
    cleanups.push(() => r.close());
    return r;
  }

  function track<T extends { deregister(): Promise<void>; close(): void }>(reg: T): T {
    cleanups.push(async () => {
      await reg.deregister().catch(() => undefined);
      reg.close();
    });
    return reg;
  }

  function watch(r: ConsulRegistry, service: string, tags?: string[]): { rec: EndpointRecorder; sub: Subscription } {
    const rec = new EndpointRecorder();
    const sub = r.subscribe({ service, ...(tags ? { tags } : {}) }, rec.listener);
    cleanups.push(() => sub.close());
    return { rec, sub };
  }

  async function healthServer(): Promise<{ url: string; setHealthy(ok: boolean): void; server: Server }> {
    let healthy = true;
    const server = createServer((_req, res) => {
      res.writeHead(healthy ? 200 : 503).end(healthy ? 'ok' : 'failing');
    });
    server.keepAliveTimeout = 10;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    return { url: `http://127.0.0.1:${port}/healthz`, setHealthy: (ok) => (healthy = ok), server };
  }

  afterAll(() => undefined);

  it('sees a registration, and loses it on deregistration', async () => {
    const { host, port } = sharedConsul();
    const name = unique('orders');
    const r = registry();
    const { rec } = watch(r, name);
    await rec.until((e) => e.length === 0, 5000, 'the empty initial set');
    const reg = track(
      await registerService({ name, port: 18080, address: '127.0.0.1', tags: ['v2'], version: '2.1.0', zone: 'z1', weight: 3, connection: { host, port }, verifyIntervalMs: 0 }),
    );
    const [e] = await rec.until((s) => s.length === 1, 5000, 'the registered instance');
    expect(e).toMatchObject({ id: `inmesh-test-${port}/${reg.id}`, address: '127.0.0.1', port: 18080, tags: ['v2'], weight: 3, zone: 'z1', datacenter: 'dc1' });
    expect(e!.meta).toEqual({ version: '2.1.0', zone: 'z1' });
    expect(reg.id).toMatch(new RegExp(`^${name}-.+-18080-[0-9a-f]{8}$`));
    await reg.deregister();
    await rec.until((s) => s.length === 0, 5000, 'the instance to leave');
  });

  it('sends only fields Consul 1.8.7 accepts (HTTP and TTL checks), as the agent stores them', async () => {
    const { host, port, url } = sharedConsul();
    const hs = await healthServer();
    const name = unique('fields');
    const a = track(
      await registerService({
        name,
        port: 18081,
        address: '127.0.0.1',
        tags: ['a', 'b'],
        meta: { team: 'x' },
        check: { http: hs.url, intervalMs: 1000, timeoutMs: 500, deregisterCriticalAfterMs: 60_000 },
        connection: { host, port },
        verifyIntervalMs: 0,
      }),
    );
    const b = track(
      await registerService({ name, port: 18082, address: '127.0.0.1', check: { ttlMs: 5000 }, connection: { host, port }, verifyIntervalMs: 0 }),
    );
    const svc = await consulApi<Record<string, unknown>>(url, 'GET', `/v1/agent/service/${a.id}`);
    expect(svc.data).toMatchObject({ ID: a.id, Service: name, Tags: ['a', 'b'], Meta: { team: 'x' }, Port: 18081, Weights: { Passing: 1, Warning: 1 } });
    const checks = await consulApi<Record<string, { ServiceID: string; Type?: string }>>(url, 'GET', '/v1/agent/checks');
    expect(checks.data[`service:${a.id}`]?.ServiceID).toBe(a.id);
    expect(checks.data[`service:${b.id}`]?.ServiceID).toBe(b.id);
    // An unknown field is refused by this agent: the reason the body is built field by field.
    await expect(consulApi(url, 'PUT', '/v1/agent/service/register', { Name: name, ID: `${name}-bad`, Port: 1, Bogus: true })).rejects.toThrow(/400/);
  });

  it('drops an instance whose HTTP check fails and takes it back when it passes again', async () => {
    const { host, port } = sharedConsul();
    const hs = await healthServer();
    const name = unique('checked');
    const r = registry();
    const { rec } = watch(r, name);
    const reg = track(
      await registerService({ name, port: 18083, address: '127.0.0.1', check: { http: hs.url, intervalMs: 200, timeoutMs: 200 }, connection: { host, port }, verifyIntervalMs: 0 }),
    );
    await rec.until((s) => ids(s).includes(reg.id), 5000, 'the instance to pass');
    hs.setHealthy(false);
    await rec.until((s) => s.length === 0, 5000, 'the failing instance to leave');
    hs.setHealthy(true);
    await rec.until((s) => s.length === 1, 5000, 'the instance to come back');
  });

  it('drops an instance whose TTL check expires', async () => {
    const { host, port } = sharedConsul();
    const name = unique('ttl');
    const r = registry();
    const { rec } = watch(r, name);
    const reg = track(await registerService({ name, port: 18084, address: '127.0.0.1', check: { ttlMs: 600 }, connection: { host, port }, verifyIntervalMs: 0 }));
    await rec.until((s) => ids(s).includes(reg.id), 5000, 'the TTL instance');
    // Kept alive past more than one TTL (the only wait in this file that is a plain pause: time must pass)…
    await new Promise((res) => setTimeout(res, 1000));
    expect(ids(rec.latest!)).toEqual([reg.id]);
    // …then the process "hangs": no more updates, the TTL expires.
    reg.close();
    const t0 = Date.now();
    await rec.until((s) => s.length === 0, 5000, 'the expired instance to leave');
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('drain() takes the instance out at once (maintenance), deregister() removes it', async () => {
    const { host, port, url } = sharedConsul();
    const name = unique('drain');
    const r = registry();
    const { rec } = watch(r, name);
    const stay = track(await registerService({ name, port: 18085, address: '127.0.0.1', connection: { host, port }, verifyIntervalMs: 0 }));
    const go = track(await registerService({ name, port: 18086, address: '127.0.0.1', check: { ttlMs: 5000 }, connection: { host, port }, verifyIntervalMs: 0 }));
    await rec.until((s) => s.length === 2, 5000, 'both instances');
    const t0 = performance.now();
    await go.drain('test drain');
    await rec.until((s) => s.length === 1, 2000, 'the drained instance to leave');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(ids(rec.latest!)).toEqual([stay.id]);
    // Still registered (in maintenance) until deregister().
    const svc = await consulApi(url, 'GET', `/v1/agent/service/${go.id}`);
    expect(svc.status).toBe(200);
    await go.deregister();
    await expect(consulApi(url, 'GET', `/v1/agent/service/${go.id}`)).rejects.toThrow(/404/);
    expect(go.state).toBe('deregistered');
  });

  it('uses the node address when Service.Address is empty, and filters by tags', async () => {
    const { url } = sharedConsul();
    const name = unique('noaddr');
    await consulApi(url, 'PUT', '/v1/agent/service/register', { ID: `${name}-1`, Name: name, Port: 18087, Tags: ['blue'] });
    await consulApi(url, 'PUT', '/v1/agent/service/register', { ID: `${name}-2`, Name: name, Port: 18088, Address: '127.0.0.1', Tags: ['green'] });
    cleanups.push(async () => {
      await consulApi(url, 'PUT', `/v1/agent/service/deregister/${name}-1`);
      await consulApi(url, 'PUT', `/v1/agent/service/deregister/${name}-2`);
    });
    const r = registry();
    const all = await r.resolve({ service: name });
    expect(ids(all)).toEqual([`${name}-1`, `${name}-2`]);
    expect(all.find((e) => e.id.endsWith(`/${name}-1`))?.address).toBe('127.0.0.1');
    const blue = await r.resolve({ service: name, tags: ['blue'] });
    expect(ids(blue)).toEqual([`${name}-1`]);
  });

  it('keeps an instance with more than 64 tags (Consul has no limit) with its first 64, warning once per watch while it stays so', async () => {
    const { url } = sharedConsul();
    const name = unique('manytags');
    const tags = Array.from({ length: 70 }, (_, i) => `t${String(i).padStart(2, '0')}`);
    const put = (version: string, list: string[]) =>
      consulApi(url, 'PUT', '/v1/agent/service/register', { ID: `${name}-1`, Name: name, Port: 18089, Address: '127.0.0.1', Tags: list, Meta: { version } });
    await put('1', tags);
    cleanups.push(async () => {
      await consulApi(url, 'PUT', `/v1/agent/service/deregister/${name}-1`);
    });
    const logger = captureLogger();
    const r = registry(logger);
    const { rec } = watch(r, name);
    const first = await rec.until((e) => e[0]?.meta.version === '1', 10_000, 'the instance with 70 tags');
    expect(ids(first)).toEqual([`${name}-1`]);
    expect(first[0]?.tags).toEqual(tags.slice(0, 64));
    const cutWarnings = () => logger.warnings().filter((m) => m.includes(`tags of a Consul endpoint of ${name}`));
    expect(cutWarnings()).toEqual([`kept the first 64 of 70 tags of a Consul endpoint of ${name} (inmesh reads at most 64 tags per instance)`]);
    // Another answer with the instance still over the limit: no second warning.
    await put('2', tags);
    await rec.until((e) => e[0]?.meta.version === '2', 10_000, 'the second answer');
    expect(cutWarnings()).toHaveLength(1);
    // Back under the limit, then over it again: a new warning.
    await put('3', tags.slice(0, 3));
    expect((await rec.until((e) => e[0]?.meta.version === '3', 10_000, 'the instance with 3 tags'))[0]?.tags).toEqual(tags.slice(0, 3));
    await put('4', tags);
    await rec.until((e) => e[0]?.meta.version === '4', 10_000, 'the instance with 70 tags again');
    expect(cutWarnings()).toHaveLength(2);
    // A tag past the first 64 still selects the instance (Consul filtered on every tag); that query's watch warns once too.
    expect(ids(await r.resolve({ service: name, tags: ['t69'] }))).toEqual([`${name}-1`]);
    expect(cutWarnings()).toHaveLength(3);
  });

  it('re-registers when the agent forgets the instance', async () => {
    const { host, port, url } = sharedConsul();
    const name = unique('forget');
    const logger = captureLogger();
    const reg = track(new ConsulRegistration({ name, port: 18089, address: '127.0.0.1', connection: { host, port }, verifyIntervalMs: 100, logger }));
    await reg.register();
    await reg.register(); // idempotent
    await consulApi(url, 'PUT', `/v1/agent/service/deregister/${reg.id}`);
    const r = registry();
    const { rec } = watch(r, name);
    await rec.until((s) => ids(s).includes(reg.id), 5000, 'the re-registered instance');
    await expect.poll(() => reg.reregistrations, { timeout: 2000 }).toBeGreaterThanOrEqual(1);
    expect(logger.warnings().join('\n')).toMatch(/registered .* again/);
  });
});
