/**
 * mesh.fetch behaves like WHATWG fetch: its errors (abort → signal.reason, the
 * rest → TypeError with the inmesh error as cause), its redirects (follow /
 * manual / error, each hop decided again: mesh or pass-through) and its
 * statusText. Real loopback servers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fetch as undiciFetch, request as undiciRequest } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { createMesh, ErrorCodes, InvalidArgumentError, isInmeshError, NoEndpointsError, type Mesh } from '../../../src/index.ts';
import { closeAll, hanging, startServer, type TestServer } from './helpers.ts';

let mesh: Mesh | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await closeAll();
});

interface Seen {
  method: string | undefined;
  url: string | undefined;
  host: string | undefined;
  type: string | null;
  auth: string | null;
  body: string;
  referer?: string | undefined;
}

/**
 * `/r/<status>/<n>/<target>`: answers <status> with Location `/r/<status>/<n-1>/<target>`
 * until n = 0, then Location = <target> (URL-decoded; `-` = `/final`); `/final` and
 * everything else echo what was received.
 */
function redirector(seen: Seen[]): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({
        method: req.method,
        url: req.url,
        host: req.headers.host,
        type: req.headers['content-type'] ?? null,
        auth: req.headers.authorization ?? null,
        body: Buffer.concat(chunks).toString(),
        referer: req.headers.referer,
      });
      const m = /^\/r\/(\d+)\/(\d+)\/(.*)$/.exec(req.url ?? '');
      if (m === null) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(seen.at(-1)));
        return;
      }
      const [, status, n, target] = m as unknown as [string, string, string, string];
      res.statusCode = Number(status);
      const left = Number(n);
      res.setHeader('location', left > 0 ? `/r/${status}/${left - 1}/${target}` : target === '-' ? '/final' : decodeURIComponent(target));
      res.end('redirecting');
    });
  };
}

async function meshWith(seen: Seen[]): Promise<{ s: TestServer; m: Mesh }> {
  const s = await startServer(redirector(seen));
  mesh = createMesh({ registry: { static: { orders: [s.address], users: [s.address] } }, telemetry: { enabled: false } });
  return { s, m: mesh };
}

describe('mesh.fetch errors are fetch errors', () => {
  it('a caller abort rejects with signal.reason: a DOMException AbortError without a reason, the reason given otherwise', async () => {
    const s = await startServer((_req, res) => hanging.push(res));
    mesh = createMesh({ registry: { static: { orders: [s.address] } }, telemetry: { enabled: false } });
    const ac = new AbortController();
    const p = mesh.fetch('http://orders/', { signal: ac.signal });
    while (s.hits === 0) await new Promise((r) => setImmediate(r));
    ac.abort();
    const e = await p.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DOMException);
    expect((e as DOMException).name).toBe('AbortError');
    expect(e).toBe(ac.signal.reason);

    const ac2 = new AbortController();
    const reason = new Error('gave up');
    const p2 = mesh.fetch('http://orders/', { signal: ac2.signal });
    while (s.hits === 1) await new Promise((r) => setImmediate(r));
    ac2.abort(reason);
    expect(await p2.catch((x: unknown) => x)).toBe(reason);
    expect(s.hits).toBe(2); // never retried

    const already = AbortSignal.abort();
    expect(await mesh.fetch('http://orders/', { signal: already }).catch((x: unknown) => x)).toBe(already.reason);
  });

  it('other failures reject with TypeError("fetch failed") whose cause is the typed inmesh error', async () => {
    mesh = createMesh({ registry: { static: { orders: [] } }, telemetry: { enabled: false } });
    const e = (await mesh.fetch('http://orders/').catch((x: unknown) => x)) as TypeError;
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toBe('fetch failed');
    expect(isInmeshError(e.cause)).toBe(true);
    expect(e.cause).toBeInstanceOf(NoEndpointsError);
    expect((e.cause as NoEndpointsError).code).toBe(ErrorCodes.NO_ENDPOINTS);

    const bad = (await mesh.fetch('not a url').catch((x: unknown) => x)) as TypeError;
    expect(bad).toBeInstanceOf(TypeError);
    expect(bad.message).toBe('Failed to parse URL from not a url');
    expect(bad.cause).toBeInstanceOf(InvalidArgumentError);

    const opt = (await mesh.fetch('http://orders/', { timeout: -1 }).catch((x: unknown) => x)) as TypeError;
    expect(opt).toBeInstanceOf(TypeError);
    expect((opt.cause as InvalidArgumentError).code).toBe(ErrorCodes.INVALID_ARGUMENT);
  });

  it('statusText is the standard reason phrase (mesh.fetch, and undici fetch/request through mesh.dispatcher)', async () => {
    const s = await startServer((req, res) => {
      res.statusCode = req.url === '/missing' ? 404 : 200;
      res.end();
    });
    mesh = createMesh({ registry: { static: { orders: [s.address] } }, telemetry: { enabled: false } });
    const a = await mesh.fetch('http://orders/');
    expect([a.status, a.statusText]).toEqual([200, 'OK']);
    const b = await mesh.fetch('http://orders/missing');
    expect([b.status, b.statusText]).toEqual([404, 'Not Found']);
    const c = await undiciFetch('http://orders/missing', { dispatcher: mesh.dispatcher });
    expect([c.status, c.statusText]).toEqual([404, 'Not Found']);
    await c.body?.cancel();
    const d = await undiciRequest('http://orders/', { dispatcher: mesh.dispatcher });
    expect([d.statusCode, d.statusText]).toEqual([200, 'OK']);
    await d.body.dump();
  });
});

describe('mesh.fetch bodies', () => {
  it('cancelling an unread body is clean (Readable.toWeb threw ERR_INVALID_STATE out of a data listener here) and frees the body', async () => {
    const s = await startServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ a: 1 }));
    });
    mesh = createMesh({ registry: { static: { orders: [s.address] } }, telemetry: { enabled: false } });
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown): void => {
      uncaught.push(e);
    };
    process.on('uncaughtException', onUncaught);
    try {
      for (let i = 0; i < 5; i++) {
        const res = await mesh.fetch('http://orders/');
        await res.body?.cancel();
        await new Promise((r) => setImmediate(r));
      }
      // and a body read to the end, chunk by chunk, still works
      const big = await startServer((_req, res) => res.end('y'.repeat(200_000)));
      const m2 = createMesh({ registry: { static: { orders: [big.address] } }, telemetry: { enabled: false } });
      try {
        expect((await (await m2.fetch('http://orders/')).text()).length).toBe(200_000);
      } finally {
        await m2.close();
      }
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    expect(uncaught).toEqual([]);
  });
});

describe('mesh.fetch redirects', () => {
  it("follows by default (302 GET, two hops): final url, redirected, the Host of each hop; 'manual' returns the 3xx", async () => {
    const seen: Seen[] = [];
    const { m } = await meshWith(seen);
    const res = await m.fetch('http://orders/r/302/1/-', { headers: { 'x-a': '1' } });
    expect(res.status).toBe(200);
    expect(res.redirected).toBe(true);
    expect(res.url).toBe('http://orders/final');
    expect(await res.json()).toMatchObject({ method: 'GET', url: '/final', host: 'orders' });
    expect(seen.map((x) => x.url)).toEqual(['/r/302/1/-', '/r/302/0/-', '/final']);

    seen.length = 0;
    const manual = await m.fetch('http://orders/r/302/0/-', { redirect: 'manual' });
    expect(manual.status).toBe(302);
    expect(manual.redirected).toBe(false);
    expect(manual.headers.get('location')).toBe('/final');
    expect(await manual.text()).toBe('redirecting');
    expect(seen).toHaveLength(1);
  });

  it("redirect: 'error' rejects with a TypeError; more than 20 redirects reject; exactly 20 are followed", async () => {
    const seen: Seen[] = [];
    const { m } = await meshWith(seen);
    const e = (await m.fetch('http://orders/r/302/0/-', { redirect: 'error' }).catch((x: unknown) => x)) as TypeError;
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toBe('fetch failed');
    expect((e.cause as Error).message).toBe("unexpected redirect (302) with redirect: 'error'");
    expect(seen).toHaveLength(1);

    seen.length = 0;
    const ok = await m.fetch('http://orders/r/302/19/-'); // 20 redirects, then /final
    expect(ok.status).toBe(200);
    expect(seen).toHaveLength(21);
    await ok.body?.cancel();

    seen.length = 0;
    const tooMany = (await m.fetch('http://orders/r/302/20/-').catch((x: unknown) => x)) as TypeError;
    expect(tooMany).toBeInstanceOf(TypeError);
    expect((tooMany.cause as Error).message).toBe('more than 20 redirects');
    expect(seen).toHaveLength(21);
  });

  it('303 and POST on 301/302 become a GET without body or content-type; 307/308 re-send a buffered body and the method', async () => {
    const seen: Seen[] = [];
    const { m } = await meshWith(seen);
    for (const status of [303, 301, 302]) {
      seen.length = 0;
      const res = await m.fetch(`http://orders/r/${status}/0/-`, { method: 'POST', body: 'payload', headers: { 'content-type': 'text/x-test' } });
      expect(await res.json()).toEqual({ method: 'GET', url: '/final', host: 'orders', type: null, auth: null, body: '' });
      expect(seen[0]).toMatchObject({ method: 'POST', body: 'payload', type: 'text/x-test' });
    }
    for (const status of [307, 308]) {
      seen.length = 0;
      const res = await m.fetch(`http://orders/r/${status}/0/-`, { method: 'POST', body: 'payload', headers: { 'content-type': 'text/x-test' } });
      expect(await res.json()).toMatchObject({ method: 'POST', url: '/final', type: 'text/x-test', body: 'payload' });
    }
    seen.length = 0;
    const put = await m.fetch('http://orders/r/301/0/-', { method: 'PUT', body: 'kept' });
    expect(await put.json()).toMatchObject({ method: 'PUT', body: 'kept' });
  });

  it('a streamed body is followed only where the redirect drops it (303), and refused where it would be sent again (307)', async () => {
    const seen: Seen[] = [];
    const { m } = await meshWith(seen);
    const stream = (): ReadableStream<Uint8Array> =>
      new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode('streamed'));
          c.close();
        },
      });
    const res = await m.fetch('http://orders/r/303/0/-', { method: 'POST', body: stream(), duplex: 'half' });
    expect(await res.json()).toMatchObject({ method: 'GET', body: '' });
    seen.length = 0;
    const e = (await m.fetch('http://orders/r/307/0/-', { method: 'POST', body: stream(), duplex: 'half' }).catch((x: unknown) => x)) as TypeError;
    expect(e).toBeInstanceOf(TypeError);
    expect((e.cause as Error).message).toMatch(/^cannot follow a 307 redirect: the request body was streamed/);
    expect(seen.map((x) => [x.method, x.body])).toEqual([['POST', 'streamed']]);
  });

  it('each hop is decided again: mesh → pass-through → mesh; another origin loses authorization', async () => {
    const seen: Seen[] = [];
    const { s, m } = await meshWith(seen);
    // orders redirects to the raw address (pass-through), which redirects to http://users/final (mesh)
    const viaRaw = encodeURIComponent(`http://${s.address}/r/307/0/${encodeURIComponent('http://users/final')}`);
    const res = await m.fetch(`http://orders/r/307/0/${viaRaw}`, { method: 'POST', body: 'b', headers: { authorization: 'secret' } });
    expect(res.status).toBe(200);
    expect(res.url).toBe('http://users/final');
    expect(res.redirected).toBe(true);
    expect(seen.map((x) => [x.host, x.method, x.body, x.auth])).toEqual([
      ['orders', 'POST', 'b', 'secret'],
      [s.address, 'POST', 'b', null],
      ['users', 'POST', 'b', null],
    ]);
    await res.body?.cancel();

    // a pass-through hop keeps the caller's other init fields (here referrer + referrerPolicy, which the platform fetch turns into Referer)
    seen.length = 0;
    const r = await m.fetch(`http://orders/r/302/0/${encodeURIComponent(`http://${s.address}/final`)}`, {
      referrer: 'http://client.example/page',
      referrerPolicy: 'unsafe-url',
    });
    expect(await r.json()).toMatchObject({ host: s.address, url: '/final', referer: 'http://client.example/page' });

    // a pass-through first hop redirecting to a mesh host goes through the mesh
    seen.length = 0;
    const back = await m.fetch(`http://${s.address}/r/302/0/${encodeURIComponent('http://orders/final')}`);
    expect(back.url).toBe('http://orders/final');
    expect(await back.json()).toMatchObject({ host: 'orders', url: '/final' });
  });
});
