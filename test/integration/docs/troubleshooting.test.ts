/**
 * docs/troubleshooting.md quotes the messages users see first. Each scenario
 * here produces its message on real loopback servers (and the shared real
 * Consul agent), and the page must quote it: a changed message fails this test
 * until the page is updated.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createMesh, isInmeshError, type Mesh } from '../../../src/index.ts';
import { MIN_NODE } from '../../../src/internal/node-check.ts';
import { sharedConsulAddr } from '../../harness/consul.ts';
import { freePort } from '../../harness/ports.ts';

const page = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'troubleshooting.md'), 'utf8');
const servers: Server[] = [];
const meshes: Mesh[] = [];

afterAll(async () => {
  await Promise.all(meshes.map((m) => m.close()));
  await Promise.all(servers.map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r)))));
});

async function serve(handler: RequestListener): Promise<string> {
  const s = createServer(handler);
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  servers.push(s);
  return `127.0.0.1:${(s.address() as AddressInfo).port}`;
}

function mesh(options: Parameters<typeof createMesh>[0]): Mesh {
  const m = createMesh(options);
  meshes.push(m);
  return m;
}

/** How the page shows a message: ephemeral loopback ports as the usual ones. */
function asOnPage(text: string, port = '8080'): string {
  return text.replace(/127\.0\.0\.1:\d+/g, `127.0.0.1:${port}`);
}

function expectQuoted(line: string): void {
  expect(page, `docs/troubleshooting.md should quote:\n${line}`).toContain(line);
}

async function failure(p: Promise<unknown>): Promise<Error> {
  const outcome = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(outcome).toBeInstanceOf(Error);
  return outcome as Error;
}

const slow: RequestListener = (_req, res) => {
  setTimeout(() => res.end('late'), 400).unref();
};

describe('docs/troubleshooting.md quotes the messages the code gives', () => {
  it('1: the Node.js version check', () => {
    expectQuoted(`Error: inmesh needs Node.js ${MIN_NODE.join('.')} or newer (its HTTP client, undici 8, does); this process runs Node.js `);
  });

  it('2 and 4: static endpoints filtered out by tags, also through mesh.fetch', async () => {
    const addr = await serve((_req, res) => res.end('ok'));
    const m = mesh({ policy: { apiVersion: 'inmesh/v1', upstreams: { orders: { discovery: { tags: ['v2'] } } } }, env: { INMESH_ENDPOINTS_ORDERS: addr } });
    const e = await failure(m.request('http://orders/'));
    expectQuoted(`${e.name}: ${e.message}`);
    const f = await failure(m.fetch('http://orders/'));
    expectQuoted(`${f.name}: ${f.message}\n  cause: ${String(f.cause).slice(0, 'NoEndpointsError: orders: no endpoints are known'.length)}`);
    expect(isInmeshError(f.cause)).toBe(true);
  });

  it('3: a host that is not a mesh service goes out as a plain call', async () => {
    const m = mesh({ env: {} });
    const e = await failure(m.request('http://orders/'));
    expectQuoted(`Error: ${e.message}`);
  });

  it('5: Consul not reachable (message and the warning logged once)', async () => {
    // A port nothing listens on: free, and released again at once.
    const port = await freePort();
    const warnings: string[] = [];
    const logger = { debug: () => {}, info: () => {}, warn: (m: string) => warnings.push(m), error: (m: string) => warnings.push(m) };
    const m = mesh({ policy: { apiVersion: 'inmesh/v1', upstreams: { orders: {} } }, env: { CONSUL_HTTP_ADDR: `127.0.0.1:${port}` }, logger });
    const e = await failure(m.request('http://orders/'));
    expectQuoted(asOnPage(`${e.name}: ${e.message}`, '8500'));
    expect(warnings.map((w) => `[inmesh] ${asOnPage(w, '8500')}`).some((w) => page.includes(w))).toBe(true);
  });

  it('6: Consul answers no instances and no token is set', async () => {
    const m = mesh({ policy: { apiVersion: 'inmesh/v1', upstreams: { orders: {} } }, env: { CONSUL_HTTP_ADDR: sharedConsulAddr() }, logger: { debug() {}, info() {}, warn() {}, error() {} } });
    const e = await failure(m.request('http://orders/'));
    expectQuoted(`${e.name}: ${e.message}`);
  });

  it('7: an invalid policy lists every problem', () => {
    let error: unknown;
    try {
      createMesh({ policy: { apiVersion: 'inmesh/v1', upstreams: { orders: { retries: { attempts: 20 }, timeouts: { request: 5 } } } } as never, env: {} });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Error);
    expectQuoted(`${(error as Error).name}: ${(error as Error).message}`);
  });

  it('8: total and per-try timeouts', async () => {
    const addr = await serve(slow);
    const total = mesh({ policy: { apiVersion: 'inmesh/v1', upstreams: { orders: { timeouts: { request: '100ms' } } } }, env: { INMESH_ENDPOINTS_ORDERS: addr } });
    const e = await failure(total.request('http://orders/'));
    expectQuoted(`${e.name}: ${e.message}`);
    const perTry = mesh({
      policy: { apiVersion: 'inmesh/v1', upstreams: { orders: { timeouts: { request: '2s', perTry: '100ms' } } } },
      env: { INMESH_ENDPOINTS_ORDERS: addr },
    });
    const f = await failure(perTry.request('http://orders/'));
    expectQuoted(asOnPage(`${f.name}: ${f.message}\n  cause: ${String(f.cause)}`));
  });

  it('9: breaker open and load shed', async () => {
    const refused = mesh({
      policy: {
        apiVersion: 'inmesh/v1',
        upstreams: { orders: { retries: { attempts: 0 }, outlierDetection: { consecutive5xx: 0 }, circuitBreaker: { minimumRequests: 2 } } },
      },
      env: { INMESH_ENDPOINTS_ORDERS: '127.0.0.1:1' },
    });
    let open: Error | undefined;
    for (let i = 0; i < 5 && open === undefined; i++) {
      const e = await failure(refused.request('http://orders/'));
      if (e.name === 'CircuitOpenError') open = e;
    }
    expect(open).toBeDefined();
    expectQuoted(`${open?.name}: ${open?.message}`);

    const addr = await serve(slow);
    const limited = mesh({
      policy: { apiVersion: 'inmesh/v1', upstreams: { orders: { limits: { maxRequests: 1, maxPendingRequests: 0 } } } },
      env: { INMESH_ENDPOINTS_ORDERS: addr },
    });
    const [first, second] = await Promise.allSettled([limited.request('http://orders/'), limited.request('http://orders/')]);
    if (first.status === 'fulfilled') await first.value.body.text();
    expect(second.status).toBe('rejected');
    const shed = (second as PromiseRejectedResult).reason as Error;
    expectQuoted(`${shed.name}: ${shed.message}`);
  });

  it('10: a shared rate limit without Redis', async () => {
    const addr = await serve((_req, res) => res.end('ok'));
    let error: unknown;
    try {
      const m = mesh({
        policy: { apiVersion: 'inmesh/v1', upstreams: { orders: { rateLimit: { requestsPerSecond: 1, shared: true } } } },
        env: { INMESH_ENDPOINTS_ORDERS: addr },
      });
      await m.request('http://orders/');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Error);
    expectQuoted(`${(error as Error).name}: ${(error as Error).message}`);
  });
});
