/**
 * createMesh reads its configuration from code, the environment and a policy
 * file (code > env > file > defaults) and feeds each upstream from the registry
 * its discovery block names: static (policy endpoints, INMESH_ENDPOINTS_*) or file.
 */
import { once } from 'node:events';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { createMesh, type Mesh } from '../../../src/index.ts';
import { captureLogger } from '../../harness/registry-helpers.ts';

async function server(name: string): Promise<{ server: Server; address: string }> {
  const s = createServer((_req, res) => res.end(name));
  s.keepAliveTimeout = 10;
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return { server: s, address: `127.0.0.1:${(s.address() as AddressInfo).port}` };
}

describe('createMesh configuration sources', () => {
  const closers: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c();
  });
  const track = (m: Mesh): Mesh => (closers.push(() => m.close()), m);
  const up = async (name: string) => {
    const s = await server(name);
    closers.push(() => new Promise((r) => s.server.close(r)));
    s.server.closeAllConnections();
    return s;
  };

  it('takes endpoints from INMESH_ENDPOINTS_<SERVICE> and timeouts from INMESH_* variables', async () => {
    const a = await up('a');
    const mesh = track(
      createMesh({
        env: { INMESH_ENDPOINTS_ORDERS_API: a.address, INMESH_TIMEOUT_REQUEST: '1500ms', INMESH_TRACING: 'false' },
      }),
    );
    expect(mesh.isMeshHost('orders-api')).toBe(true);
    expect(mesh.isMeshHost('example.org')).toBe(false);
    const res = await mesh.request('http://orders-api/x');
    expect(await res.body.text()).toBe('a');
    expect(res.endpoint).toBe(a.address);
    expect(mesh.policy.defaults.timeouts.request).toBe(1500);
    expect(mesh.config.sources['policy.defaults.timeouts.request']).toBe('env:INMESH_TIMEOUT_REQUEST');
  });

  it("static endpoints that the policy's discovery.tags filter out: the NoEndpointsError says so", async () => {
    const a = await up('a');
    const mesh = track(
      createMesh({
        env: { INMESH_ENDPOINTS_ORDERS: a.address, INMESH_TRACING: 'false' },
        policy: { apiVersion: 'inmesh/v1', upstreams: { orders: { discovery: { tags: ['v2'] } } } },
      }),
    );
    const error = await mesh.request('http://orders/x').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'INMESH_ERR_NO_ENDPOINTS' });
    expect((error as Error).message).toContain('1 endpoint is listed for orders, but none carries every tag of discovery.tags ["v2"]');
  });

  it('reads a policy file, lets the environment beat it and code beat both', async () => {
    const a = await up('a');
    const dir = mkdtempSync(join(tmpdir(), 'inmesh-mesh-'));
    const file = join(dir, 'inmesh.yaml');
    writeFileSync(
      file,
      [
        'apiVersion: inmesh/v1',
        'defaults:',
        '  timeouts: { request: 9s, connect: 4s }',
        '  retries: { attempts: 3 }',
        'upstreams:',
        '  orders:',
        '    discovery: { registry: static, endpoints: ["' + a.address + '"] }',
      ].join('\n'),
    );
    const mesh = track(
      createMesh({
        env: { INMESH_POLICY_FILE: file, INMESH_TIMEOUT_REQUEST: '5s', INMESH_RETRY_ATTEMPTS: '1' },
        policy: { defaults: { retries: { attempts: 0 } } },
        telemetry: { enabled: false },
      }),
    );
    expect(mesh.policy.defaults.timeouts.connect).toBe(4000); // file
    expect(mesh.policy.defaults.timeouts.request).toBe(5000); // env over file
    expect(mesh.policy.defaults.retries.attempts).toBe(0); // code over env
    const res = await mesh.request('http://orders/');
    expect(await res.body.text()).toBe('a');
  });

  it('a bad variable fails createMesh with the variable, the value and what was expected', () => {
    expect(() => createMesh({ env: { INMESH_RETRY_ATTEMPTS: 'lots' } })).toThrow(
      /INMESH_RETRY_ATTEMPTS: expected an integer from 0 to 10 \(got "lots"\)/,
    );
  });

  it('never shows the Consul token in mesh.config', () => {
    const mesh = track(createMesh({ env: { CONSUL_HTTP_TOKEN: 'c0ffee-secret-token' }, telemetry: { enabled: false } }));
    expect(inspect(mesh.config, { depth: 10 })).not.toContain('c0ffee-secret-token');
    expect(JSON.stringify(mesh.config)).not.toContain('c0ffee-secret-token');
    expect(mesh.config.consul.token?.reveal()).toBe('c0ffee-secret-token');
  });

  it('follows a file registry: a change in the file moves traffic', async () => {
    const a = await up('a');
    const b = await up('b');
    const dir = mkdtempSync(join(tmpdir(), 'inmesh-reg-'));
    const file = join(dir, 'endpoints.json');
    writeFileSync(file, JSON.stringify({ services: { catalog: [a.address] } }));
    const mesh = track(
      createMesh({
        env: {},
        telemetry: { enabled: false },
        policy: { upstreams: { catalog: { discovery: { registry: 'file', file } } } },
      }),
    );
    expect(await (await mesh.request('http://catalog/')).body.text()).toBe('a');
    // Replace the file the way editors and config tools do: write aside, rename over.
    writeFileSync(`${file}.tmp`, JSON.stringify({ services: { catalog: [b.address] } }));
    renameSync(`${file}.tmp`, file);
    // Bounded wait for the watcher (debounced) to pick up the change.
    const deadline = Date.now() + 5_000;
    let body = 'a';
    while (body !== 'b' && Date.now() < deadline) {
      body = await (await mesh.request('http://catalog/')).body.text();
      if (body !== 'b') await new Promise((r) => setTimeout(r, 25));
    }
    expect(body).toBe('b');
  });

  it('logs each unknown CONSUL_* / INMESH_* variable once per process, however many meshes', () => {
    const logger = captureLogger();
    const name = `CONSUL_HTTP_TOKKEN_${process.pid}`;
    const env = { [name]: 'x', INMESH_TRACING: 'false' };
    track(createMesh({ env, logger }));
    track(createMesh({ env, logger }));
    const lines = logger.warnings().filter((w) => w.includes(name));
    expect(lines).toEqual([`${name} is not a Consul variable inmesh reads; it is ignored`]);
  });
});
