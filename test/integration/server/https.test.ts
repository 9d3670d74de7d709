// mesh.server() around node:https: the listener form and the Server form, with a
// certificate made by the Consul binary's `tls` commands (as the client's https tests do).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SpanKind } from '@opentelemetry/api';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createMesh } from '../../../src/mesh/mesh.ts';
import { findConsulBinary } from '../../harness/consul-binary.ts';
import { registerOtel, type OtelHarness } from '../../unit/telemetry/otel-harness.ts';
import { Holds } from './helpers.ts';

const run = promisify(execFile);
let dir: string;
let tls: { key: Buffer; cert: Buffer; ca: Buffer };
let otel: OtelHarness;

beforeAll(async () => {
  otel = registerOtel();
  dir = mkdtempSync(join(tmpdir(), 'inmesh-server-https-'));
  const { path } = await findConsulBinary();
  await run(path, ['tls', 'ca', 'create'], { cwd: dir });
  await run(path, ['tls', 'cert', 'create', '-server', '-dc', 'dc1'], { cwd: dir }); // SANs include 127.0.0.1
  tls = {
    key: readFileSync(join(dir, 'dc1-server-consul-0-key.pem')),
    cert: readFileSync(join(dir, 'dc1-server-consul-0.pem')),
    ca: readFileSync(join(dir, 'consul-agent-ca.pem')),
  };
});

afterAll(async () => {
  await otel.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

async function listen(server: Server): Promise<string> {
  server.keepAliveTimeout = 10;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

it.each(['listener', 'server'] as const)('wraps an https %s: limits apply and the span says url.scheme https', async (form) => {
  const mesh = createMesh({ policy: { apiVersion: 'inmesh/v1', inbound: { maxConcurrent: 1 } }, env: {} });
  const holds = new Holds();
  const app = (req: IncomingMessage, res: ServerResponse): void => {
    void (req.url === '/hold' ? holds.hold() : Promise.resolve()).then(() => res.end('secure'));
  };
  const server = form === 'listener' ? createServer({ key: tls.key, cert: tls.cert }, mesh.server(app)) : mesh.server(createServer({ key: tls.key, cert: tls.cert }, app));
  const base = await listen(server);
  const agent = new Agent({ connect: { ca: tls.ca }, keepAliveTimeout: 10 });
  try {
    const held = request(`${base}/hold`, { dispatcher: agent });
    await holds.arrived(1);
    const shed = await request(`${base}/x`, { dispatcher: agent });
    await shed.body.dump();
    expect(shed.statusCode).toBe(503);
    holds.release();
    const ok = await held;
    expect(await ok.body.text()).toBe('secure');
    const spans = (await otel.spansWhen((s) => s.filter((x) => x.kind === SpanKind.SERVER).length >= 2)).filter((x) => x.kind === SpanKind.SERVER);
    expect(spans.map((s) => s.attributes['url.scheme'])).toEqual(['https', 'https']);
  } finally {
    otel.reset();
    await agent.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await mesh.close();
  }
});
