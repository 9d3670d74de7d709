/** One Pool per endpoint; pools of endpoints that leave the set are closed (no socket leak). */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createMesh } from '../../../src/index.ts';
import type { Endpoint, EndpointsListener, Registry, Subscription } from '../../../src/registry/types.ts';
import { closeAll, ok, startServer } from './helpers.ts';

afterEach(closeAll);

/** A registry the test drives by hand (the Registry interface, in memory). */
class ManualRegistry implements Registry {
  readonly kind = 'static' as const;
  listener: EndpointsListener | undefined;
  endpoints: readonly Endpoint[] = [];
  resolve(): Promise<readonly Endpoint[]> {
    return Promise.resolve(this.endpoints);
  }
  subscribe(_q: unknown, listener: EndpointsListener): Subscription {
    this.listener = listener;
    listener(this.endpoints);
    const current = (): readonly Endpoint[] => this.endpoints;
    return {
      get endpoints() {
        return current();
      },
      staleness: () => 0,
      ready: () => Promise.resolve(),
      close: () => (this.listener = undefined),
    };
  }
  set(endpoints: readonly Endpoint[]): void {
    this.endpoints = endpoints;
    this.listener?.(endpoints);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const ep = (id: string, port: number): Endpoint => ({ id, address: '127.0.0.1', port, tags: [], meta: {}, weight: 1 });

describe('endpoint pools', () => {
  it('closes the pool of a removed endpoint: no socket leak over 1,000 endpoint changes', async () => {
    const servers = await Promise.all([1, 2, 3, 4].map(() => startServer(ok)));
    const registry = new ManualRegistry();
    const mesh = createMesh({ registry, telemetry: { enabled: false }, policy: { apiVersion: 'inmesh/v1', upstreams: { orders: {} } } });
    let maxOpen = 0;
    try {
      for (let i = 0; i < 1000; i++) {
        registry.set([ep(`e${i}`, servers[i % 4]!.port)]);
        const res = await mesh.request('http://orders/');
        expect(res.statusCode).toBe(200);
        await res.body.dump();
        maxOpen = Math.max(maxOpen, servers.reduce((n, s) => n + s.sockets.size, 0));
      }
      const accepted = servers.reduce((n, s) => n + s.connections, 0);
      expect(accepted).toBe(1000); // one connection per endpoint pool
      expect(maxOpen).toBeLessThanOrEqual(20); // closed pools let their sockets go as we go
      registry.set([]);
      const open = servers.flatMap((s) => [...s.sockets]);
      await Promise.race([
        Promise.all(open.filter((s) => !s.destroyed).map((s) => once(s, 'close'))),
        new Promise((_, reject) => setTimeout(() => reject(new Error('sockets still open after 5 s')), 5000).unref()),
      ]);
      expect(servers.reduce((n, s) => n + s.sockets.size, 0)).toBe(0);
    } finally {
      await mesh.close();
    }
  });
});
