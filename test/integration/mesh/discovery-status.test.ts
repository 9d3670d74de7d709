/**
 * Registry trouble is visible through the mesh: a NoEndpointsError says whether
 * endpoints are unknown or all ejected, and while discovery fails it carries the
 * registry's last error as `cause` and the staleness; `mesh.discoveryStatus()`
 * reports the same. The failing Consul is a scripted loopback responder (500s),
 * the upstream a real loopback server.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { createMesh, NoEndpointsError, RegistryError, type Mesh, type Registry, type Subscription } from '../../../src/index.ts';
import { hostileResponder } from '../../harness/http-helpers.ts';
import { captureLogger } from '../../harness/registry-helpers.ts';

async function serve(status: number): Promise<{ server: Server; address: string; port: number }> {
  const s = createServer((_req, res) => {
    res.statusCode = status;
    res.end('x');
  });
  s.keepAliveTimeout = 10;
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  return { server: s, address: `127.0.0.1:${port}`, port };
}

const entry = (id: string, port: number) => ({
  Node: { Node: 'n1', Address: '127.0.0.1', Datacenter: 'dc1' },
  Service: { ID: id, Service: 'orders', Address: '127.0.0.1', Port: port, Tags: [], Meta: {}, Weights: { Passing: 1, Warning: 1 } },
  Checks: [],
});

describe('discovery status through the mesh', () => {
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
  });

  async function consulMesh() {
    const responder = await hostileResponder();
    closers.push(() => responder.close());
    const mesh: Mesh = createMesh({
      env: { INMESH_TRACING: 'false' },
      consul: { host: responder.host, port: responder.port },
      consulWatch: { minIntervalMs: 5, backoffBaseMs: 10, backoffMaxMs: 50 },
      logger: captureLogger(),
      policy: { upstreams: { orders: { discovery: { registry: 'consul' }, retries: { attempts: 0 } } } },
    });
    closers.push(() => mesh.close());
    return { responder, mesh };
  }

  it('a registry that never answered: NoEndpointsError with the registry error as cause; status says so', async () => {
    const { responder, mesh } = await consulMesh();
    responder.push({ status: 500, body: 'rpc error: no leader' });
    const e = await mesh.request('http://orders/').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(NoEndpointsError);
    const err = e as NoEndpointsError;
    expect(err.cause).toBeInstanceOf(RegistryError);
    expect((err.cause as RegistryError).statusCode).toBe(500);
    expect(err.stalenessMs).toBe(Number.POSITIVE_INFINITY);
    expect(err.message).toMatch(/^orders: no endpoints are known; discovery has never answered: consul GET \/v1\/health\/service\/orders at 127\.0\.0\.1:\d+ answered 500/);
    const status = mesh.discoveryStatus('orders');
    expect(status).toMatchObject({ upstream: 'orders', service: 'orders', registry: 'consul', endpoints: 0, available: 0, stalenessMs: Number.POSITIVE_INFINITY });
    expect(status?.lastError).toMatchObject({ name: 'RegistryError', code: 'INMESH_ERR_REGISTRY', statusCode: 500 });
    expect(mesh.discoveryStatus('not-a-mesh-host.example')).toBeUndefined();
  });

  it('a registry that fails after a good answer: the last good set is served, staleness grows, the error is reported', async () => {
    const up = await serve(200);
    closers.push(() => new Promise((r) => (up.server.closeAllConnections(), up.server.close(r))));
    const { responder, mesh } = await consulMesh();
    responder.push({ index: '5', body: [entry('a', up.port)] });
    const res = await mesh.request('http://orders/');
    await res.body.dump();
    expect(mesh.discoveryStatus('orders')).toMatchObject({ endpoints: 1, available: 1, stalenessMs: 0, lastError: undefined });
    responder.push({ status: 500, body: 'rpc error' });
    await expect.poll(() => mesh.discoveryStatus('orders')?.lastError?.statusCode, { timeout: 5000 }).toBe(500);
    await expect.poll(() => mesh.discoveryStatus('orders')?.stalenessMs ?? 0, { timeout: 5000 }).toBeGreaterThan(0);
    expect(mesh.discoveryStatus('orders')?.endpoints).toBe(1);
    const again = await mesh.request('http://orders/');
    expect(again.statusCode).toBe(200);
    await again.body.dump();
  });

  it('endpoints known but every one ejected: "all endpoints ejected", no cause while discovery is fine', async () => {
    const bad = await serve(503);
    closers.push(() => new Promise((r) => (bad.server.closeAllConnections(), bad.server.close(r))));
    const mesh = createMesh({
      env: { INMESH_TRACING: 'false' },
      policy: {
        upstreams: {
          orders: {
            discovery: { registry: 'static', endpoints: [bad.address] },
            retries: { attempts: 0 },
            circuitBreaker: { enabled: false },
            outlierDetection: { consecutive5xx: 1, maxEjectionPercent: 100, panicThresholdPercent: 0, baseEjectionTime: '30s' },
          },
        },
      },
    });
    closers.push(() => mesh.close());
    const first = await mesh.request('http://orders/');
    expect(first.statusCode).toBe(503);
    await first.body.dump();
    expect(mesh.discoveryStatus('orders')).toMatchObject({ registry: 'static', endpoints: 1, available: 0, stalenessMs: 0, lastError: undefined });
    const e = await mesh.request('http://orders/').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(NoEndpointsError);
    expect((e as Error).message).toBe('orders: all endpoints ejected (1 known, outlier detection ejected every one)');
    expect((e as Error).cause).toBeUndefined();
    expect((e as NoEndpointsError).stalenessMs).toBeUndefined();
  });

  it("a registry of the user's own whose error text holds a configured secret: the message and the status show it redacted", async () => {
    const token = `tok-${process.pid}-secret`;
    const failure = new Error(`refused: token ${token} is not allowed`);
    const registry: Registry = {
      kind: 'static',
      resolve: () => Promise.reject(failure),
      subscribe(_query, _listener, options): Subscription {
        const ready = new Promise<void>((r) => {
          queueMicrotask(() => {
            options?.onError?.(failure);
            r();
          });
        });
        return { endpoints: [], staleness: () => Number.POSITIVE_INFINITY, ready: () => ready, close: () => undefined };
      },
      close: () => Promise.resolve(),
    };
    const mesh = createMesh({
      env: { INMESH_TRACING: 'false' },
      consul: { token },
      registry,
      policy: { upstreams: { orders: { discovery: { registry: 'static', endpoints: ['127.0.0.1:1'] }, retries: { attempts: 0 } } } },
    });
    closers.push(() => mesh.close());
    const e = await mesh.request('http://orders/').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(NoEndpointsError);
    expect((e as Error).message).toBe('orders: no endpoints are known; discovery has never answered: refused: token [redacted] is not allowed');
    // The cause is a scrubbed copy: the registry's own error carries the token.
    const cause = (e as Error).cause as Error;
    expect(cause).not.toBe(failure);
    expect(cause.message).toBe('refused: token [redacted] is not allowed');
    expect(inspect(e, { depth: Infinity })).not.toContain(token);
    expect(String((e as Error).stack)).not.toContain(token);
    expect(mesh.discoveryStatus('orders')?.lastError).toEqual({ name: 'Error', message: 'refused: token [redacted] is not allowed' });
  });
});
