/** One Pool per endpoint; pools of endpoints that leave the set are closed (no socket leak). */
import { once } from 'node:events';
import type { Socket } from 'node:net';
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

/** Resolves when the server side of a connection has closed; fails after 5 s. */
async function closed(socket: Socket, what: string): Promise<void> {
  if (socket.closed) return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      once(socket, 'close'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} is still open after 5 s`)), 5_000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const ep = (id: string, port: number): Endpoint => ({ id, address: '127.0.0.1', port, tags: [], meta: {}, weight: 1 });

describe('endpoint pools', () => {
  it('closes the pool of a removed endpoint: no socket leak over 1,000 endpoint changes', async () => {
    const servers = await Promise.all([1, 2, 3, 4].map(() => startServer(ok)));
    // The connections each server accepted, in order: the calls below are
    // sequential, so the i-th is the one endpoint e<i>'s pool opened. The
    // servers keep idle connections far longer than the test runs, so only the
    // client closing its pool can close one.
    const accepted: Socket[] = [];
    for (const s of servers) {
      s.server.keepAliveTimeout = 120_000;
      s.server.on('connection', (c: Socket) => accepted.push(c));
    }
    const registry = new ManualRegistry();
    const mesh = createMesh({ registry, telemetry: { enabled: false }, policy: { apiVersion: 'inmesh/v1', upstreams: { orders: {} } } });
    try {
      for (let i = 0; i < 1000; i++) {
        registry.set([ep(`e${i}`, servers[i % 4]!.port)]);
        // e<i-1> just left the set: its pool lets its connection go.
        if (i > 0) await closed(accepted[i - 1]!, `the connection of removed endpoint e${i - 1}`);
        const res = await mesh.request('http://orders/');
        expect(res.statusCode).toBe(200);
        await res.body.dump();
      }
      expect(accepted).toHaveLength(1000); // one connection per endpoint pool
      expect(servers.reduce((n, s) => n + s.connections, 0)).toBe(1000);
      registry.set([]);
      await closed(accepted[999]!, 'the connection of removed endpoint e999');
      expect(servers.reduce((n, s) => n + s.sockets.size, 0)).toBe(0);
    } finally {
      await mesh.close();
    }
  });
});
