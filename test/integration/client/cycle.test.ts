/**
 * Two behaviours over time, on real loopback servers: the error-rate breaker's
 * whole cycle (closed → open → half-open → closed), and ring_hash remapping
 * only about 1/N of the keys when an endpoint joins.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createMesh, type Endpoint, type EndpointsListener, type Mesh, type Registry, type Subscription } from '../../../src/index.ts';
import { resolvePolicy } from '../../../src/policy/index.ts';
import { closeAll, ok, policyFor, startServer, type TestServer } from './helpers.ts';

let mesh: Mesh | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await closeAll();
});

const code = (e: unknown): string | undefined => (e as { code?: string }).code;

describe('circuit breaker cycle', () => {
  it('opens on errors, fails fast without reaching the server, half-opens after halfOpenAfter and closes on a good probe', async () => {
    let healthy = false;
    const s = await startServer((_req, res) => {
      res.statusCode = healthy ? 200 : 500;
      res.end();
    });
    mesh = createMesh({
      policy: policyFor(
        { orders: { endpoints: [s.address] } },
        {
          circuitBreaker: { enabled: true, minimumRequests: 5, errorThresholdPercent: 50, window: '10s', halfOpenAfter: '300ms' },
          retries: { attempts: 0 },
          outlierDetection: { consecutive5xx: 0 },
        },
      ),
      telemetry: { enabled: false },
    });
    const call = async (): Promise<number | string> => {
      try {
        const res = await mesh!.request('http://orders/');
        await res.body.dump();
        return res.statusCode;
      } catch (e) {
        return code(e) ?? 'unknown';
      }
    };

    // Closed: the first failures reach the server; then the circuit opens.
    const first: (number | string)[] = [];
    for (let i = 0; i < 8; i++) first.push(await call());
    const openedAt = performance.now();
    expect(first.slice(0, 5)).toEqual([500, 500, 500, 500, 500]);
    expect(first.slice(5)).toEqual(['INMESH_ERR_CIRCUIT_OPEN', 'INMESH_ERR_CIRCUIT_OPEN', 'INMESH_ERR_CIRCUIT_OPEN']);
    expect(s.hits).toBe(5);

    // Open: fails fast, the server sees nothing, even once it is healthy again.
    healthy = true;
    for (let i = 0; i < 5; i++) expect(await call()).toBe('INMESH_ERR_CIRCUIT_OPEN');
    expect(s.hits).toBe(5);

    // Half-open after 300 ms: one probe goes through; its success closes the circuit.
    let probeAt = 0;
    const deadline = performance.now() + 3_000;
    while (performance.now() < deadline) {
      const r = await call();
      if (r === 200) {
        probeAt = performance.now();
        break;
      }
      expect(r).toBe('INMESH_ERR_CIRCUIT_OPEN');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(probeAt).toBeGreaterThan(0);
    expect(probeAt - openedAt).toBeGreaterThanOrEqual(280);
    expect(s.hits).toBe(6);

    // Closed again: every call reaches the server.
    for (let i = 0; i < 10; i++) expect(await call()).toBe(200);
    expect(s.hits).toBe(16);
  });
});

/** A registry the test drives by hand: what a Consul change would do. */
class HandRegistry implements Registry {
  readonly kind = 'static' as const;
  #endpoints: readonly Endpoint[] = [];
  readonly #listeners = new Set<EndpointsListener>();
  set(endpoints: readonly Endpoint[]): void {
    this.#endpoints = endpoints;
    for (const l of this.#listeners) l(endpoints);
  }
  subscribe(_q: unknown, listener: EndpointsListener): Subscription {
    this.#listeners.add(listener);
    listener(this.#endpoints);
    const current = (): readonly Endpoint[] => this.#endpoints;
    return {
      get endpoints() {
        return current();
      },
      staleness: () => 0,
      ready: () => Promise.resolve(),
      close: () => this.#listeners.delete(listener),
    };
  }
  resolve(): Promise<readonly Endpoint[]> {
    return Promise.resolve(this.#endpoints);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const endpointOf = (s: TestServer): Endpoint => ({ id: s.address, address: '127.0.0.1', port: s.port, tags: [], meta: {}, weight: 1 });

describe('ring_hash remapping on real servers', () => {
  it('adding a fourth instance moves about a quarter of the keys, all of them to the new one', async () => {
    const servers = await Promise.all([1, 2, 3, 4].map(() => startServer(ok)));
    const registry = new HandRegistry();
    registry.set(servers.slice(0, 3).map(endpointOf));
    mesh = createMesh({
      registry,
      policy: resolvePolicy({
        apiVersion: 'inmesh/v1',
        upstreams: { orders: { loadBalancer: { policy: 'ring_hash', hashOn: { header: 'x-user' } }, circuitBreaker: { enabled: false } } },
      }),
      telemetry: { enabled: false },
    });
    const keys = Array.from({ length: 400 }, (_, i) => `user-${i}`);
    const where = async (): Promise<Map<string, string>> => {
      const out = new Map<string, string>();
      for (const k of keys) {
        const res = await mesh!.request('http://orders/', { headers: { 'x-user': k } });
        await res.body.dump();
        out.set(k, res.endpoint);
      }
      return out;
    };
    const before = await where();
    expect(new Set(before.values()).size).toBe(3);
    registry.set(servers.map(endpointOf));
    const after = await where();
    const moved = keys.filter((k) => before.get(k) !== after.get(k));
    // Ideal is 1/4 = 100 keys; allow for the ring's granularity.
    expect(moved.length).toBeGreaterThan(40);
    expect(moved.length).toBeLessThan(160);
    expect(new Set(moved.map((k) => after.get(k)))).toEqual(new Set([servers[3]!.address]));
  });
});
