/**
 * The admin endpoint on real loopback servers: its documented JSON shape
 * (every field, nothing more), secrets never in any body, an ejected endpoint
 * and an open breaker as they happen, in-flight counts, read-only methods,
 * the loopback-only bind and Host check, and mesh.close() closing it.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createMesh, type InmeshError, type Mesh } from '../../../src/index.ts';
import type { AdminServer } from '../../../src/admin/server.ts';
import { closeAll, hanging, ok, policyFor, startServer } from '../client/helpers.ts';
import { close as closeServer, listen } from '../server/helpers.ts';
import { shapeProblems, type Spec } from './shape.ts';

let mesh: Mesh | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await closeAll();
});

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** One request with node:http (any method, any Host header), on a fresh connection. */
function call(admin: AdminServer, path: string, options: { method?: string; host?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: admin.address.host,
        port: admin.address.port,
        path,
        method: options.method ?? 'GET',
        agent: false,
        headers: { host: options.host ?? `127.0.0.1:${admin.address.port}` },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function doc(admin: AdminServer, path: string): Promise<any> {
  const r = await call(admin, path);
  expect(r.status).toBe(200);
  expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
  return JSON.parse(r.body);
}

// The documented shapes (docs/admin.md), field by field.
const HEADER = { version: 'number', kind: 'string', generatedAt: 'string' } as const;
const INDEX_SPEC: Spec = { ...HEADER, paths: ['string'] };
const CONFIG_SPEC: Spec = {
  ...HEADER,
  service: { $nullable: { name: 'string', address: 'string|null', port: 'number|null' } },
  policyFile: 'string|null',
  consul: {
    host: 'string',
    port: 'number',
    secure: 'boolean',
    token: 'string|null',
    auth: 'string|null',
    datacenter: 'string|null',
    namespace: 'string|null',
    partition: 'string|null',
    tls: { caFile: 'string|null', caPath: 'string|null', certFile: 'string|null', keyFile: 'string|null', serverName: 'string|null', verify: 'boolean' },
  },
  redis: { configured: 'boolean', url: 'string|null' },
  telemetry: { enabled: 'boolean', serviceName: 'string|null' },
  policy: { apiVersion: 'string', defaults: 'any', upstreams: 'any', inbound: 'any', resources: 'any' },
};
const ENDPOINT_SPEC: Spec = {
  id: 'string',
  address: 'string',
  port: 'number',
  activeRequests: 'number',
  ejected: 'boolean',
  ejectedForMs: 'number',
  timesEjected: 'number',
  ejections: 'number',
  consecutive5xx: 'number',
  consecutiveGatewayErrors: 'number',
};
const UPSTREAM_SPEC: Spec = {
  name: 'string',
  started: 'boolean',
  service: 'string',
  registry: 'string',
  discovery: {
    $nullable: {
      endpoints: 'number',
      available: 'number',
      stalenessMs: 'number|null',
      lastError: { $nullable: { name: 'string', code: 'string|null', message: 'string', statusCode: 'number|null' } },
    },
  },
  panic: 'boolean|null',
  circuitBreaker: { enabled: 'boolean', state: 'string|null' },
  limits: { maxRequests: 'number|null', maxPendingRequests: 'number|null', inFlight: 'number|null', pending: 'number|null' },
  retryBudget: { $nullable: { percent: 'number', minConcurrency: 'number', active: 'number|null', retriesInFlight: 'number|null', limit: 'number|null' } },
  endpoints: [ENDPOINT_SPEC],
};
const CLUSTERS_SPEC: Spec = { ...HEADER, upstreams: [UPSTREAM_SPEC] };
const INBOUND_SPEC: Spec = {
  ...HEADER,
  wrapped: 'boolean',
  closing: 'boolean',
  maxConcurrent: 'number',
  inFlight: 'number|null',
  rateLimit: { $nullable: { requestsPerSecond: 'number', burst: 'number', shared: 'boolean' } },
  requestTimeoutMs: 'number',
};

const RESOURCE_SPEC: Spec = {
  name: 'string',
  started: 'boolean',
  timeouts: { requestMs: 'number', perTryMs: 'number' },
  circuitBreaker: { enabled: 'boolean', state: 'string|null' },
  limits: { maxRequests: 'number|null', maxPendingRequests: 'number|null', inFlight: 'number|null', pending: 'number|null' },
  rateLimit: { $nullable: { requestsPerSecond: 'number', burst: 'number', shared: 'boolean' } },
  retryBudget: { $nullable: { percent: 'number', minConcurrency: 'number', active: 'number|null', retriesInFlight: 'number|null', limit: 'number|null' } },
};
const RESOURCES_SPEC: Spec = { ...HEADER, resources: [RESOURCE_SPEC] };

const fail500 = (_req: IncomingMessage, res: ServerResponse): void => {
  res.statusCode = 500;
  res.end('boom');
};

function upstream(clusters: any, name: string): any {
  const u = clusters.upstreams.find((x: { name: string }) => x.name === name);
  expect(u, `upstream ${name} listed`).toBeDefined();
  return u;
}

describe('the admin endpoint', () => {
  it('binds to 127.0.0.1 by default, on a port of its own, and mesh.close() closes it', async () => {
    mesh = createMesh({ policy: policyFor({}), env: {}, telemetry: { enabled: false } });
    const admin = await mesh.admin();
    expect(admin.address.host).toBe('127.0.0.1');
    expect(admin.address.port).toBeGreaterThan(0);
    expect(admin.url).toBe(`http://127.0.0.1:${admin.address.port}`);
    expect((await call(admin, '/')).status).toBe(200);
    await mesh.close();
    mesh = undefined;
    await expect(call(admin, '/')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('refuses a non-loopback bind unless allowed, and bad options, naming the field and value', async () => {
    mesh = createMesh({ policy: policyFor({}), env: {}, telemetry: { enabled: false } });
    for (const host of ['0.0.0.0', '::', '192.0.2.1', 'example.com']) {
      const err = (await mesh.admin({ host }).catch((e: unknown) => e)) as InmeshError;
      expect(err.code).toBe('INMESH_ERR_INVALID_ARGUMENT');
      expect(err.message).toContain('admin.host');
      expect(err.message).toContain(host);
      expect(err.message).toContain('allowNonLoopback');
    }
    await expect(mesh.admin({ port: 70_000 })).rejects.toThrow(/admin\.port must be an integer from 0 to 65535 \(got 70000\)/);
    await expect(mesh.admin({ allowNonLoopback: 'yes' as never })).rejects.toThrow(/admin\.allowNonLoopback must be a boolean/);
    // Other loopback forms are accepted.
    const local = await mesh.admin({ host: 'localhost' });
    expect(['127.0.0.1', '::1']).toContain(local.address.host);
    await local.close();
  });

  it('is read-only: GET and HEAD answered, every other method 405 with Allow; unknown paths 404', async () => {
    mesh = createMesh({ policy: policyFor({}), env: {}, telemetry: { enabled: false } });
    const admin = await mesh.admin();
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const r = await call(admin, '/clusters', { method });
      expect(r.status, method).toBe(405);
      expect(r.headers.allow).toBe('GET, HEAD');
      expect(JSON.parse(r.body)).toMatchObject({ version: 1, error: { status: 405 } });
    }
    const head = await call(admin, '/clusters', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
    expect((await call(admin, '/nope')).status).toBe(404);
  });

  it('answers loopback Host names only (a rebound DNS name gets 403)', async () => {
    mesh = createMesh({ policy: policyFor({}), env: {}, telemetry: { enabled: false } });
    const admin = await mesh.admin();
    expect((await call(admin, '/', { host: 'evil.example:80' })).status).toBe(403);
    expect((await call(admin, '/', { host: `localhost:${admin.address.port}` })).status).toBe(200);
    expect((await call(admin, '/', { host: '[::1]' })).status).toBe(200);
  });

  it('serves every documented field, and nothing undocumented, in each document', async () => {
    const a = await startServer(ok);
    const b = await startServer(ok);
    mesh = createMesh({
      policy: policyFor(
        {
          orders: { endpoints: [a.address, b.address], doc: { circuitBreaker: { enabled: true }, retries: { budget: { percent: 20, minConcurrency: 3 } } } },
          idle: { endpoints: [b.address] },
        },
        {},
      ),
      service: { name: 'checkout', address: '127.0.0.1', port: 8080 },
      env: {},
      telemetry: { enabled: false },
    });
    await (await mesh.request('http://orders/')).body.dump();
    const admin = await mesh.admin();

    const index = await doc(admin, '/');
    expect(shapeProblems(index, INDEX_SPEC)).toEqual([]);
    expect(index).toMatchObject({ version: 1, kind: 'index', paths: ['/config_dump', '/clusters', '/inbound', '/resources'] });

    const config = await doc(admin, '/config_dump');
    expect(shapeProblems(config, CONFIG_SPEC)).toEqual([]);
    expect(config.kind).toBe('config_dump');
    expect(Date.parse(config.generatedAt)).not.toBeNaN();
    expect(config.service).toEqual({ name: 'checkout', address: '127.0.0.1', port: 8080 });
    // The policy is the resolved one in force (unbounded numbers print as null, as JSON.stringify has them).
    expect(config.policy).toEqual(JSON.parse(JSON.stringify(mesh.policy)));

    const clusters = await doc(admin, '/clusters');
    expect(shapeProblems(clusters, CLUSTERS_SPEC)).toEqual([]);
    const orders = upstream(clusters, 'orders');
    expect(orders).toMatchObject({
      started: true,
      registry: 'static',
      discovery: { endpoints: 2, available: 2, stalenessMs: 0, lastError: null },
      circuitBreaker: { enabled: true, state: 'closed' },
      limits: { inFlight: 0, pending: 0 },
      retryBudget: { percent: 20, minConcurrency: 3, active: 0, retriesInFlight: 0, limit: 3 },
      panic: false,
    });
    expect(orders.endpoints.map((e: { port: number }) => e.port).sort()).toEqual([a.port, b.port].sort());
    // Declared but never called: listed from the policy, no state, and reading it started nothing.
    expect(upstream(clusters, 'idle')).toMatchObject({ started: false, discovery: null, panic: null, endpoints: [], limits: { inFlight: null } });
    expect(upstream(await doc(admin, '/clusters'), 'idle').started).toBe(false);

    const inbound = await doc(admin, '/inbound');
    expect(shapeProblems(inbound, INBOUND_SPEC)).toEqual([]);
    expect(inbound).toMatchObject({ kind: 'inbound', wrapped: false, closing: false, inFlight: null, rateLimit: null });
  });

  it('GET /resources lists each resource with its breaker and limit state, null before the first guarded call', async () => {
    mesh = createMesh({
      policy: {
        apiVersion: 'inmesh/v1',
        resources: {
          cache: { limits: { maxRequests: 2, maxPendingRequests: 0 }, circuitBreaker: { minimumRequests: 2, halfOpenAfter: '1m' }, retries: { attempts: 0 } },
          queue: { limits: { enabled: false }, rateLimit: { requestsPerSecond: 10 }, retries: { budget: false } },
        },
      },
      env: {},
      telemetry: { enabled: false },
    });
    const admin = await mesh.admin();
    const before = await doc(admin, '/resources');
    expect(shapeProblems(before, RESOURCES_SPEC)).toEqual([]);
    expect(before.resources[0]).toMatchObject({ name: 'cache', started: false, circuitBreaker: { enabled: true, state: null }, limits: { maxRequests: 2, maxPendingRequests: 0, inFlight: null } });

    let release!: () => void;
    const held = mesh.guard('cache', () => new Promise<void>((r) => (release = r)));
    for (let i = 0; i < 2; i++) await mesh.guard('cache', () => Promise.reject(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))).catch(() => undefined);
    const during = await doc(admin, '/resources');
    expect(shapeProblems(during, RESOURCES_SPEC)).toEqual([]);
    expect(during.resources).toMatchObject([
      { name: 'cache', started: true, circuitBreaker: { state: 'open' }, limits: { inFlight: 1, pending: 0 }, rateLimit: null, retryBudget: { active: 0, retriesInFlight: 0 } },
      { name: 'queue', started: true, circuitBreaker: { enabled: true, state: 'closed' }, limits: { maxRequests: null, inFlight: null }, rateLimit: { requestsPerSecond: 10, burst: 10, shared: false }, retryBudget: null },
    ]);
    release();
    await held;
  });

  it('never shows a secret: Consul token, basic-auth password, Redis URL and its password', async () => {
    const token = 'tok-6f1d2a9c-admin-secret';
    const authPassword = 'hunter2-admin-pass';
    const redisPassword = 'r3dis-pa55-admin';
    const redisUrl = `redis://:${redisPassword}@127.0.0.1:6390/0`;
    const a = await startServer(ok);
    mesh = createMesh({
      policy: { ...policyFor({ orders: { endpoints: [a.address] } }) },
      consul: { host: '127.0.0.1', port: 8500, token, auth: `ops:${authPassword}` },
      redisUrl,
      env: {},
      telemetry: { enabled: false },
    });
    const admin = await mesh.admin();
    const bodies = await Promise.all(['/', '/config_dump', '/clusters', '/inbound'].map(async (p) => (await call(admin, p)).body));
    const all = bodies.join('\n');
    for (const secret of [token, authPassword, `ops:${authPassword}`, redisPassword, redisUrl, '6390']) expect(all).not.toContain(secret);
    const config = JSON.parse(bodies[1] as string);
    expect(config.consul).toMatchObject({ token: '[redacted]', auth: '[redacted]' });
    expect(config.redis).toEqual({ configured: true, url: '[redacted]' });
  });

  it('an ejected endpoint shows as ejected, with the time it stays out', async () => {
    const good = await startServer(ok);
    const bad = await startServer(fail500);
    mesh = createMesh({
      policy: policyFor(
        { orders: { endpoints: [good.address, bad.address] } },
        { retries: { attempts: 0 }, outlierDetection: { consecutive5xx: 2, maxEjectionPercent: 50, baseEjectionTime: '30s' } },
      ),
      env: {},
      telemetry: { enabled: false },
    });
    for (let i = 0; i < 8 && bad.hits < 2; i++) await (await mesh.request('http://orders/')).body.dump();
    expect(bad.hits).toBe(2);
    const admin = await mesh.admin();
    const orders = upstream(await doc(admin, '/clusters'), 'orders');
    const byPort = (port: number) => orders.endpoints.find((e: { port: number }) => e.port === port);
    expect(byPort(bad.port)).toMatchObject({ ejected: true, ejections: 1, timesEjected: 1 });
    expect(byPort(bad.port).ejectedForMs).toBeGreaterThan(20_000);
    expect(byPort(bad.port).ejectedForMs).toBeLessThanOrEqual(30_000);
    expect(byPort(good.port)).toMatchObject({ ejected: false, ejectedForMs: 0, ejections: 0 });
    expect(orders.discovery).toMatchObject({ endpoints: 2, available: 1 });
  });

  it('an open breaker shows as open', async () => {
    const s = await startServer(fail500);
    mesh = createMesh({
      policy: policyFor(
        { payments: { endpoints: [s.address] } },
        { circuitBreaker: { enabled: true, minimumRequests: 5, errorThresholdPercent: 50, halfOpenAfter: '30s' }, retries: { attempts: 0 }, outlierDetection: { consecutive5xx: 0 } },
      ),
      env: {},
      telemetry: { enabled: false },
    });
    const admin = await mesh.admin();
    expect(mesh.discoveryStatus('payments')).toBeDefined(); // starts the upstream
    expect(upstream(await doc(admin, '/clusters'), 'payments').circuitBreaker).toEqual({ enabled: true, state: 'closed' });
    let refused = 0;
    for (let i = 0; i < 8; i++) {
      try {
        await (await mesh.request('http://payments/')).body.dump();
      } catch (e) {
        if ((e as InmeshError).code === 'INMESH_ERR_CIRCUIT_OPEN') refused++;
      }
    }
    expect(refused).toBeGreaterThan(0);
    expect(upstream(await doc(admin, '/clusters'), 'payments').circuitBreaker).toEqual({ enabled: true, state: 'open' });
  });

  it('counts calls in flight to an upstream and inbound requests holding a slot', async () => {
    let arrived = 0;
    let wake: (() => void) | undefined;
    const slow = await startServer((_req, res) => {
      hanging.push(res);
      arrived++;
      if (arrived === 2) wake?.();
    });
    mesh = createMesh({
      policy: policyFor({ orders: { endpoints: [slow.address] } }, { retries: { attempts: 0 } }),
      env: {},
      telemetry: { enabled: false },
    });
    const both = new Promise<void>((r) => (wake = r));
    const calls = [mesh.request('http://orders/a').catch(() => undefined), mesh.request('http://orders/b').catch(() => undefined)];
    await both;
    const admin = await mesh.admin();
    const orders = upstream(await doc(admin, '/clusters'), 'orders');
    expect(orders.limits.inFlight).toBe(2);
    expect(orders.endpoints[0].activeRequests).toBe(2);
    for (const r of hanging.splice(0)) r.end('late');
    await Promise.all(calls);

    // Inbound: a wrapped server with maxConcurrent, one request held in the app.
    const m2 = createMesh({ policy: { apiVersion: 'inmesh/v1', inbound: { maxConcurrent: 4, rateLimit: { requestsPerSecond: 50 } } }, env: {}, telemetry: { enabled: false } });
    let release: (() => void) | undefined;
    let entered: (() => void) | undefined;
    const inApp = new Promise<void>((r) => (entered = r));
    const server = createServer(
      m2.server((_req, res) => {
        entered?.();
        release = () => res.end('ok');
      }),
    );
    const base = await listen(server);
    try {
      const admin2 = await m2.admin();
      expect(await doc(admin2, '/inbound')).toMatchObject({ wrapped: true, maxConcurrent: 4, inFlight: 0, rateLimit: { requestsPerSecond: 50, shared: false } });
      const held = fetch(`${base}/work`).then((r) => r.text());
      await inApp;
      expect((await doc(admin2, '/inbound')).inFlight).toBe(1);
      release?.();
      await held;
    } finally {
      await m2.close();
      await closeServer(server);
    }
  });
});
