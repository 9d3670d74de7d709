/** maxUpstreams bounds the upstreams (registry watches + pools) that host names can create. */
import { afterEach, describe, expect, it } from 'vitest';
import { createMesh, InvalidArgumentError, type ConsulWatchOptions, type Mesh } from '../../../src/index.ts';
import { closeAll, ok, startServer } from '../client/helpers.ts';

let mesh: Mesh | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await closeAll();
});

describe('maxUpstreams', () => {
  it('a call to a new upstream beyond the limit fails with InvalidArgumentError; known ones keep working', async () => {
    const s = await startServer(ok);
    const services = { a: [s.address], b: [s.address], c: [s.address] };
    mesh = createMesh({ registry: { static: services }, telemetry: { enabled: false }, maxUpstreams: 2 });
    for (const name of ['a', 'b']) {
      const res = await mesh.request(`http://${name}/`);
      expect(res.statusCode).toBe(200);
      await res.body.dump();
    }
    const e = await mesh.request('http://c/').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect((e as Error).message).toBe(
      'maxUpstreams: this mesh already runs 2 upstreams (the limit), so "c" gets none; raise maxUpstreams if that many are meant',
    );
    expect(s.hits).toBe(2);
    const again = await mesh.request('http://a/x');
    expect(again.statusCode).toBe(200);
    await again.body.dump();
  });

  it('isMeshHost is a pure lookup: it starts no upstream (no watch) and never throws', async () => {
    const s = await startServer(ok);
    mesh = createMesh({ registry: { static: { a: [s.address] } }, telemetry: { enabled: false }, maxUpstreams: 1 });
    expect(mesh.isMeshHost('orders.service.consul')).toBe(true);
    expect(mesh.isMeshHost('v2.billing.service.dc2.consul')).toBe(true);
    expect(mesh.isMeshHost('example.com')).toBe(false);
    // Had either lookup started an upstream, the one allowed would be taken.
    const res = await mesh.request('http://a/');
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    expect(mesh.isMeshHost('a')).toBe(true);
  });

  it('a bad value is refused at createMesh, naming the field and the value', () => {
    expect(() => createMesh({ maxUpstreams: 0 })).toThrow('maxUpstreams must be an integer >= 1 (got 0)');
    expect(() => createMesh({ maxUpstreams: 1.5 })).toThrow('maxUpstreams must be an integer >= 1 (got 1.5)');
  });

  it('bad consulWatch options are refused at createMesh, naming the field and the value, not at every later Consul call', () => {
    expect(() => createMesh({ consulWatch: { maxBlockingQueries: 0 }, telemetry: { enabled: false } })).toThrow(
      new InvalidArgumentError('invalid consulWatch: maxBlockingQueries must be an integer from 1 to 10000, got 0'),
    );
    expect(() => createMesh({ consulWatch: { waitMs: 10, contendedWaitMs: 1e9 }, telemetry: { enabled: false } })).toThrow(
      /^invalid consulWatch: waitMs must be from 1000 to 600000 ms .*, got 10; contendedWaitMs must be from 1000 to 600000 ms, got 1000000000$/,
    );
    expect(() => createMesh({ consulWatch: 5 as unknown as ConsulWatchOptions, telemetry: { enabled: false } })).toThrow('invalid consulWatch: must be an object, got 5');
  });
});
