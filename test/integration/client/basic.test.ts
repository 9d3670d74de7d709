import { afterEach, describe, expect, it } from 'vitest';
import { createMesh } from '../../../src/index.ts';
import { closeAll, ok, startServer } from './helpers.ts';

afterEach(closeAll);

describe('createMesh + mesh.request over a static registry', () => {
  it('round-robins over the endpoints and keeps the Host header', async () => {
    const hosts: string[] = [];
    const servers = await Promise.all([1, 2, 3].map(() => startServer((req, res) => {
      hosts.push(req.headers.host ?? '');
      res.end('ok');
    })));
    const mesh = createMesh({ registry: { static: { orders: servers.map((s) => s.address) } }, telemetry: { enabled: false } });
    try {
      for (let i = 0; i < 30; i++) {
        const res = await mesh.request('http://orders/api/items');
        expect(res.statusCode).toBe(200);
        expect(await res.body.text()).toBe('ok');
        expect(res.attempts).toBe(1);
      }
      expect(servers.map((s) => s.hits)).toEqual([10, 10, 10]);
      expect(new Set(hosts)).toEqual(new Set(['orders']));
    } finally {
      await mesh.close();
    }
  });

  it('passes non-mesh hosts through untouched', async () => {
    const s = await startServer(ok);
    const mesh = createMesh({ registry: { static: {} }, telemetry: { enabled: false } });
    try {
      const res = await mesh.request(`http://${s.address}/x`);
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('ok');
      expect(mesh.isMeshHost('127.0.0.1')).toBe(false);
      expect(mesh.isMeshHost('orders.service.dc2.consul')).toBe(true);
    } finally {
      await mesh.close();
    }
  });
});
