/**
 * The error-rate breaker and partial outages, on three real loopback servers
 * whose answers the test switches: while some endpoint answers, the breaker
 * never opens (outlier detection, retries and panic mode own a partial outage);
 * when every endpoint fails it opens, fails fast, half-opens after
 * `halfOpenAfter` and closes once the servers answer again.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMesh, type Mesh } from '../../../src/index.ts';
import type { UpstreamRuntime } from '../../../src/client/upstream.ts';
import type { BreakerState } from '../../../src/resilience/breaker.ts';
import { closeAll, policyFor, startServer, type TestServer } from './helpers.ts';

let mesh: Mesh | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await closeAll();
});

interface Switchable {
  readonly server: TestServer;
  /** true: 200 "ok"; false: 503. */
  healthy: boolean;
}

async function threeServers(): Promise<Switchable[]> {
  const out: Switchable[] = [];
  for (let i = 0; i < 3; i++) {
    const sw = { healthy: true } as { server: TestServer; healthy: boolean };
    sw.server = await startServer((_req, res) => {
      res.statusCode = sw.healthy ? 200 : 503;
      res.end(sw.healthy ? 'ok' : 'down');
    });
    out.push(sw);
  }
  return out;
}

function meshFor(servers: readonly Switchable[], defaults: Record<string, unknown> = {}): Mesh {
  const { circuitBreaker, ...rest } = defaults;
  mesh = createMesh({
    policy: policyFor(
      { orders: { endpoints: servers.map((s) => s.server.address) } },
      // policyFor turns the breaker off by default: on here, with the default settings unless given.
      { circuitBreaker: { enabled: true, ...(circuitBreaker as object | undefined) }, ...rest },
    ),
    telemetry: { enabled: false },
  });
  return mesh;
}

function breakerOf(m: Mesh): BreakerState | undefined {
  // createMesh() returns the MeshImpl behind the public Mesh interface; runtimeFor() is its own.
  return (m as Mesh & { runtimeFor(host: string): UpstreamRuntime | undefined }).runtimeFor('orders')?.state().breaker;
}

interface Run {
  ok: number;
  failed: number;
  circuitOpen: number;
  /** Whether the breaker was seen in any state other than closed after a call. */
  everNotClosed: boolean;
  /** performance.now() when the breaker was first seen open, 0 if never. */
  openSeenAt: number;
}

/** `total` calls, `concurrency` at a time; the breaker's state is read after every call. */
async function load(m: Mesh, total: number, concurrency: number): Promise<Run> {
  const run: Run = { ok: 0, failed: 0, circuitOpen: 0, everNotClosed: false, openSeenAt: 0 };
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        try {
          const res = await m.request('http://orders/');
          await res.body.dump();
          if (res.statusCode === 200) run.ok++;
          else run.failed++;
        } catch (e) {
          if ((e as { code?: unknown }).code === 'INMESH_ERR_CIRCUIT_OPEN') run.circuitOpen++;
          else run.failed++;
        }
        const state = breakerOf(m);
        if (state !== 'closed') run.everNotClosed = true;
        if (state === 'open' && run.openSeenAt === 0) run.openSeenAt = performance.now();
      }
    }),
  );
  return run;
}

const TOTAL = 300;
const CONCURRENCY = 8;
/** A retry budget that refuses every retry: each failed first try reaches the breaker. */
const NO_RETRY_BUDGET = { retries: { budget: { percent: 0, minConcurrency: 0 } } };

function report(label: string, run: Run, total = TOTAL): void {
  console.log(`[breaker-partial] ${label}: ok ${run.ok}/${total} (${((100 * run.ok) / total).toFixed(1)} %), failed ${run.failed}, circuit-open ${run.circuitOpen}`);
}

describe('the error-rate breaker in a partial outage', () => {
  it('1 of 3 failing, default policy: the breaker never opens and calls succeed', async () => {
    const servers = await threeServers();
    servers[0]!.healthy = false;
    const run = await load(meshFor(servers), TOTAL, CONCURRENCY);
    report('1 of 3, default', run);
    expect(run.circuitOpen).toBe(0);
    expect(run.everNotClosed).toBe(false);
    expect(run.ok / TOTAL).toBeGreaterThanOrEqual(0.97);
  });

  it('1 of 3 failing, retries refused by the budget: the breaker never opens', async () => {
    const servers = await threeServers();
    servers[0]!.healthy = false;
    // outlier detection off too, so the failing endpoint keeps its third of the traffic
    const run = await load(meshFor(servers, { ...NO_RETRY_BUDGET, circuitBreaker: { errorThresholdPercent: 30 }, outlierDetection: { consecutive5xx: 0 } }), TOTAL, CONCURRENCY);
    report('1 of 3, no retry budget, no ejection, threshold 30 %', run);
    expect(run.circuitOpen).toBe(0);
    expect(run.everNotClosed).toBe(false);
    // about a third of the first tries fail and none is retried
    expect(run.ok / TOTAL).toBeGreaterThan(0.5);
  });

  it('2 of 3 failing, default policy (maxEjectionPercent 10: one ejected): the breaker never opens', async () => {
    const servers = await threeServers();
    servers[0]!.healthy = false;
    servers[1]!.healthy = false;
    const run = await load(meshFor(servers), TOTAL, CONCURRENCY);
    report('2 of 3, default', run);
    expect(run.circuitOpen).toBe(0);
    expect(run.everNotClosed).toBe(false);
    expect(run.ok / TOTAL).toBeGreaterThan(0.5);
  });

  it('2 of 3 failing, maxEjectionPercent 100 (both ejected, panic mode): the breaker never opens and the healthy one serves', async () => {
    const servers = await threeServers();
    servers[0]!.healthy = false;
    servers[1]!.healthy = false;
    const run = await load(meshFor(servers, { outlierDetection: { maxEjectionPercent: 100 } }), TOTAL, CONCURRENCY);
    report('2 of 3, maxEjectionPercent 100', run);
    expect(run.circuitOpen).toBe(0);
    expect(run.everNotClosed).toBe(false);
    // panic mode (1 of 3 healthy < panicThresholdPercent 50) spreads first tries over all
    // three again; retries within the budget rescue part of the rest
    expect(run.ok / TOTAL).toBeGreaterThan(0.25);
    expect(servers[2]!.server.hits).toBeGreaterThanOrEqual(run.ok);
  });

  it('2 of 3 failing, retries refused by the budget: the breaker never opens', async () => {
    const servers = await threeServers();
    servers[0]!.healthy = false;
    servers[1]!.healthy = false;
    const run = await load(meshFor(servers, NO_RETRY_BUDGET), TOTAL, CONCURRENCY);
    report('2 of 3, no retry budget', run);
    expect(run.circuitOpen).toBe(0);
    expect(run.everNotClosed).toBe(false);
    expect(run.ok).toBeGreaterThan(0);
  });
});

describe('the error-rate breaker in a full outage', () => {
  it('3 of 3 failing: opens and fails fast, half-opens after halfOpenAfter and closes once they recover', async () => {
    const servers = await threeServers();
    for (const s of servers) s.healthy = false;
    const halfOpenAfter = 300; // ms
    const m = meshFor(servers, { circuitBreaker: { halfOpenAfter: `${halfOpenAfter}ms` } });

    // default minimumRequests 20 and threshold 50 %: open within the first few dozen calls
    const down = await load(m, 60, CONCURRENCY);
    report('3 of 3, down', down, 60);
    expect(down.ok).toBe(0);
    expect(down.circuitOpen).toBeGreaterThan(0);
    expect(breakerOf(m)).toBe('open');

    // open: fails fast, the servers see nothing
    const hitsBefore = servers.reduce((n, s) => n + s.server.hits, 0);
    const fast = await load(m, 20, 1);
    expect(fast.circuitOpen).toBe(20);
    expect(servers.reduce((n, s) => n + s.server.hits, 0)).toBe(hitsBefore);

    for (const s of servers) s.healthy = true;
    // opossum's reset timer moves the state; it is read, bounded in time
    await vi.waitFor(() => {
      expect(breakerOf(m)).toBe('half-open');
    }, { timeout: 5_000, interval: 10 });
    console.log(`[breaker-partial] 3 of 3: open first seen to half-open seen ${(performance.now() - down.openSeenAt).toFixed(0)} ms (halfOpenAfter ${halfOpenAfter} ms)`);

    // the probe succeeds and closes the circuit; every later call is served
    const probe = await m.request('http://orders/');
    await probe.body.dump();
    expect(probe.statusCode).toBe(200);
    expect(breakerOf(m)).toBe('closed');
    const after = await load(m, 50, CONCURRENCY);
    expect(after.ok).toBe(50);
    expect(after.everNotClosed).toBe(false);
  });
});
