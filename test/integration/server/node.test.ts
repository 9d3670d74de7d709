// The inbound chain around a plain node:http listener, on real servers on 127.0.0.1:0.
import { IncomingMessage, createServer, request as httpRequest, type ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AbortedError, ErrorCodes, InvalidArgumentError, TimeoutError } from '../../../src/errors.ts';
import { createMesh, type Mesh } from '../../../src/mesh/mesh.ts';
import type { PolicyDocument } from '../../../src/policy/index.ts';
import { currentDeadline } from '../../../src/core/deadline-context.ts';
import { requestSignal } from '../../../src/server/inbound.ts';
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

async function serve(mesh: Mesh, app: (req: IncomingMessage, res: ServerResponse) => unknown, options?: Parameters<Mesh['server']>[1]): Promise<string> {
  const server = createServer(mesh.server(app, options));
  const base = await listen(server);
  cleanup.push(() => close(server));
  return base;
}

function http() {
  const c = client();
  cleanup.push(() => c.close());
  return c;
}

describe('inbound.maxConcurrent', () => {
  it('sheds the request beyond the limit with 503 + Retry-After and a JSON reason, without calling the app', async () => {
    const holds = new Holds();
    const mesh = meshWith({ maxConcurrent: 2 });
    const base = await serve(mesh, async (_req, res) => {
      await holds.hold();
      res.end('done');
    });
    const c = http();
    const first = [c.get(`${base}/a`), c.get(`${base}/b`)];
    await holds.arrived(2);
    const shed = await c.get(`${base}/c`);
    expect(shed.status).toBe(503);
    expect(shed.headers['retry-after']).toBe('1');
    expect(shed.headers['content-type']).toBe('application/json');
    expect(shed.json()).toEqual({
      error: { reason: 'load_shed', code: ErrorCodes.LOAD_SHED, message: 'server: inbound maxConcurrent (2) reached, request shed' },
    });
    expect(holds.count).toBe(2); // the shed request never reached the app
    holds.release();
    expect((await Promise.all(first)).map((r) => r.status)).toEqual([200, 200]);
    // The slots are free again once those responses closed.
    const after = await c.get(`${base}/d`);
    expect(after.status).toBe(200);
    expect(holds.count).toBe(3);
  });
});

describe('inbound.rateLimit', () => {
  it('admits through the process-local bucket synchronously: the app runs inside the request event, with no promise in between', async () => {
    const mesh = meshWith({ rateLimit: { requestsPerSecond: 1000, burst: 1000 }, maxConcurrent: 8 });
    let inApp = false;
    const seen: boolean[] = [];
    const wrapped = mesh.server((_req, res) => {
      inApp = true;
      res.end('ok');
    });
    const server = createServer((req, res) => {
      inApp = false;
      wrapped(req, res);
      seen.push(inApp);
    });
    const base = await listen(server);
    cleanup.push(() => close(server));
    const c = http();
    expect((await c.get(`${base}/`)).status).toBe(200);
    expect((await c.get(`${base}/`)).status).toBe(200);
    expect(seen).toEqual([true, true]);
  });

  it('answers 429 + Retry-After once the bucket is empty, without calling the app', async () => {
    let calls = 0;
    const mesh = meshWith({ rateLimit: { requestsPerSecond: 0.5, burst: 2 } });
    const base = await serve(mesh, (_req, res) => {
      calls++;
      res.end('ok');
    });
    const c = http();
    expect((await c.get(`${base}/`)).status).toBe(200);
    expect((await c.get(`${base}/`)).status).toBe(200);
    const limited = await c.get(`${base}/`);
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('2'); // one token every 2 s
    expect(limited.json().error).toMatchObject({ reason: 'rate_limited', code: ErrorCodes.RATE_LIMITED });
    expect(limited.json().error.message).toBe('server: inbound rate limit (0.5 requests/s) exceeded');
    expect(calls).toBe(2);
  });
});

describe('inbound.timeouts.request', () => {
  it('answers 504 and aborts the app\'s signal with TimeoutError (phase inbound); late writes are dropped', async () => {
    let seen: AbortSignal | undefined;
    let lateWrite: (() => void) | undefined;
    const aborted = deferred<unknown>();
    const mesh = meshWith({ timeouts: { request: '150ms' } });
    const base = await serve(mesh, (req, res) => {
      seen = requestSignal(req);
      seen.addEventListener('abort', () => {
        lateWrite = () => res.writeHead(200).end('too late');
        aborted.resolve(seen?.reason);
      });
    });
    const c = http();
    const started = performance.now();
    const answer = await c.get(`${base}/slow`);
    expect(answer.status).toBe(504);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(answer.json().error).toMatchObject({ reason: 'timeout', code: ErrorCodes.TIMEOUT });
    const reason = await aborted.promise;
    expect(seen?.aborted).toBe(true);
    expect(reason).toBeInstanceOf(TimeoutError);
    expect((reason as TimeoutError).phase).toBe('inbound');
    expect((reason as TimeoutError).timeoutMs).toBe(150);
    // The app answering after the 504 neither throws nor changes anything.
    expect(() => lateWrite?.()).not.toThrow();
    expect((await c.get(`${base}/livez`)).status).toBe(200);
  });

  it('does not abort the signal of a request answered in time', async () => {
    let signal: AbortSignal | undefined;
    const mesh = meshWith({ timeouts: { request: '5s' } });
    const base = await serve(mesh, (req, res) => {
      signal = requestSignal(req);
      res.end('ok');
    });
    expect((await http().get(`${base}/`)).status).toBe(200);
    expect(signal?.aborted).toBe(false);
  });
});

describe('a client that goes away', () => {
  it('aborts the app\'s signal with AbortedError and frees its concurrency slot', async () => {
    const aborted = deferred<unknown>();
    const arrived = deferred<undefined>();
    const mesh = meshWith({ maxConcurrent: 1 });
    const base = await serve(mesh, (req, res) => {
      if (req.url !== '/hang') {
        res.end('ok');
        return;
      }
      const signal = requestSignal(req);
      signal.addEventListener('abort', () => aborted.resolve(signal.reason));
      arrived.resolve(undefined);
    });
    const gone = httpRequest(`${base}/hang`);
    gone.on('error', () => undefined);
    gone.end();
    await arrived.promise;
    gone.destroy();
    expect(await aborted.promise).toBeInstanceOf(AbortedError);
    // The one slot is free again: the next request reaches the app.
    expect((await http().get(`${base}/next`)).text).toBe('ok');
  });
});

describe('deadlines across hops', () => {
  it.each([
    ['x-inmesh-deadline-ms', '0'],
    ['grpc-timeout', '0m'],
  ])('answers an already expired deadline (%s: %s) with 504 at once, without calling the app', async (name, value) => {
    let calls = 0;
    const mesh = meshWith({ timeouts: { request: '10s' } });
    const base = await serve(mesh, (_req, res) => {
      calls++;
      res.end('ok');
    });
    const answer = await http().get(`${base}/`, { [name]: value });
    expect(answer.status).toBe(504);
    expect(answer.json().error).toMatchObject({ reason: 'deadline_expired', code: ErrorCodes.TIMEOUT });
    expect(calls).toBe(0);
  });

  async function deadlineSeenBy(inbound: PolicyDocument['inbound'], headers: Record<string, string>): Promise<number | undefined> {
    let left: number | undefined;
    const mesh = meshWith(inbound);
    const base = await serve(mesh, async (_req, res) => {
      await Promise.resolve(); // still there after an await
      const d = currentDeadline();
      left = d === undefined ? undefined : d - performance.now();
      res.end('ok');
    });
    expect((await http().get(`${base}/`, headers)).status).toBe(200);
    return left;
  }

  it('the smallest bound wins, whichever header carries it', async () => {
    const t = { timeouts: { request: '10s' } };
    const a = await deadlineSeenBy(t, { 'x-inmesh-deadline-ms': '5000', 'x-envoy-expected-rq-timeout-ms': '800', 'grpc-timeout': '3S' });
    expect(a).toBeGreaterThan(700);
    expect(a).toBeLessThanOrEqual(800);
    const b = await deadlineSeenBy(t, { 'x-inmesh-deadline-ms': '900', 'x-envoy-expected-rq-timeout-ms': '5000', 'grpc-timeout': '3S' });
    expect(b).toBeGreaterThan(800);
    expect(b).toBeLessThanOrEqual(900);
    const c = await deadlineSeenBy(t, { 'x-inmesh-deadline-ms': '5000', 'grpc-timeout': '700000u' });
    expect(c).toBeGreaterThan(600);
    expect(c).toBeLessThanOrEqual(700);
  });

  it('inbound.timeouts.request bounds a longer header; no header and no timeout means no deadline', async () => {
    const a = await deadlineSeenBy({ timeouts: { request: '600ms' } }, { 'x-inmesh-deadline-ms': '60000' });
    expect(a).toBeGreaterThan(500);
    expect(a).toBeLessThanOrEqual(600);
    // Envoy's 0 is "no timeout", an invalid value is ignored: the policy's bound holds.
    const b = await deadlineSeenBy({ timeouts: { request: '600ms' } }, { 'x-envoy-expected-rq-timeout-ms': '0', 'x-inmesh-deadline-ms': 'soon' });
    expect(b).toBeGreaterThan(500);
    expect(b).toBeLessThanOrEqual(600);
    expect(await deadlineSeenBy({ timeouts: { request: '0s' } }, {})).toBeUndefined();
    const c = await deadlineSeenBy({ timeouts: { request: '0s' } }, { 'grpc-timeout': '2S' });
    expect(c).toBeGreaterThan(1900);
    expect(c).toBeLessThanOrEqual(2000);
  });

  it('a header deadline shorter than the policy timeout fires the 504 at that deadline', async () => {
    const aborted = deferred<unknown>();
    const mesh = meshWith({ timeouts: { request: '10s' } });
    const base = await serve(mesh, (req) => {
      const signal = requestSignal(req);
      signal.addEventListener('abort', () => aborted.resolve(signal.reason));
    });
    const started = performance.now();
    const answer = await http().get(`${base}/`, { 'x-inmesh-deadline-ms': '120' });
    expect(answer.status).toBe(504);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(((await aborted.promise) as TimeoutError).timeoutMs).toBe(120);
  });

  it('currentDeadline() is undefined outside an inbound request', () => {
    expect(currentDeadline()).toBeUndefined();
  });
});

describe('health', () => {
  it('answers liveness and readiness before the app, never redirects, and readiness fails once the mesh closes', async () => {
    const paths: string[] = [];
    const holds = new Holds();
    const mesh = createMesh({ policy: { apiVersion: 'inmesh/v1', inbound: { maxConcurrent: 1 } }, env: {}, telemetry: { enabled: false } });
    const base = await serve(mesh, async (req, res) => {
      paths.push(`${req.method} ${req.url}`);
      if (req.url === '/hold') await holds.hold();
      res.end('app');
    });
    const c = http();
    // Probes are answered even while the only slot is taken.
    const held = c.get(`${base}/hold`);
    await holds.arrived(1);
    const live = await c.get(`${base}/livez`);
    expect(live.status).toBe(200);
    expect(live.json()).toEqual({ status: 'ok' });
    expect((await c.get(`${base}/readyz?verbose`)).status).toBe(200);
    expect((await c.get(`${base}/readyz`, {}, 'HEAD')).status).toBe(200);
    // Not the probe paths: the app's (no redirect to a canonical path).
    holds.release();
    await held;
    expect((await c.get(`${base}/readyz/`)).text).toBe('app');
    expect((await c.get(`${base}/readyz`, {}, 'POST')).text).toBe('app');
    await mesh.close();
    const ready = await c.get(`${base}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.json()).toEqual({ status: 'closing' });
    expect((await c.get(`${base}/livez`)).status).toBe(200);
    expect(paths).toEqual(['GET /hold', 'GET /readyz/', 'POST /readyz']);
  });

  it('takes other paths, or none', async () => {
    const mesh = meshWith({});
    const base = await serve(mesh, (_req, res) => res.end('app'), { health: { livenessPath: '/health/live', readinessPath: false } });
    const c = http();
    expect((await c.get(`${base}/health/live`)).json()).toEqual({ status: 'ok' });
    expect((await c.get(`${base}/readyz`)).text).toBe('app');
    expect((await c.get(`${base}/livez`)).text).toBe('app');
  });

  it('refuses a path that is not one, naming the field and value', () => {
    const mesh = meshWith({});
    expect(() => mesh.server(() => undefined, { health: { readinessPath: 'readyz' } })).toThrow(InvalidArgumentError);
    expect(() => mesh.server(() => undefined, { health: { readinessPath: 'readyz' } })).toThrow(
      'health.readinessPath must be a path starting with "/" (no query, no spaces) or false (got "readyz")',
    );
  });
});

describe('mesh.server(server)', () => {
  it('wraps the request listeners a Server already has, in order', async () => {
    let calls = 0;
    const mesh = meshWith({ maxConcurrent: 1 });
    const server = createServer((_req, res) => {
      calls++;
      res.write('a');
    });
    server.on('request', (_req, res: ServerResponse) => res.end('b'));
    expect(mesh.server(server)).toBe(server);
    const base = await listen(server);
    cleanup.push(() => close(server));
    const c = http();
    expect((await c.get(`${base}/`)).text).toBe('ab');
    expect((await c.get(`${base}/livez`)).json()).toEqual({ status: 'ok' });
    expect(calls).toBe(1);
  });

  it('refuses what is neither a listener nor a server, and a server without a listener, naming the argument', () => {
    const mesh = meshWith({});
    expect(() => mesh.server('handler' as never)).toThrow(
      'mesh.server(listener): listener must be a function or an http(s).Server (got "handler")',
    );
    expect(() => mesh.server(createServer())).toThrow(InvalidArgumentError);
    expect(() => mesh.server(() => undefined, { route: 'x' as never })).toThrow('route must be a function (got "x")');
  });

  it('requestSignal() of a request that did not go through the chain is an InvalidArgumentError', () => {
    expect(() => requestSignal(new IncomingMessage(new Socket()))).toThrow(InvalidArgumentError);
    expect(() => requestSignal(undefined as never)).toThrow('requestSignal(req): req did not go through mesh.server() or an inmesh adapter (got undefined)');
  });
});
