// The Express middleware and the Fastify plugin on the same inbound core, on real servers on 127.0.0.1:0.
import { createServer } from 'node:http';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes, TimeoutError } from '../../../src/errors.ts';
import { createMesh, type Mesh } from '../../../src/mesh/mesh.ts';
import type { PolicyDocument } from '../../../src/policy/index.ts';
import { currentDeadline } from '../../../src/core/deadline-context.ts';
import { inmeshExpress } from '../../../src/server/express.ts';
import { requestSignal } from '../../../src/server/inbound.ts';
import { inmeshFastify } from '../../../src/server/fastify.ts';
import { Holds, client, close, deferred, listen } from './helpers.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

function meshWith(inbound: PolicyDocument['inbound']): Mesh {
  const mesh = createMesh({ policy: { apiVersion: 'inmesh/v1', inbound }, env: {}, telemetry: { enabled: false } });
  cleanup.push(() => mesh.close());
  return mesh;
}

function http() {
  const c = client();
  cleanup.push(() => c.close());
  return c;
}

/** What the app saw of one request. */
interface Seen {
  calls: number;
  holds: Holds;
  deadlineLeft: number | undefined;
  aborted: ReturnType<typeof deferred<unknown>>;
}

type Framework = (mesh: Mesh, seen: Seen) => Promise<string>;

const frameworks: [string, Framework][] = [
  [
    'express',
    async (mesh, seen) => {
      const app = express();
      app.use(inmeshExpress(mesh));
      app.get('/orders/:id', async (req, res) => {
        seen.calls++;
        const signal = requestSignal(req);
        signal.addEventListener('abort', () => seen.aborted.resolve(signal.reason));
        if (req.params.id === 'hold') await seen.holds.hold();
        if (req.params.id === 'never') return;
        await Promise.resolve();
        const d = currentDeadline();
        seen.deadlineLeft = d === undefined ? undefined : d - performance.now();
        res.json({ id: req.params.id });
      });
      const server = createServer(app);
      const base = await listen(server);
      cleanup.push(() => close(server));
      return base;
    },
  ],
  [
    'fastify',
    async (mesh, seen) => {
      const app = Fastify();
      await app.register(inmeshFastify, { mesh });
      app.post('/orders/:id', async (request) => ({ id: (request.params as { id: string }).id, body: request.body }));
      app.get('/orders/:id', async (request, reply) => {
        seen.calls++;
        const signal = requestSignal(request);
        signal.addEventListener('abort', () => seen.aborted.resolve(signal.reason));
        const { id } = request.params as { id: string };
        if (id === 'hold') await seen.holds.hold();
        if (id === 'never') return new Promise(() => undefined);
        await Promise.resolve();
        const d = currentDeadline();
        seen.deadlineLeft = d === undefined ? undefined : d - performance.now();
        return reply.send({ id });
      });
      await app.listen({ port: 0, host: '127.0.0.1' });
      cleanup.push(() => app.close());
      const addr = app.server.address();
      return `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`;
    },
  ],
];

function seen(): Seen {
  return { calls: 0, holds: new Holds(), deadlineLeft: undefined, aborted: deferred<unknown>() };
}

describe.each(frameworks)('%s', (_name, start) => {
  it('sheds beyond inbound.maxConcurrent with 503 + Retry-After, the handler never called', async () => {
    const s = seen();
    const base = await start(meshWith({ maxConcurrent: 1 }), s);
    const c = http();
    const held = c.get(`${base}/orders/hold`);
    await s.holds.arrived(1);
    const shed = await c.get(`${base}/orders/2`);
    expect(shed.status).toBe(503);
    expect(shed.headers['retry-after']).toBe('1');
    expect(shed.json().error).toMatchObject({ reason: 'load_shed', code: ErrorCodes.LOAD_SHED });
    expect(s.calls).toBe(1);
    s.holds.release();
    expect((await held).json()).toEqual({ id: 'hold' });
    expect((await c.get(`${base}/orders/3`)).status).toBe(200);
  });

  it('answers 429 + Retry-After over inbound.rateLimit, the handler never called', async () => {
    const s = seen();
    const base = await start(meshWith({ rateLimit: { requestsPerSecond: 1, burst: 1 } }), s);
    const c = http();
    expect((await c.get(`${base}/orders/1`)).status).toBe(200);
    const limited = await c.get(`${base}/orders/2`);
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('1');
    expect(limited.json().error).toMatchObject({ reason: 'rate_limited', code: ErrorCodes.RATE_LIMITED });
    expect(s.calls).toBe(1);
  });

  it('answers 504 at inbound.timeouts.request and aborts the handler\'s signal', async () => {
    const s = seen();
    const base = await start(meshWith({ timeouts: { request: '100ms' } }), s);
    const c = http();
    const answer = await c.get(`${base}/orders/never`);
    expect(answer.status).toBe(504);
    expect(answer.json().error).toMatchObject({ reason: 'timeout', code: ErrorCodes.TIMEOUT });
    const reason = await s.aborted.promise;
    expect(reason).toBeInstanceOf(TimeoutError);
    expect((reason as TimeoutError).phase).toBe('inbound');
    // The server still answers on (the late handler broke nothing).
    expect((await c.get(`${base}/orders/4`)).status).toBe(200);
  });

  it('answers an expired inbound deadline at once and gives the handler the smallest bound', async () => {
    const s = seen();
    const base = await start(meshWith({ timeouts: { request: '10s' } }), s);
    const c = http();
    const expired = await c.get(`${base}/orders/1`, { 'x-inmesh-deadline-ms': '0' });
    expect(expired.status).toBe(504);
    expect(expired.json().error.reason).toBe('deadline_expired');
    expect(s.calls).toBe(0);
    expect((await c.get(`${base}/orders/1`, { 'x-envoy-expected-rq-timeout-ms': '700', 'x-inmesh-deadline-ms': '3000' })).status).toBe(200);
    expect(s.deadlineLeft).toBeGreaterThan(600);
    expect(s.deadlineLeft).toBeLessThanOrEqual(700);
  });

  it('answers the health probes (readiness 503 once the mesh closes) and leaves other paths to the app', async () => {
    const s = seen();
    const mesh = createMesh({ policy: { apiVersion: 'inmesh/v1' }, env: {}, telemetry: { enabled: false } });
    const base = await start(mesh, s);
    const c = http();
    expect((await c.get(`${base}/livez`)).json()).toEqual({ status: 'ok' });
    expect((await c.get(`${base}/readyz`)).status).toBe(200);
    expect((await c.get(`${base}/readyz/`)).status).toBe(404); // the framework's own answer, no redirect
    await mesh.close();
    expect((await c.get(`${base}/readyz`)).status).toBe(503);
    expect((await c.get(`${base}/livez`)).status).toBe(200);
  });
});

it('fastify: a request with a body keeps its deadline through body parsing', async () => {
  let left: number | undefined;
  const app = Fastify();
  await app.register(inmeshFastify, { mesh: meshWith({ timeouts: { request: '800ms' } }) });
  app.post('/items', async (request) => {
    const d = currentDeadline();
    left = d === undefined ? undefined : d - performance.now();
    return { got: request.body };
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  cleanup.push(() => app.close());
  const addr = app.server.address();
  const res = await fetch(`http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}/items`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ a: 1 }),
  });
  expect(await res.json()).toEqual({ got: { a: 1 } });
  expect(left).toBeGreaterThan(700);
  expect(left).toBeLessThanOrEqual(800);
});

it('fastify: a plugin registered without a mesh fails with InvalidArgumentError', async () => {
  const app = Fastify();
  await expect(app.register(inmeshFastify, {} as never)).rejects.toThrow('inmeshFastify: options.mesh must be a mesh from createMesh() (got undefined)');
  await app.close().catch(() => undefined);
});
