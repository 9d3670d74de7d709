/**
 * `npm run demo`: a small mesh of real processes on 127.0.0.1 — three `orders`,
 * two `inventory` and a `frontend` that calls them — driven by bounded load
 * while faults follow a timeline (an instance answers 503s, one turns slow, one
 * is killed and restarted, the Consul agent stops for a few seconds). The same
 * scenario runs twice: through inmesh, then with plain `fetch` round robin.
 * The live view shows each upstream's rate, success, latency, ejections,
 * breaker and retry budget; the end summary, a JSON file and an HTML report
 * with charts put the two runs side by side.
 *
 * Options: --quick (short runs, for CI), --duration <s> (per run),
 * --registry auto|consul|file, --json <file>, --html <file>, --log <file>.
 * Every process started is stopped by its PID at the end, on an error, and on
 * SIGINT/SIGTERM.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify as toYaml } from 'yaml';
import { startDemoConsul, type DemoConsul } from './consul.ts';
import { closeProcessLog, leftRunning, setProcessLog, startedPids, startProcess, stopAll, stopProcess, type Proc } from './procs.ts';
import { htmlReport } from './report.ts';
import { LiveView, summary } from './view.ts';
import { UPSTREAMS, type DemoReport, type FaultEvent, type FrontendSample, type Point, type RunResult, type RunTotals, type Upstream } from './types.ts';

const here = import.meta.dirname;
const root = resolve(here, '..', '..');
const OPTIONS = {
  quick: { type: 'boolean', default: false },
  duration: { type: 'string' },
  registry: { type: 'string', default: 'auto' },
  json: { type: 'string' },
  html: { type: 'string' },
  log: { type: 'string' },
} as const;
function parseOptions(): ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'] {
  try {
    return parseArgs({ options: OPTIONS }).values;
  } catch (error) {
    // A mistyped option: say which, and the ones there are, before any process is started.
    console.error(`demo: ${(error as Error).message}\noptions: --quick, --duration <s>, --registry auto|consul|file, --json <file>, --html <file>, --log <file>`);
    process.exit(2);
  }
}
const args = parseOptions();
const durationS = args.duration !== undefined ? Number(args.duration) : args.quick ? 5 : 30;
if (!Number.isFinite(durationS) || durationS < 3 || durationS > 600) {
  console.error(`demo: --duration must be a number of seconds from 3 to 600 (got ${String(args.duration)})`);
  process.exit(2);
}
if (!['auto', 'consul', 'file'].includes(args.registry)) {
  console.error(`demo: --registry must be auto, consul or file (got ${args.registry})`);
  process.exit(2);
}
const outDir = join(root, '.cache', 'demo');
const jsonPath = resolve(args.json ?? join(outDir, 'report.json'));
const htmlPath = resolve(args.html ?? join(outDir, 'report.html'));
const logPath = resolve(args.log ?? join(outDir, 'processes.log'));
/** Seconds between two samples of the live view. */
const intervalS = durationS <= 10 ? 0.5 : 1;
/** Load: checkouts per second (each makes one call to each upstream) and workers; bounded in count and time. */
const RATE = 100;
const WORKERS = 16;
const CHECKOUT_TIMEOUT_MS = 3_000;

const view = new LiveView();
for (const p of [jsonPath, htmlPath, logPath]) mkdirSync(dirname(p), { recursive: true });
rmSync(logPath, { force: true });
setProcessLog(logPath, (name, pid) => {
  if (!view.tty) view.say(`started ${name} pid ${pid}`);
});
const work = mkdtempSync(join(tmpdir(), 'inmesh-demo-'));
let consul: DemoConsul | undefined;
let stopping = false;
/** Read through a function: a signal handler sets `stopping` while an await is pending. */
const stopped = (): boolean => stopping;

/** Stops everything the demo started (by PID) and removes its temp files. */
async function cleanUp(): Promise<void> {
  await stopAll(3_000);
  await consul?.close().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
  await closeProcessLog();
}

function onSignal(signal: NodeJS.Signals): void {
  if (stopped()) return;
  stopping = true;
  view.say(`\n${signal}: stopping every process the demo started...`);
  void cleanUp().then(() => {
    const left = leftRunning();
    view.say(left.length === 0 ? `stopped ${startedPids.length} processes; nothing left running` : `still running: ${left.join(', ')}`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

// --- processes --------------------------------------------------------------------------------

const nodeArgs = ['--experimental-transform-types', '--no-warnings'];

/** Starts a Node child and waits (bounded) for its `{ ready: port }`. */
async function startNode(name: string, script: string, env: Record<string, string>): Promise<{ proc: Proc; port: number }> {
  const proc = startProcess(name, process.execPath, [...nodeArgs, join(here, script)], { ...process.env, ...env }, true);
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} was not ready within 30 s (see ${logPath})`)), 30_000);
    proc.child.on('message', (msg: { ready?: number }) => {
      if (typeof msg.ready === 'number') {
        clearTimeout(timer);
        resolvePort(msg.ready);
      }
    });
    void proc.exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before it was ready (see ${logPath})`));
    });
  });
  return { proc, port };
}

/** Asks a child over IPC and waits (bounded) for the answer carrying `key`. */
function ask<T>(proc: Proc, message: object, key: string, timeoutMs = 1_000): Promise<T | undefined> {
  return new Promise((resolveAnswer) => {
    if (!proc.child.connected) {
      resolveAnswer(undefined);
      return;
    }
    const onMessage = (msg: Record<string, unknown>): void => {
      if (key in msg) {
        cleanup();
        resolveAnswer(msg[key] as T);
      }
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      proc.child.off('message', onMessage);
    };
    const timer = setTimeout(() => {
      cleanup();
      resolveAnswer(undefined);
    }, timeoutMs);
    proc.child.on('message', onMessage);
    proc.child.send(message, (err) => {
      if (err) {
        cleanup();
        resolveAnswer(undefined);
      }
    });
  });
}

interface Instance {
  name: string;
  service: Upstream;
  port: number;
  proc: Proc;
}
interface InstanceStats {
  served: number;
  failed: number;
  slow: number;
}

async function startInstance(service: Upstream, index: number, port = 0): Promise<Instance> {
  const name = `${service}-${index}`;
  const env: Record<string, string> = { SERVICE_NAME: service, PORT: String(port), CONSUL_HTTP_ADDR: consul?.httpAddr ?? '' };
  const started = await startNode(name, 'instance.ts', env);
  return { name, service, port: started.port, proc: started.proc };
}

// --- one run --------------------------------------------------------------------------------

/** The fault timeline, as fractions of the run, scaled to its duration. */
interface PlannedFault {
  at: number;
  lasts: number;
  label: string;
  key: 'e503' | 'slow' | 'kill' | 'consul';
}
function faultPlan(useConsul: boolean): PlannedFault[] {
  const d = durationS;
  const plan: PlannedFault[] = [
    { at: 0.15 * d, lasts: 0.35 * d, label: 'orders-2 answers 503', key: 'e503' },
    { at: 0.3 * d, lasts: 0.35 * d, label: 'inventory-1 turns slow (1.5 s)', key: 'slow' },
    { at: 0.45 * d, lasts: 0.12 * d, label: 'orders-3 killed (SIGKILL), restarted', key: 'kill' },
  ];
  if (useConsul) plan.push({ at: 0.62 * d, lasts: Math.max(1.5, 0.12 * d), label: 'Consul agent stopped, started again', key: 'consul' });
  return plan;
}

async function runScenario(mode: 'mesh' | 'plain', instances: Instance[], endpointsFile: string | undefined, registryLabel: string): Promise<RunResult> {
  const byName = new Map(instances.map((i) => [i.name, i]));
  const names = new Map(instances.map((i) => [`127.0.0.1:${i.port}`, i.name]));
  const endpointsOf = (s: Upstream): string => instances.filter((i) => i.service === s).map((i) => `127.0.0.1:${i.port}`).join(',');
  const frontendEnv: Record<string, string> =
    mode === 'mesh'
      ? { MODE: 'mesh', CONSUL_HTTP_ADDR: consul?.httpAddr ?? '', ENDPOINTS_FILE: endpointsFile ?? '' }
      : { MODE: 'plain', ORDERS: endpointsOf('orders'), INVENTORY: endpointsOf('inventory') };
  const frontend = await startNode(`frontend-${mode}`, 'frontend.ts', frontendEnv);
  view.say(`${mode === 'mesh' ? 'run 1: frontend with inmesh' : 'run 2: frontend with plain fetch'} (pid ${frontend.proc.pid}), ${durationS} s of load`);

  // What the instances did during this run: counters at the start, and those of killed instances.
  const atInstances = { served: 0, injected503: 0, slow: 0, killed: 0 };
  const base = new Map<string, InstanceStats>();
  const collect = async (i: Instance): Promise<void> => {
    const s = await ask<InstanceStats>(i.proc, { stats: true }, 'stats');
    if (s === undefined) return;
    const b = base.get(i.name) ?? { served: 0, failed: 0, slow: 0 };
    atInstances.served += s.served - b.served;
    atInstances.injected503 += s.failed - b.failed;
    atInstances.slow += s.slow - b.slow;
    base.set(i.name, s);
  };
  for (const i of instances) base.set(i.name, (await ask<InstanceStats>(i.proc, { stats: true }, 'stats')) ?? { served: 0, failed: 0, slow: 0 });

  const plan = faultPlan(consul !== undefined);
  const faults: FaultEvent[] = [];
  const points: Point[] = [];
  const t0 = performance.now();
  const now = (): number => (performance.now() - t0) / 1000;
  const endAt = t0 + durationS * 1000;
  const maxCheckouts = Math.ceil(RATE * durationS * 1.2);
  let sent = 0;
  let window = { checkouts: 0, ok: 0 };
  const total = { checkouts: 0, ok: 0 };
  const upstreamTotals = Object.fromEntries(UPSTREAMS.map((u) => [u, { calls: 0, ok: 0, retries: 0, p99s: [] as number[] }])) as Record<Upstream, { calls: number; ok: number; retries: number; p99s: number[] }>;

  /** A fault as it begins; `end()` sets how long it lasted. */
  const begin = (label: string): { end(): void } => {
    const at = now();
    const e: FaultEvent = { at: Number(at.toFixed(2)), lasts: 0, label };
    faults.push(e);
    view.fault(mode, e);
    return {
      end: () => {
        e.lasts = Number((now() - at).toFixed(2));
        view.fault(mode, { ...e, at: Number(now().toFixed(2)), label: `${label}: over after ${e.lasts.toFixed(1)} s` });
      },
    };
  };
  const setFault = (name: string, fault: 'none' | '503' | 'slow'): void => {
    const i = byName.get(name);
    if (i?.proc.child.connected === true) i.proc.child.send({ fault });
  };
  const sleepUntil = (s: number): Promise<void> => new Promise((r) => setTimeout(r, Math.max(0, t0 + s * 1000 - performance.now())));

  // The fault timeline: each step waits for its time, all bounded by the run's duration.
  const timeline = plan.map(async (f) => {
    await sleepUntil(f.at);
    if (stopped()) return;
    const event = begin(f.label);
    if (f.key === 'e503') {
      setFault('orders-2', '503');
      await sleepUntil(f.at + f.lasts);
      setFault('orders-2', 'none');
    } else if (f.key === 'slow') {
      setFault('inventory-1', 'slow');
      await sleepUntil(f.at + f.lasts);
      setFault('inventory-1', 'none');
    } else if (f.key === 'kill') {
      const victim = byName.get('orders-3');
      if (victim === undefined) return;
      await collect(victim);
      await stopProcess(victim.proc, 'SIGKILL');
      atInstances.killed++;
      await sleepUntil(f.at + f.lasts);
      if (stopped()) return;
      const fresh = await startInstance('orders', 3, victim.port);
      const index = instances.indexOf(victim);
      instances[index] = fresh;
      byName.set(fresh.name, fresh);
      base.set(fresh.name, { served: 0, failed: 0, slow: 0 });
    } else {
      await consul?.stop();
      await sleepUntil(f.at + f.lasts);
      if (stopped()) return;
      await consul?.start();
    }
    event.end();
  });

  // The load: WORKERS closed loops, paced to RATE checkouts/s in all, bounded in count and time.
  const frontendUrl = `http://127.0.0.1:${frontend.port}/checkout`;
  const worker = async (w: number): Promise<void> => {
    const every = (WORKERS / RATE) * 1000;
    let next = performance.now() + (w * every) / WORKERS;
    while (!stopped() && performance.now() < endAt && sent < maxCheckouts) {
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      next += every;
      if (performance.now() >= endAt) break;
      sent++;
      let ok = false;
      try {
        const res = await fetch(frontendUrl, { signal: AbortSignal.timeout(CHECKOUT_TIMEOUT_MS) });
        await res.arrayBuffer();
        ok = res.status === 200;
      } catch {
        ok = false;
      }
      window.checkouts++;
      total.checkouts++;
      if (ok) {
        window.ok++;
        total.ok++;
      }
    }
  };
  const load = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));

  // Sampling: one point per interval, bounded by the run's duration.
  const samples = (async () => {
    for (let k = 1; !stopped() && k * intervalS <= durationS + 1e-9; k++) {
      await sleepUntil(k * intervalS);
      const s = await ask<FrontendSample>(frontend.proc, { sample: true }, 'sample');
      if (s === undefined) continue;
      const point: Point = { t: Number(now().toFixed(2)), checkouts: window.checkouts, checkoutsOk: window.ok, upstreams: s.upstreams };
      window = { checkouts: 0, ok: 0 };
      points.push(point);
      for (const u of UPSTREAMS) {
        const x = s.upstreams[u];
        const t = upstreamTotals[u];
        t.calls += x.calls;
        t.ok += x.ok;
        t.retries += x.retries;
        if (x.p99 !== null) t.p99s.push(x.p99);
      }
      view.update({ mode, registry: registryLabel, durationS, intervalS, point, totalCheckouts: total.checkouts, totalOk: total.ok, plan, done: faults, names });
    }
  })();

  await Promise.all([load, samples, ...timeline]);
  view.freeze();
  for (const i of instances) await collect(i);
  await stopProcess(frontend.proc);
  for (const i of instances) setFault(i.name, 'none');

  const rate = (ok: number, n: number): number => (n === 0 ? 0 : Number(((100 * ok) / n).toFixed(3)));
  const totals: RunTotals = {
    checkouts: total.checkouts,
    checkoutsOk: total.ok,
    successRate: rate(total.ok, total.checkouts),
    upstreamCalls: Object.fromEntries(
      UPSTREAMS.map((u) => {
        const t = upstreamTotals[u];
        return [u, { calls: t.calls, ok: t.ok, retries: t.retries, successRate: rate(t.ok, t.calls), p99: t.p99s.length === 0 ? null : Number(Math.max(...t.p99s).toFixed(2)) }];
      }),
    ) as RunTotals['upstreamCalls'],
    atInstances,
  };
  return { mode, points, faults, totals };
}

// --- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  view.say(`inmesh demo: ${durationS} s per run, two runs (with inmesh, then plain fetch); processes log: ${logPath}`);
  let registry: 'consul' | 'file' = 'file';
  let registryNote = 'asked for with --registry file';
  if (args.registry !== 'file') {
    view.say('looking for a Consul binary (the test harness finder; it may fetch Debian\'s consul 1.8.7 into .cache/consul)...');
    const c = await startDemoConsul();
    if ('unavailable' in c) {
      if (args.registry === 'consul') throw new Error(`--registry consul, but no Consul agent could be started: ${c.unavailable}`);
      registryNote = `no Consul agent could be started (${c.unavailable})`;
    } else {
      consul = c;
      registry = 'consul';
      registryNote = `${c.binary.version}, ${c.binary.path}, agent at ${c.httpAddr}`;
    }
  }
  view.say(registry === 'consul' ? `registry: a real Consul agent (${registryNote})` : `registry: the file registry (${registryNote})`);
  if (stopped()) return;

  const instances = await Promise.all([
    startInstance('orders', 1),
    startInstance('orders', 2),
    startInstance('orders', 3),
    startInstance('inventory', 1),
    startInstance('inventory', 2),
  ]);
  let endpointsFile: string | undefined;
  if (registry === 'file') {
    endpointsFile = join(work, 'endpoints.yaml');
    const services = Object.fromEntries(UPSTREAMS.map((u) => [u, instances.filter((i) => i.service === u).map((i) => `127.0.0.1:${i.port}`)]));
    writeFileSync(endpointsFile, toYaml({ services }));
  }
  view.say(`instances: ${instances.map((i) => `${i.name} 127.0.0.1:${i.port}`).join(', ')}`);

  const runs: RunResult[] = [];
  for (const mode of ['mesh', 'plain'] as const) {
    if (stopped()) return;
    runs.push(await runScenario(mode, instances, endpointsFile, registry));
  }
  if (stopped()) return;
  for (const line of summary(runs)) view.say(line);

  await cleanUp();
  const report: DemoReport = {
    version: 1,
    generatedAt: new Date().toISOString(),
    registry,
    registryNote,
    durationS,
    quick: args.quick,
    runs,
    processes: [...startedPids],
    leftRunning: leftRunning(),
  };
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(htmlPath, htmlReport(report));
  view.say('');
  view.say(`stopped all ${startedPids.length} processes the demo started${report.leftRunning.length === 0 ? '' : ` (STILL RUNNING: ${report.leftRunning.join(', ')})`}`);
  view.say(`JSON: ${jsonPath}`);
  view.say(`HTML report: ${htmlPath}`);
  if (report.leftRunning.length > 0) process.exitCode = 1;
}

main().catch(async (err: unknown) => {
  if (stopped()) return;
  stopping = true;
  view.say(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  await cleanUp();
  process.exitCode = 1;
});
