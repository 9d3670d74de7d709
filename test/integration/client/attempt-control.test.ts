/**
 * AttemptControl + MeshPool (src/client/attempt-control.ts): an attempt is
 * aborted through undici's request controller, in every phase, on a real
 * loopback server.
 */
import { once } from 'node:events';
import type { Dispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { AttemptControl, kAttemptControl } from '../../../src/client/attempt-control.ts';
import { MeshPool } from '../../../src/client/transport.ts';
import { TimeoutError } from '../../../src/errors.ts';
import { closeAll, hanging, startServer, type TestServer } from './helpers.ts';

afterEach(closeAll);

const pools: MeshPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.destroy()));
});

function poolFor(s: TestServer, connections?: number): MeshPool {
  const pool = new MeshPool(`http://${s.address}`, connections === undefined ? {} : { connections });
  pools.push(pool);
  return pool;
}

function request(pool: MeshPool, control: AttemptControl | undefined, path = '/'): Promise<Dispatcher.ResponseData> {
  return pool.request({ path, method: 'GET', [kAttemptControl]: control } as Dispatcher.RequestOptions);
}

const reason = (): TimeoutError => new TimeoutError('attempt', 50, { service: 'orders' });

describe('AttemptControl', () => {
  it('a request with a control answers as without one', async () => {
    const s = await startServer((_req, res) => res.end('ok'));
    const pool = poolFor(s);
    const control = new AttemptControl('attempt', 50, 'orders');
    const res = await request(pool, control);
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('ok');
    control.abort(reason()); // the attempt is over: an abort now is ignored
    expect(control.fired).toBe(false);
    const plain = await request(pool, undefined);
    expect(await plain.body.text()).toBe('ok');
  });

  it('aborts a sent request before its headers with the given reason', async () => {
    const s = await startServer((_req, res) => {
      hanging.push(res);
    });
    const pool = poolFor(s);
    const control = new AttemptControl('attempt', 50, 'orders');
    const pending = request(pool, control);
    await once(s.server, 'request');
    const why = reason();
    control.abort(why);
    await expect(pending).rejects.toBe(why);
    expect(s.hits).toBe(1);
  });

  it('fails a request still queued for a connection at once, and never sends it', async () => {
    const s = await startServer((req, res) => {
      if (req.url === '/hold') hanging.push(res);
      else res.end('late');
    });
    const pool = poolFor(s, 1);
    const holder = request(pool, undefined, '/hold');
    await once(s.server, 'request');
    const control = new AttemptControl('attempt', 50, 'orders');
    const queued = request(pool, control, '/queued');
    const why = reason();
    control.abort(why);
    await expect(queued).rejects.toBe(why);
    // Free the one connection: the queued request must not go out now.
    for (const r of hanging.splice(0)) r.end('held');
    expect(await (await holder).body.text()).toBe('held');
    const after = await request(pool, undefined, '/after');
    expect(await after.body.text()).toBe('late');
    expect(s.hits).toBe(2); // /hold and /after, never /queued
    // It left the queue when aborted: the one keep-alive connection was not spent on it.
    expect(s.connections).toBe(1);
  });

  it('many attempts aborted while queued cost no connection and never delay the next request', async () => {
    const s = await startServer((req, res) => {
      if (req.url === '/hold') hanging.push(res);
      else res.end('ok');
    });
    const pool = poolFor(s, 1);
    const holder = request(pool, undefined, '/hold');
    await once(s.server, 'request');
    const queued = Array.from({ length: 20 }, () => {
      const control = new AttemptControl('attempt', 50, 'orders');
      return { control, pending: request(pool, control, '/queued') };
    });
    for (const q of queued) q.control.abort(reason());
    const outcomes = await Promise.allSettled(queued.map((q) => q.pending));
    expect(outcomes.every((o) => o.status === 'rejected' && o.reason instanceof TimeoutError)).toBe(true);
    for (const r of hanging.splice(0)) r.end('held');
    await (await holder).body.text();
    const next = await request(pool, undefined, '/next');
    expect(await next.body.text()).toBe('ok');
    expect(s.hits).toBe(2);
    expect(s.connections).toBe(1);
  });

  it('aborts while the body is read: the body fails with the reason', async () => {
    const s = await startServer((_req, res) => {
      res.writeHead(200, { 'content-length': '10' });
      res.write('part');
      hanging.push(res);
    });
    const pool = poolFor(s);
    const control = new AttemptControl('attempt', 50, 'orders');
    const res = await request(pool, control);
    expect(res.statusCode).toBe(200);
    const read = res.body.text();
    const why = reason();
    control.abort(why);
    await expect(read).rejects.toBe(why);
  });

  it('forwards every handler event to the wrapped handler (a raw dispatch with a POST body)', async () => {
    const s = await startServer((req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    const pool = poolFor(s);
    const control = new AttemptControl('attempt', 1000, 'orders');
    const seen: string[] = [];
    const chunks: Buffer[] = [];
    const done = new Promise<void>((resolve, reject) => {
      pool.dispatch({ path: '/', method: 'POST', body: 'payload', [kAttemptControl]: control } as Dispatcher.DispatchOptions, {
        onRequestStart: () => seen.push('requestStart'),
        onRequestSent: () => seen.push('requestSent'),
        onBodySent: () => seen.push('bodySent'),
        onResponseStarted: () => seen.push('responseStarted'),
        onResponseStart: (_c, status) => seen.push(`responseStart ${status}`),
        onResponseData: (_c, chunk) => chunks.push(chunk),
        onResponseEnd: () => {
          seen.push('responseEnd');
          resolve();
        },
        onResponseError: (_c, error) => reject(error),
      });
    });
    await done;
    expect(seen).toEqual(expect.arrayContaining(['requestStart', 'bodySent', 'requestSent', 'responseStarted', 'responseStart 200', 'responseEnd']));
    expect(seen.indexOf('requestStart')).toBe(0);
    expect(seen.at(-1)).toBe('responseEnd');
    expect(Buffer.concat(chunks).toString()).toBe('ok');
  });

  it('timeoutError() names the bound, its length and the service', () => {
    const e = new AttemptControl('total', 1500, 'orders').timeoutError();
    expect(e).toBeInstanceOf(TimeoutError);
    expect(e).toMatchObject({ phase: 'total', timeoutMs: 1500, service: 'orders' });
  });
});
