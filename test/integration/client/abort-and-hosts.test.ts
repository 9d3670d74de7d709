/**
 * Two edges of the attempt path on real loopback servers:
 * - a caller abort after undici already has the whole response body (small
 *   answers come with the headers) still fails the body the caller has not read;
 * - an http upstream named by an IP literal is still sent to the picked
 *   endpoint, never to the address in its name.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AbortedError, createMesh, type Mesh } from '../../../src/index.ts';
import { closeAll, hanging, startServer } from './helpers.ts';

/** Resolves on 'close' (events.once would reject on the 'error' these tests expect). */
function closed(body: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => body.on('close', () => resolve()));
}

let mesh: Mesh | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await closeAll();
});

describe('caller abort after the response ended', () => {
  it('fails the unread body with AbortedError', async () => {
    const s = await startServer((_req, res) => res.end('small'));
    mesh = createMesh({ registry: { static: { orders: [s.address] } }, env: {} });
    const ac = new AbortController();
    const res = await mesh.request('http://orders/', { signal: ac.signal });
    // Let undici take in the rest of the answer (it is tiny) before the caller aborts.
    await new Promise<void>((resolve) => setImmediate(resolve));
    ac.abort();
    await expect(res.body.text()).rejects.toBeInstanceOf(AbortedError);
  });

  it('an unread body nobody listens to: the abort fails it without an uncaught error', async () => {
    const s = await startServer((_req, res) => res.end('small'));
    mesh = createMesh({ registry: { static: { orders: [s.address] } }, env: {} });
    const ac = new AbortController();
    const res = await mesh.request('http://orders/', { signal: ac.signal });
    await new Promise<void>((resolve) => setImmediate(resolve));
    ac.abort(); // the caller ignores the response and gives up
    await closed(res.body);
    expect(res.body.errored).toBeInstanceOf(AbortedError);
    // Two more turns: an 'error' emitted with no listener would surface as an uncaught exception by now.
    await new Promise<void>((resolve) => setImmediate(resolve));
    await new Promise<void>((resolve) => setImmediate(resolve));
  });

  it("a streaming body read with on('data') only, aborted from a timer: fails it without an uncaught error", async () => {
    const s = await startServer((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('part');
      hanging.push(res);
    });
    mesh = createMesh({ registry: { static: { orders: [s.address] } }, env: {} });
    const ac = new AbortController();
    const res = await mesh.request('http://orders/', { signal: ac.signal });
    const chunks: Buffer[] = [];
    res.body.on('data', (c: Buffer) => chunks.push(c));
    setTimeout(() => ac.abort(), 5);
    await closed(res.body);
    expect(res.body.errored).toBeInstanceOf(AbortedError);
    await new Promise<void>((resolve) => setImmediate(resolve));
  });

  it('a body already read is not touched', async () => {
    const s = await startServer((_req, res) => res.end('small'));
    mesh = createMesh({ registry: { static: { orders: [s.address] } }, env: {} });
    const ac = new AbortController();
    const res = await mesh.request('http://orders/', { signal: ac.signal });
    expect(await res.body.text()).toBe('small');
    ac.abort();
    expect(res.body.errored).toBeNull();
  });
});

describe('an http upstream named by an IP literal', () => {
  it('goes to the picked endpoint, not to the address in its name', async () => {
    const endpoint = await startServer((_req, res) => res.end('endpoint'));
    // A decoy on the address of the name, same port.
    const decoy = createServer((_req, res) => res.end('decoy'));
    const listening = await new Promise<boolean>((resolve) => {
      decoy.once('error', () => resolve(false));
      decoy.listen(endpoint.port, '127.0.0.2', () => resolve(true));
    });
    expect(listening, '127.0.0.2 must be usable on loopback for this test').toBe(true);
    try {
      expect((decoy.address() as AddressInfo).port).toBe(endpoint.port);
      mesh = createMesh({ registry: { static: { '127.0.0.2': [endpoint.address] } }, env: {} });
      const res = await mesh.request(`http://127.0.0.2:${endpoint.port}/`);
      expect(await res.body.text()).toBe('endpoint');
      expect(res.endpoint).toBe(endpoint.address);
    } finally {
      decoy.closeAllConnections();
      await new Promise<void>((resolve) => decoy.close(() => resolve()));
    }
  });
});
