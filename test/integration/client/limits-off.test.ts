/**
 * `limits.enabled: false`: the mesh builds no 'limit' layer for the upstream
 * ("each layer is absent when its policy is off"), and calls still go through
 * to a real loopback server. The same mesh with limits on (the default) has the
 * layer, so the check can fail.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createMesh, type Mesh } from '../../../src/index.ts';
import type { UpstreamRuntime } from '../../../src/client/upstream.ts';
import { closeAll, ok, startServer } from './helpers.ts';

const meshes: Mesh[] = [];
afterEach(async () => {
  await Promise.all(meshes.splice(0).map((m) => m.close()));
  await closeAll();
});

function meshWith(address: string, limits: Record<string, unknown> | undefined): Mesh {
  const mesh = createMesh({
    policy: {
      defaults: { circuitBreaker: { enabled: false }, ...(limits === undefined ? {} : { limits }) },
      upstreams: { orders: { discovery: { registry: 'static', endpoints: [address] } } },
    },
    telemetry: { enabled: false },
  });
  meshes.push(mesh);
  return mesh;
}

/** The layers a plain call to `orders` runs through, outermost first. */
function layersOf(mesh: Mesh): readonly string[] {
  // createMesh() returns the MeshImpl behind the public Mesh interface; runtimeFor() is its own.
  const rt = (mesh as Mesh & { runtimeFor(host: string): UpstreamRuntime | undefined }).runtimeFor('orders')!;
  return rt.chain.names;
}

describe('limits.enabled: false', () => {
  it('leaves the limit layer out of the chain, and a request to a loopback server is served', async () => {
    const server = await startServer(ok);
    const mesh = meshWith(server.address, { enabled: false });
    expect(mesh.policy.upstreams.orders!.limits.maxRequests).toBe(Infinity);
    expect(layersOf(mesh)).toEqual(['deadline', 'retry', 'attemptTimeout', 'balance']);

    const res = await mesh.request('http://orders/hello');
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('ok');
    expect(server.hits).toBe(1);
  });

  it('with limits on (the default) the same upstream has the limit layer', async () => {
    const server = await startServer(ok);
    const mesh = meshWith(server.address, undefined);
    expect(layersOf(mesh)).toEqual(['deadline', 'limit', 'retry', 'attemptTimeout', 'balance']);
    const res = await mesh.request('http://orders/');
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  });

  it('many concurrent calls beyond the limits that would apply are all served when off', async () => {
    // maxRequests 1 and maxPendingRequests 0 would shed every call but one; off, none is shed.
    const server = await startServer((_req, res) => setTimeout(() => res.end('ok'), 20));
    const burst = (mesh: Mesh) =>
      Promise.all(
        Array.from({ length: 10 }, async () => {
          try {
            const res = await mesh.request('http://orders/');
            await res.body.dump();
            return res.statusCode;
          } catch (error) {
            return (error as { code?: string }).code;
          }
        }),
      );
    const off = meshWith(server.address, { enabled: false, maxRequests: 1, maxPendingRequests: 0 });
    expect(await burst(off)).toEqual(Array.from({ length: 10 }, () => 200));
    // control: the same thresholds with the limits on shed all but one
    const on = meshWith(server.address, { maxRequests: 1, maxPendingRequests: 0 });
    const statuses = await burst(on);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 'INMESH_ERR_LOAD_SHED')).toHaveLength(9);
  });
});
