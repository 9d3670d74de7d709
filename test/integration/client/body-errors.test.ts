/**
 * Errors met while the caller reads the response BODY are translated at the
 * one boundary (src/client/translate.ts): a server that sends half a body and
 * then cuts the connection.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { request as undiciRequest } from 'undici';
import { AbortedError, createMesh, ErrorCodes, isInmeshError, UpstreamError, type Mesh } from '../../../src/index.ts';
import { closeAll, policyFor, startServer, type TestServer } from './helpers.ts';

let mesh: Mesh | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await closeAll();
});

/** Announces 100 bytes, writes 50, then destroys the socket once they are flushed. */
function halfBody(): Promise<TestServer> {
  return startServer((_req, res) => {
    res.writeHead(200, { 'content-length': '100' });
    res.write('x'.repeat(50), () => res.socket?.destroy());
  });
}

function meshFor(s: TestServer, defaults: Record<string, unknown> = {}): Mesh {
  return createMesh({ policy: policyFor({ orders: { endpoints: [s.address] } }, defaults), telemetry: { enabled: false } });
}

function expectBodyUpstreamError(e: unknown, s: TestServer): void {
  expect(e).toBeInstanceOf(UpstreamError);
  const u = e as UpstreamError;
  expect(u.code).toBe(ErrorCodes.UPSTREAM);
  expect(u.phase).toBe('body');
  expect(u.attempts).toEqual([{ endpoint: s.address, error: 'UND_ERR_SOCKET' }]);
  expect(u.message).toBe(`orders: reading the response body failed (UND_ERR_SOCKET from ${s.address})`);
  expect(isInmeshError(u.cause)).toBe(false);
  expect((u.cause as { code?: string }).code).toBe('UND_ERR_SOCKET');
}

describe('errors while reading the response body', () => {
  it('mesh.request: body.text() rejects with UpstreamError(phase body), the SocketError as cause', async () => {
    const s = await halfBody();
    mesh = meshFor(s);
    const res = await mesh.request('http://orders/');
    expect(res.statusCode).toBe(200);
    const e = await res.body.text().catch((x: unknown) => x);
    expectBodyUpstreamError(e, s);
    expect(res.body.errored).toBe(e);
  });

  it('mesh.request with a deadline (attempt signal in use): async iteration sees the same translated error', async () => {
    const s = await halfBody();
    mesh = meshFor(s, { timeouts: { request: '5s', perTry: '2s' } });
    const res = await mesh.request('http://orders/');
    let got = 0;
    const e = await (async () => {
      for await (const chunk of res.body) got += (chunk as Buffer).length;
    })().catch((x: unknown) => x);
    expect(got).toBe(50);
    expectBodyUpstreamError(e, s);
  });

  it('mesh.fetch: res.text() rejects like WHATWG fetch, TypeError("terminated") whose cause is the inmesh error', async () => {
    const s = await halfBody();
    mesh = meshFor(s);
    const res = await mesh.fetch('http://orders/');
    const e = (await res.text().catch((x: unknown) => x)) as TypeError;
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toBe('terminated');
    expectBodyUpstreamError(e.cause, s);
  });

  it('mesh.dispatcher: undici.request through the mesh reports the translated error', async () => {
    const s = await halfBody();
    mesh = meshFor(s);
    const res = await undiciRequest('http://orders/', { dispatcher: mesh.dispatcher });
    const e = await res.body.text().catch((x: unknown) => x);
    expectBodyUpstreamError(e, s);
  });

  it('a caller abort while reading the body → AbortedError (mesh.request), signal.reason (mesh.fetch)', async () => {
    const s = await startServer((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('x'.repeat(50)); // and never more
    });
    mesh = meshFor(s);
    const ac = new AbortController();
    const res = await mesh.request('http://orders/', { signal: ac.signal });
    const text = res.body.text();
    ac.abort();
    const e = await text.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AbortedError);
    expect((e as AbortedError).code).toBe(ErrorCodes.ABORTED);

    const ac2 = new AbortController();
    const reason = new Error('caller gave up');
    const r2 = await mesh.fetch('http://orders/', { signal: ac2.signal });
    const t2 = r2.text();
    ac2.abort(reason);
    expect(await t2.catch((x: unknown) => x)).toBe(reason);
  });

  it("an error the caller passes to body.destroy(err) is the caller's and stays as it is", async () => {
    const s = await startServer((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('x'.repeat(50));
    });
    mesh = meshFor(s);
    const res = await mesh.request('http://orders/');
    const mine = new Error('mine');
    const text = res.body.text();
    res.body.destroy(mine);
    expect(await text.catch((x: unknown) => x)).toBe(mine);
  });

  it('a good body is untouched: every byte arrives as sent, and it ends with no error, also when destroyed after its end', async () => {
    // Every byte value, over many chunks.
    const payload = randomBytes(512 * 1024);
    const s = await startServer((_req, res) => res.writeHead(200, { 'content-length': String(payload.length) }).end(payload));
    mesh = meshFor(s);

    const res = await mesh.request('http://orders/');
    let chunks = 0;
    const parts: Buffer[] = [];
    for await (const chunk of res.body) {
      chunks++;
      parts.push(chunk as Buffer);
    }
    expect(chunks).toBeGreaterThan(1);
    expect(Buffer.concat(parts).equals(payload)).toBe(true);
    expect(res.body.errored).toBeNull();
    // A consumer's destroy() after the end is no error to translate.
    res.body.destroy();
    expect(res.body.errored).toBeNull();

    const fetched = await mesh.fetch('http://orders/');
    expect(Buffer.from(await fetched.arrayBuffer()).equals(payload)).toBe(true);
  });
});
