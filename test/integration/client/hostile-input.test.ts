/**
 * One caller's bad input must not hurt the others: a request undici would
 * refuse before sending is the caller's error (InvalidArgumentError), never an
 * upstream failure, so it never ejects a healthy endpoint, opens the breaker,
 * spends the retry budget or is retried. Headers in every shape callers use,
 * and names such as `constructor` / `__proto__`, are sent exactly as given.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ClosedError, createMesh, InvalidArgumentError, type Mesh } from '../../../src/index.ts';
import type { IncomingMessage } from 'node:http';
import { closeAll, ok, startServer, type TestServer } from './helpers.ts';

const meshes: Mesh[] = [];
afterEach(async () => {
  await Promise.all(meshes.splice(0).map((m) => m.close()));
  await closeAll();
});

/** A mesh over `orders` at the given endpoints, with the breaker and outlier detection quick to act. */
function meshOver(addresses: string[], extra: Record<string, unknown> = {}): Mesh {
  const mesh = createMesh({
    policy: {
      defaults: {
        circuitBreaker: { enabled: true, minimumRequests: 5, errorThresholdPercent: 50, window: '10s' },
        outlierDetection: { consecutive5xx: 3, consecutiveGatewayErrors: 3, maxEjectionPercent: 100 },
        retries: { attempts: 2, retryOn: ['5xx', 'connect-failure', 'reset'] },
      },
      upstreams: { orders: { discovery: { registry: 'static', endpoints: addresses }, ...extra } },
    },
    telemetry: { enabled: false },
  });
  meshes.push(mesh);
  return mesh;
}

/** The raw header lines a server received (names as sent, lower-cased by Node). */
function rawHeaders(req: IncomingMessage): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) out.push([req.rawHeaders[i]!.toLowerCase(), req.rawHeaders[i + 1]!]);
  return out;
}

const BAD_CALLS: [string, Record<string, unknown>, RegExp][] = [
  ['a CR/LF in a header value', { headers: { 'x-a': 'v\r\nx-injected: 1' } }, /x-a.*U\+000D/],
  ['a NUL in a header value', { headers: { 'x-a': 'v\u0000' } }, /U\+0000/],
  ['a character above U+00FF in a header value', { headers: { 'x-a': 'caf\u20ac' } }, /U\+20AC/],
  ['an invalid header name', { headers: { 'bad name': 'v' } }, /"bad name" is not a valid header name/],
  ['a method that is not a token', { method: 'GE T' }, /method must be an HTTP method token \(got "GE T"\)/],
  ['a body of the wrong type', { method: 'POST', body: 42 }, /body must be .* \(got 42\)/],
  ['a signal that is not an AbortSignal', { signal: { aborted: false } }, /signal must be an AbortSignal/],
  ['a per-call timeout above 24 h', { timeout: 3e9 }, /timeout must be a number of ms from 0 to 86400000/],
];

describe("a caller's bad request", () => {
  it.each(BAD_CALLS)('%s fails at once with InvalidArgumentError naming it, and nothing is sent', async (_name, options, message) => {
    const s = await startServer(ok);
    const mesh = meshOver([s.address]);
    const error = await mesh.request('http://orders/x', options as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as Error).message).toMatch(message);
    expect(s.hits).toBe(0);
  });

  it('30 bad calls neither eject the endpoint nor open the breaker: the next good call is served', async () => {
    const a = await startServer(ok);
    const b = await startServer(ok);
    const mesh = meshOver([a.address, b.address]);
    for (let i = 0; i < 30; i++) {
      const [, options] = BAD_CALLS[i % BAD_CALLS.length]!;
      await expect(mesh.request('http://orders/x', options as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    expect(a.hits + b.hits).toBe(0);
    const status = mesh.discoveryStatus('orders')!;
    expect([status.endpoints, status.available]).toEqual([2, 2]);
    for (let i = 0; i < 4; i++) {
      const res = await mesh.request('http://orders/ok');
      expect(res.statusCode).toBe(200);
      await res.body.dump();
    }
    expect(a.hits).toBeGreaterThan(0);
    expect(b.hits).toBeGreaterThan(0);
  });

  it('what undici refuses beyond the checks (a transfer-encoding header, expect) is InvalidArgumentError with undici\'s code as cause, tried once, counted nowhere', async () => {
    const s = await startServer(ok);
    const mesh = meshOver([s.address]);
    for (let i = 0; i < 12; i++) {
      const te = await mesh.request('http://orders/x', { method: 'POST', body: 'x', headers: { 'transfer-encoding': 'chunked' } }).catch((e: unknown) => e);
      expect(te).toBeInstanceOf(InvalidArgumentError);
      expect((te as Error).message).toMatch(/request refused before sending: invalid transfer-encoding header/);
      expect(((te as Error).cause as { code: string }).code).toBe('UND_ERR_INVALID_ARG');
      const expect100 = await mesh.request('http://orders/x', { headers: { expect: '100-continue' } }).catch((e: unknown) => e);
      expect(expect100).toBeInstanceOf(InvalidArgumentError);
      expect(((expect100 as Error).cause as { code: string }).code).toBe('UND_ERR_NOT_SUPPORTED');
    }
    expect(s.hits).toBe(0);
    expect(mesh.discoveryStatus('orders')!.available).toBe(1);
    const res = await mesh.request('http://orders/ok');
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  });
});

describe('headers are sent exactly as given', () => {
  async function seen(send: (mesh: Mesh, url: string) => Promise<unknown>): Promise<[string, string][]> {
    let got: [string, string][] = [];
    const s: TestServer = await startServer((req, res) => {
      got = rawHeaders(req).filter(([k]) => (k.startsWith('x-') && !k.startsWith('x-inmesh-')) || k === 'constructor' || k === '__proto__');
      res.end('ok');
    });
    const mesh = meshOver([s.address]);
    await send(mesh, 'http://orders/h');
    return got;
  }

  const drain = async (r: { body: { dump(): Promise<unknown> } }): Promise<void> => {
    await r.body.dump();
  };

  it('as an array of pairs', async () => {
    const got = await seen(async (m, u) => drain(await m.request(u, { headers: [['x-a', '1'], ['x-b', '2'], ['x-a', '3']] as never })));
    expect(got).toEqual([['x-a', '1'], ['x-a', '3'], ['x-b', '2']]);
  });

  it('as a Headers object', async () => {
    const got = await seen(async (m, u) => drain(await m.request(u, { headers: new Headers({ 'x-a': '1', 'x-b': '2' }) })));
    expect(got).toEqual([['x-a', '1'], ['x-b', '2']]);
  });

  it('named constructor and __proto__ (record, pairs, and mesh.fetch)', async () => {
    const record = JSON.parse('{"constructor":"c","__proto__":"p","x-a":"1"}') as Record<string, string>;
    expect(await seen(async (m, u) => drain(await m.request(u, { headers: record })))).toEqual([['constructor', 'c'], ['__proto__', 'p'], ['x-a', '1']]);
    expect(await seen(async (m, u) => drain(await m.request(u, { headers: [['constructor', 'c']] as never })))).toEqual([['constructor', 'c']]);
    const viaFetch = await seen(async (m, u) => (await m.fetch(u, { headers: [['constructor', 'c'], ['__proto__', 'p']] })).text());
    expect(viaFetch).toEqual([['constructor', 'c'], ['__proto__', 'p']]);
  });

  it('a ring_hash on a header named constructor hashes the header, not Object.prototype.constructor', async () => {
    const servers = await Promise.all([startServer(ok), startServer(ok), startServer(ok)]);
    const mesh = meshOver(
      servers.map((s) => s.address),
      { loadBalancer: { policy: 'ring_hash', hashOn: { header: 'constructor' } } },
    );
    for (let i = 0; i < 9; i++) await drain(await mesh.request('http://orders/', { headers: { constructor: 'same-user' } }));
    // one key: every call lands on one endpoint
    expect(servers.map((s) => s.hits).sort()).toEqual([0, 0, 9]);
  });
});

describe('odds and ends', () => {
  it('after close, mesh.request and mesh.fetch fail with ClosedError for mesh and other hosts alike, and send nothing', async () => {
    const s = await startServer(ok);
    const mesh = meshOver([s.address]);
    await mesh.close();
    for (const url of ['http://orders/', `http://${s.address}/`]) {
      await expect(mesh.request(url)).rejects.toBeInstanceOf(ClosedError);
      const f = await mesh.fetch(url).catch((e: unknown) => e);
      expect(f).toBeInstanceOf(TypeError);
      expect((f as Error).cause).toBeInstanceOf(ClosedError);
    }
    expect(s.hits).toBe(0);
  });

  it('file: and data: URLs get InvalidArgumentError (mesh.fetch: as the cause of its TypeError)', async () => {
    const mesh = meshOver(['127.0.0.1:1']);
    for (const url of ['file:///etc/passwd', 'data:text/plain,hello']) {
      const r = await mesh.request(url).catch((e: unknown) => e);
      expect(r).toBeInstanceOf(InvalidArgumentError);
      expect((r as Error).message).toMatch(/only http: and https: URLs/);
      const f = await mesh.fetch(url).catch((e: unknown) => e);
      expect(f).toBeInstanceOf(TypeError);
      expect((f as Error).cause).toBeInstanceOf(InvalidArgumentError);
    }
  });

  it('credentials in the URL are refused, as fetch does, without echoing the password', async () => {
    const s = await startServer(ok);
    const mesh = meshOver([s.address]);
    for (const url of ['http://u:hunter2@orders/', `http://u:hunter2@${s.address}/`]) {
      const r = await mesh.request(url).catch((e: unknown) => e);
      expect(r).toBeInstanceOf(InvalidArgumentError);
      expect((r as Error).message).toMatch(/credentials in the URL are refused/);
      expect((r as Error).message).not.toContain('hunter2');
      const f = await mesh.fetch(url).catch((e: unknown) => e);
      expect((f as Error).cause).toBeInstanceOf(InvalidArgumentError);
      expect((f as Error & { cause: Error }).cause.message).not.toContain('hunter2');
    }
    expect(s.hits).toBe(0);
  });
});
