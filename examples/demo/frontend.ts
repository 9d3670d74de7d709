/**
 * The demo's `frontend`, a child process. `GET /checkout` calls `orders` and
 * `inventory` and answers 200 when both answered 200, else 502.
 *
 * MODE=mesh: the calls go through inmesh (`mesh.request('http://orders/...')`),
 * endpoints from Consul (CONSUL_HTTP_ADDR) or the file registry (ENDPOINTS_FILE),
 * and the frontend's own server is wrapped by mesh.server(). MODE=plain: the
 * same calls with plain `fetch`, round robin over ORDERS / INVENTORY
 * (`host:port,...`), with the same 1 s deadline per call and no retries.
 *
 * IPC from the demo: `{ sample: true }` is answered with `{ sample }`: each
 * upstream's calls since the last sample (count, successes, retries, p50/p99)
 * and, with the mesh, its admin view (`/clusters` of mesh.admin(): ejected
 * endpoints, breaker state, retry budget in use). Sends `{ ready: port }` once
 * it serves. It exits when the demo goes away or on SIGTERM/SIGINT.
 */
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMesh, type Mesh } from '../../src/mesh/mesh.ts';
import type { AdminUpstream } from '../../src/admin/types.ts';
import type { PolicyDocument } from '../../src/policy/index.ts';
import { UPSTREAMS, type Upstream, type UpstreamSample, type FrontendSample } from './types.ts';
import { leaveOnStop } from './child.ts';

const mode = process.env.MODE === 'plain' ? 'plain' : 'mesh';
/** The deadline of one upstream call (ms), the same with and without the mesh. */
const CALL_DEADLINE_MS = 1_000;

/** The mesh's policy for both upstreams: a short per-try deadline, retries with a budget, fast ejection. */
function policy(): PolicyDocument {
  const file = process.env.ENDPOINTS_FILE;
  const discovery = file !== undefined && file !== '' ? { registry: 'file' as const, file } : {};
  return {
    apiVersion: 'inmesh/v1',
    defaults: {
      timeouts: { connect: '250ms', request: `${CALL_DEADLINE_MS}ms`, perTry: '400ms' },
      retries: {
        attempts: 2,
        retryOn: ['connect-failure', 'refused-stream', 'reset', 'gateway-error'],
        backoff: { base: '10ms', max: '50ms' },
        budget: { percent: 50, minConcurrency: 10 },
      },
      // Two of three `orders` may be ejected at once (one answering 503s, one killed) without panic mode.
      outlierDetection: { consecutive5xx: 5, interval: '500ms', baseEjectionTime: '3s', maxEjectionPercent: 67, panicThresholdPercent: 30 },
    },
    upstreams: { orders: { discovery }, inventory: { discovery } },
  };
}

interface Window {
  calls: number;
  ok: number;
  retries: number;
  latencies: number[];
}
const fresh = (): Window => ({ calls: 0, ok: 0, retries: 0, latencies: [] });
const windows: Record<Upstream, Window> = { orders: fresh(), inventory: fresh() };

function record(upstream: Upstream, started: number, ok: boolean, attempts: number): void {
  const w = windows[upstream];
  w.calls++;
  if (ok) w.ok++;
  w.retries += Math.max(0, attempts - 1);
  w.latencies.push(performance.now() - started);
}

const PATHS: Record<Upstream, string> = { orders: '/orders/42', inventory: '/stock/42' };

let mesh: Mesh | undefined;
let adminUrl: string | undefined;
let call: (upstream: Upstream) => Promise<boolean>;

if (mode === 'mesh') {
  const m = createMesh({
    policy: policy(),
    env: { CONSUL_HTTP_ADDR: process.env.CONSUL_HTTP_ADDR ?? '', INMESH_TRACING: 'false' },
    consulWatch: { minIntervalMs: 50, backoffMaxMs: 500 },
  });
  mesh = m;
  call = async (upstream) => {
    const started = performance.now();
    try {
      const res = await m.request(`http://${upstream}${PATHS[upstream]}`);
      await res.body.dump();
      record(upstream, started, res.statusCode === 200, res.attempts);
      return res.statusCode === 200;
    } catch (error) {
      const attempt = (error as { attempt?: unknown }).attempt;
      record(upstream, started, false, typeof attempt === 'number' ? attempt : 1);
      return false;
    }
  };
} else {
  const endpoints: Record<Upstream, string[]> = {
    orders: (process.env.ORDERS ?? '').split(',').filter(Boolean),
    inventory: (process.env.INVENTORY ?? '').split(',').filter(Boolean),
  };
  const next: Record<Upstream, number> = { orders: 0, inventory: 0 };
  call = async (upstream) => {
    const started = performance.now();
    const list = endpoints[upstream];
    const target = list[next[upstream]++ % list.length];
    try {
      const res = await fetch(`http://${target ?? '127.0.0.1:9'}${PATHS[upstream]}`, { signal: AbortSignal.timeout(CALL_DEADLINE_MS) });
      await res.arrayBuffer();
      record(upstream, started, res.status === 200, 1);
      return res.status === 200;
    } catch {
      record(upstream, started, false, 1);
      return false;
    }
  };
}

const checkout: RequestListener = (req, res) => {
  if (req.url !== '/checkout') {
    res.writeHead(404).end();
    return;
  }
  void Promise.all(UPSTREAMS.map((u) => call(u))).then((results) => {
    const ok = results.every(Boolean);
    res.writeHead(ok ? 200 : 502, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'an upstream failed\n');
  });
};
const server = mesh === undefined ? createServer(checkout) : mesh.server(createServer(checkout));

function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? null;
}

async function sample(): Promise<FrontendSample> {
  let admin: Partial<Record<Upstream, AdminUpstream>> = {};
  if (adminUrl !== undefined) {
    try {
      const res = await fetch(`${adminUrl}/clusters`, { signal: AbortSignal.timeout(500) });
      const body = (await res.json()) as { upstreams: AdminUpstream[] };
      admin = Object.fromEntries(body.upstreams.map((u) => [u.name, u]));
    } catch {
      // a missed admin read shows as "-" for one sample
    }
  }
  const upstreams = {} as Record<Upstream, UpstreamSample>;
  for (const u of UPSTREAMS) {
    const w = windows[u];
    windows[u] = fresh();
    const sorted = w.latencies.sort((a, b) => a - b);
    const a = admin[u];
    upstreams[u] = {
      calls: w.calls,
      ok: w.ok,
      retries: w.retries,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      ejected: a === undefined ? null : a.endpoints.filter((e) => e.ejected).map((e) => `${e.address}:${e.port}`),
      endpoints: a?.discovery?.endpoints ?? null,
      breaker: a?.circuitBreaker.state ?? null,
      budgetInUse: a?.retryBudget?.retriesInFlight ?? null,
      budgetLimit: a?.retryBudget?.limit ?? null,
      registryError: a?.discovery?.lastError?.message ?? null,
    };
  }
  return { upstreams };
}

leaveOnStop(server, () => mesh);
process.on('message', (msg: { sample?: true }) => {
  if (msg.sample === true) void sample().then((s) => process.send?.({ sample: s }));
});

server.listen(0, '127.0.0.1', () => {
  const port = (server.address() as AddressInfo).port;
  void (async () => {
    if (mesh !== undefined) {
      adminUrl = (await mesh.admin()).url;
      // Start both upstreams' discovery before load arrives.
      for (const u of UPSTREAMS) mesh.discoveryStatus(u);
    }
    process.send?.({ ready: port });
  })();
});
