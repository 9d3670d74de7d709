// Deadlines across hops, on real loopback servers: a mesh call made while A
// handles an inbound request is bounded by what is left of A's deadline.
//   test client --x-inmesh-deadline-ms--> A (mesh.server) --mesh.request--> B
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { currentDeadline } from '../../../src/core/deadline-context.ts';
import { ErrorCodes, TimeoutError } from '../../../src/errors.ts';
import { createMesh, type Mesh } from '../../../src/mesh/mesh.ts';
import { client, close, deferred, listen } from './helpers.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

interface B {
  address: string;
  /** `x-inmesh-deadline-ms` of each request B received. */
  deadlines: (string | undefined)[];
  /** Resolves with the header once the first request arrived. */
  arrived: Promise<string | undefined>;
}

/** B: a plain server that never answers (it holds every request until the test ends). */
async function slowB(): Promise<B> {
  const held: ServerResponse[] = [];
  const first = deferred<string | undefined>();
  const deadlines: (string | undefined)[] = [];
  const server = createServer((req, res) => {
    const h = req.headers['x-inmesh-deadline-ms'];
    deadlines.push(typeof h === 'string' ? h : undefined);
    first.resolve(typeof h === 'string' ? h : undefined);
    held.push(res);
  });
  const base = await listen(server);
  cleanup.push(async () => {
    for (const r of held) r.destroy();
    await close(server);
  });
  return { address: base.slice('http://'.length), deadlines, arrived: first.promise };
}

/** A's mesh: a generous inbound timeout, and upstream `b` with a 10 s total timeout of its own and no retries. */
function meshA(b: B, ownTimeout = '10s'): Mesh {
  const mesh = createMesh({
    policy: {
      apiVersion: 'inmesh/v1',
      inbound: { timeouts: { request: '10s' } },
      upstreams: { b: { discovery: { registry: 'static', endpoints: [b.address] }, timeouts: { request: ownTimeout }, retries: { attempts: 0 } } },
    },
    env: {},
    telemetry: { enabled: false },
  });
  cleanup.push(() => mesh.close());
  return mesh;
}

interface Outcome {
  error: unknown;
  /** ms from the mesh call to its rejection. */
  elapsed: number;
  /** ms A had left of its inbound deadline when it made the call. */
  leftAtCall: number;
}

/** A: its app waits `delayMs` (if any), then calls B through the mesh without a signal of its own. */
async function startA(mesh: Mesh, delayMs = 0): Promise<{ base: string; outcome: Promise<Outcome> }> {
  const outcome = deferred<Outcome>();
  const server = createServer(
    mesh.server(async (_req: IncomingMessage, res: ServerResponse) => {
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      const d = currentDeadline();
      const start = performance.now();
      try {
        const r = await mesh.request('http://b/slow');
        await r.body.text();
        outcome.resolve({ error: undefined, elapsed: performance.now() - start, leftAtCall: (d ?? Infinity) - start });
      } catch (error) {
        outcome.resolve({ error, elapsed: performance.now() - start, leftAtCall: (d ?? Infinity) - start });
      }
      res.end('done'); // a no-op once the inbound timeout answered 504
    }),
  );
  const base = await listen(server);
  cleanup.push(() => close(server));
  return { base, outcome: outcome.promise };
}

function http() {
  const c = client();
  cleanup.push(() => c.close());
  return c;
}

describe('deadlines across hops, client side', () => {
  it("a mesh call to a slow B is cut at A's inbound deadline (300 ms), and B is told at most what A had left", async () => {
    const b = await slowB();
    const a = await startA(meshA(b));
    const answer = await http().get(`${a.base}/`, { 'x-inmesh-deadline-ms': '300' });
    expect(answer.status).toBe(504); // A's own inbound timeout
    const { error, elapsed, leftAtCall } = await a.outcome;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ code: ErrorCodes.TIMEOUT, phase: 'total' });
    // Bounded by A's 300 ms, not B's own 10 s total timeout.
    expect((error as TimeoutError).timeoutMs).toBeLessThanOrEqual(300);
    expect(elapsed).toBeGreaterThanOrEqual(leftAtCall - 5);
    expect(elapsed).toBeLessThan(2_000);
    const told = Number(await b.arrived);
    expect(told).toBeGreaterThanOrEqual(0);
    expect(told).toBeLessThanOrEqual(Math.ceil(leftAtCall));
    expect(b.deadlines).toHaveLength(1);
  });

  it('an inbound deadline that has already passed fails the mesh call at once, and B gets no request', async () => {
    const b = await slowB();
    // The inbound deadline is 50 ms; the app works 120 ms before it calls B.
    const a = await startA(meshA(b), 120);
    const answer = await http().get(`${a.base}/`, { 'x-inmesh-deadline-ms': '50' });
    expect(answer.status).toBe(504);
    const { error, elapsed, leftAtCall } = await a.outcome;
    expect(leftAtCall).toBeLessThanOrEqual(0);
    expect(error).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ code: ErrorCodes.TIMEOUT, phase: 'total', timeoutMs: 0, message: 'b: total timeout of 0 ms exceeded' });
    expect(elapsed).toBeLessThan(50);
    expect(b.deadlines).toEqual([]);
  });

  it("the call's own total timeout still wins when it is the sooner bound", async () => {
    const b = await slowB();
    const a = await startA(meshA(b, '150ms'));
    const answer = await http().get(`${a.base}/`, { 'x-inmesh-deadline-ms': '5000' });
    const { error, elapsed } = await a.outcome;
    expect(error).toMatchObject({ code: ErrorCodes.TIMEOUT, phase: 'total', timeoutMs: 150 });
    expect(elapsed).toBeGreaterThanOrEqual(145);
    expect(answer.status).toBe(200);
    // B was told the call's own budget, not A's 5 s.
    expect(Number(b.deadlines[0])).toBeLessThanOrEqual(150);
  });

  it('a mesh call outside any inbound request keeps only its own deadline', async () => {
    const b = await slowB();
    const mesh = meshA(b, '120ms');
    const start = performance.now();
    const error = await mesh.request('http://b/slow').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: ErrorCodes.TIMEOUT, phase: 'total', timeoutMs: 120 });
    expect(performance.now() - start).toBeGreaterThanOrEqual(115);
    expect(Number(b.deadlines[0])).toBeLessThanOrEqual(120);
    expect(Number(b.deadlines[0])).toBeGreaterThan(60);
  });
});
