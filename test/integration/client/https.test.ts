/**
 * Host and SNI over https (docs/data-path.md, "Transport, Host and SNI"): the
 * pool connects to the endpoint address, the TLS servername is the caller's
 * host name and the Host header its authority; one keep-alive connection
 * serves every request (no "servername changed" reconnects); a certificate
 * that does not cover the service name fails the attempt.
 *
 * Certificates: a CA and a server certificate for `orders` made by
 * `consul tls` (the Consul binary the suite already needs), the CA added to
 * this worker's default trust with `tls.setDefaultCACertificates` (Node ≥ 22.19).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getCACertificates, setDefaultCACertificates, TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMesh, UpstreamError, type Mesh } from '../../../src/index.ts';
import { findConsulBinary } from '../../harness/consul-binary.ts';

const run = promisify(execFile);

let dir: string;
let server: Server;
let port: number;
const seen: { servername: string | false | null | undefined; host: string | undefined }[] = [];
/** The SNI of every TLS handshake, good or not. */
const handshakes: string[] = [];
const sockets = new Set<Socket>();
let savedCAs: string[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'inmesh-https-'));
  const { path } = await findConsulBinary();
  await run(path, ['tls', 'ca', 'create'], { cwd: dir });
  // SANs: server.dc1.consul, localhost, 127.0.0.1 (consul's own), orders and 127.0.0.2.
  await run(path, ['tls', 'cert', 'create', '-server', '-dc', 'dc1', '-additional-dnsname=orders', '-additional-ipaddress=127.0.0.2'], { cwd: dir });
  savedCAs = getCACertificates('default');
  setDefaultCACertificates([...savedCAs, readFileSync(join(dir, 'consul-agent-ca.pem'), 'utf8')]);
  server = createServer(
    {
      key: readFileSync(join(dir, 'dc1-server-consul-0-key.pem')),
      cert: readFileSync(join(dir, 'dc1-server-consul-0.pem')),
      // Called with the ClientHello's SNI before the server shows its certificate,
      // so it is recorded even when the client then refuses that certificate.
      SNICallback: (name, cb) => {
        handshakes.push(name);
        cb(null, undefined);
      },
    },
    (req, res) => {
      const socket = req.socket;
      seen.push({ servername: socket instanceof TLSSocket ? socket.servername : undefined, host: req.headers.host });
      res.end('ok');
    },
  );
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  setDefaultCACertificates(savedCAs);
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

let mesh: Mesh | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  seen.length = 0;
  handshakes.length = 0;
});

function meshFor(...services: string[]): Mesh {
  mesh = createMesh({ registry: { static: Object.fromEntries(services.map((s) => [s, [`127.0.0.1:${port}`]])) }, env: {} });
  return mesh;
}

describe('https upstreams', () => {
  it('sends the service name as SNI and the caller authority as Host, on kept-alive connections', async () => {
    const m = meshFor('orders');
    const calls = 10;
    for (let i = 0; i < calls; i++) {
      const res = await m.request('https://orders/items');
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('ok');
      expect(res.endpoint).toBe(`127.0.0.1:${port}`);
    }
    expect(seen).toHaveLength(calls);
    expect(new Set(seen.map((s) => `${String(s.servername)} ${String(s.host)}`))).toEqual(new Set(['orders orders']));
    // Connections are reused: no handshake per call (a servername that changed between
    // requests of one pool would make undici reconnect every time). undici may open a
    // second connection while the first is still being released, never more in sequence.
    expect(handshakes.length).toBeGreaterThanOrEqual(1);
    expect(handshakes.length).toBeLessThanOrEqual(2);
    expect(new Set(handshakes)).toEqual(new Set(['orders']));

    const withPort = await m.request('https://orders:8443/items');
    await withPort.body.text();
    expect(seen.at(-1)).toEqual({ servername: 'orders', host: 'orders:8443' });
  });

  it('sends no SNI when the host the caller used is an IP literal (RFC 6066 has none for addresses)', async () => {
    // The name is 127.0.0.2 (in the certificate), the endpoint 127.0.0.1.
    const m = meshFor('127.0.0.2');
    const warnings: Error[] = [];
    const onWarning = (w: Error): number => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const res = await m.request('https://127.0.0.2/items');
      expect(await res.body.text()).toBe('ok');
      expect(res.endpoint).toBe(`127.0.0.1:${port}`);
    } finally {
      process.off('warning', onWarning);
    }
    expect(seen).toEqual([{ servername: false, host: '127.0.0.2' }]);
    expect(handshakes).toEqual([]); // the server's SNICallback only runs for a ClientHello with SNI
    expect(warnings.map((w) => w.message).join('\n')).not.toMatch(/ServerName/);
  });

  it('checks the certificate against the IP literal the caller used, not the endpoint address', async () => {
    // 127.0.0.3 is not in the certificate; the endpoint's 127.0.0.1 is, and must not be what is checked.
    const m = meshFor('127.0.0.3');
    const error = await m.request('https://127.0.0.3/', { retries: 0 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).cause).toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    expect(String((error as UpstreamError).cause)).toContain('127.0.0.3');
    expect(seen).toEqual([]);
  });

  it('fails the attempt when the certificate does not cover the service name', async () => {
    const m = meshFor('billing');
    const error = await m.request('https://billing/', { retries: 0 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).cause).toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    expect(handshakes[0]).toBe('billing');
    expect(seen).toEqual([]);
  });
});
