#!/usr/bin/env node
// inmesh benchmark: every client side by side in ONE run, against node:http
// upstreams in other processes on 127.0.0.1, at 1, 16 and 64 requests in
// flight. See docs/benchmarks.md for what each cell means.
//
//   npm run bench                 full run (~5 min on 2 cores)
//   BENCH_QUICK=1 npm run bench   smoke run (~30 s)
//
// Knobs (env): BENCH_DURATION_MS (measured time per run, default 1500),
// BENCH_WARMUP_MS (1000: a fresh process needs it for the JIT), BENCH_ROUNDS (runs per cell, ABA order, best kept; 3),
// BENCH_ISOLATE=0 (all runs in this process instead of a fresh client process each),
// BENCH_CONCURRENCY ("1,16,64"), BENCH_CELLS (comma list of cell ids),
// BENCH_MAX_REQUESTS (cap per run, 400000), BENCH_JSON (write results there),
// BENCH_ABLATION=1 (add mesh cells with one layer off each; see mesh-clients.mjs),
// BENCH_ALT_DIST=/path/to/other/dist (add mesh-request-alt: the same cell from another build, an A/B in one run),
// BENCH_CELLS=inbound-plain,inbound-mesh,inbound-mesh-traced runs only the server-side cells (inbound.mjs),
// BENCH_SERVER_EXEC_ARGV (extra node flags for the inbound server process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"),
// BENCH_PIN=1 (Linux, taskset: upstreams on CPU 1, each client run on CPU 0; steadier figures for A/B runs,
// but not how a service runs, so the published tables are measured without it).
import { execFileSync, fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as peers from './clients.mjs';
import { inboundCells as allInboundCells, runInbound } from './inbound.mjs';
import { ablationCells, meshCells } from './mesh-clients.mjs';
import { Samples, drive, fmt, fmtInt, table } from './stats.mjs';

const quick = process.env.BENCH_QUICK === '1';
const num = (name, dflt) => {
  const v = process.env[name];
  return v === undefined || v === '' ? dflt : Number(v);
};
const config = {
  durationMs: num('BENCH_DURATION_MS', quick ? 600 : 1500),
  warmupMs: num('BENCH_WARMUP_MS', quick ? 400 : 1000),
  rounds: num('BENCH_ROUNDS', quick ? 1 : 3),
  maxRequests: num('BENCH_MAX_REQUESTS', 400_000),
  concurrency: (process.env.BENCH_CONCURRENCY ?? '1,16,64').split(',').map(Number),
  upstreams: 3,
};
const only = process.env.BENCH_CELLS?.split(',').map((s) => s.trim()).filter(Boolean);

const cells = [
  { id: 'raw-1pool', label: 'undici.request, 1 Pool (1 upstream)', create: peers.rawOnePool },
  { id: 'raw-3pools', label: 'undici.request, 3 Pools round robin', create: peers.rawThreePools },
  ...meshCells, // mesh-request, mesh-request-traced, mesh-fetch (or nothing before the mesh exists)
  { id: 'raw-fetch', label: 'undici fetch, 3 upstreams round robin', create: peers.rawFetch },
  { id: 'opossum-pretry', label: 'opossum + p-retry + undici.request', create: peers.opossumPRetry },
  { id: 'cockatiel', label: 'cockatiel retry+breaker+timeout + undici.request', create: peers.cockatielPolicy },
  { id: 'got', label: 'got (retry 2, timeout)', create: peers.gotClient },
  ...(process.env.BENCH_ABLATION === '1'
    ? [
        { id: 'raw-3pools-wire', label: 'raw-3pools + the Host and deadline headers the mesh sends', create: peers.rawThreePoolsWire },
        { id: 'raw-3pools-wire-signal', label: 'raw-3pools-wire + an abort signal per request', create: peers.rawThreePoolsWireSignal },
        ...ablationCells,
      ]
    : []),
].filter((c) => !only || only.includes(c.id));
// Server-side cells (inbound.mjs): a server process and a load process per run.
const inboundCells = (meshCells.length === 0 ? allInboundCells.filter((c) => c.variant === 'plain') : allInboundCells).filter(
  (c) => !only || only.includes(c.id),
);

// ---- upstream processes ---------------------------------------------------

async function startUpstreams(n) {
  const script = fileURLToPath(new URL('./upstream.mjs', import.meta.url));
  const children = [];
  const ports = await Promise.all(
    Array.from({ length: n }, () => {
      const child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
      children.push(child);
      pin(child.pid, 1);
      return new Promise((resolve, reject) => {
        child.once('message', (m) => resolve(m.port));
        child.once('exit', (code) => reject(new Error(`upstream exited early (${code})`)));
      });
    }),
  );
  const stop = () => Promise.all(
    children.map((c) => new Promise((resolve) => {
      if (c.exitCode !== null) return resolve();
      c.once('exit', resolve);
      c.disconnect();
      setTimeout(() => c.kill(), 2000).unref();
    })),
  );
  return { ports, stop };
}

// ---- one cell -----------------------------------------------------------------

async function runOnce(cell, ports, concurrency) {
  const client = await cell.create(ports);
  try {
    await drive(client.call, concurrency, config.warmupMs, config.maxRequests, undefined);
    globalThis.gc?.();
    const samples = new Samples(Math.min(config.maxRequests, 1_000_000));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const { errors, lastError } = await drive(client.call, concurrency, config.durationMs, config.maxRequests, samples);
    const elapsed = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const summary = samples.summary(elapsed);
    // Client-process CPU per request: robust to other processes on the machine.
    const cpuPerReq = (cpu.user + cpu.system) / Math.max(1, summary.requests);
    return { ...summary, cpuPerReq, errors, lastError: lastError && String(lastError?.message ?? lastError) };
  } finally {
    await client.close();
  }
}

// ---- isolation: one fresh client process per run ---------------------------
//
// Every run happens in a new child process (unless BENCH_ISOLATE=0), so no
// cell measures the garbage, JIT state or global hooks another left behind
// (the OpenTelemetry cells register and disable globals; got and fetch leave
// heap behind). Seen before isolation: the same mesh cell took 38-40 µs of
// CPU per request when run with raw-3pools alone, and 46-52 µs after the
// other cells in one process.

const childArgs = process.argv.indexOf('--run');
if (childArgs !== -1) {
  const [cellId, concurrency, portList] = process.argv.slice(childArgs + 1);
  const cell = cells.find((c) => c.id === cellId);
  if (!cell) throw new Error(`bench child: unknown cell ${cellId}`);
  const r = await runOnce(cell, portList.split(',').map(Number), Number(concurrency));
  process.send(r, () => process.exit(0));
} else {
  await main();
}

/** BENCH_PIN=1: bind a process to one CPU (taskset), before it has done any measured work. */
function pin(pid, cpu) {
  if (process.env.BENCH_PIN !== '1' || pid === undefined) return;
  execFileSync('taskset', ['-pc', String(cpu), String(pid)], { stdio: 'ignore' });
}

function runIsolated(cell, ports, concurrency) {
  if (process.env.BENCH_ISOLATE === '0') return runOnce(cell, ports, concurrency);
  const script = fileURLToPath(import.meta.url);
  const child = fork(script, ['--run', cell.id, String(concurrency), ports.join(',')], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: ['--expose-gc'],
  });
  pin(child.pid, 0);
  return new Promise((resolve, reject) => {
    let result;
    child.once('message', (m) => (result = m));
    child.once('exit', (code) => (result ? resolve(result) : reject(new Error(`bench run of ${cell.id} exited with ${code}`))));
  });
}

// ---- inbound report ----------------------------------------------------------

function median(xs) {
  const v = xs.filter(Number.isFinite).sort((x, y) => x - y);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/**
 * Server CPU per request of each inbound cell, and what the wrapper adds over
 * the plain server: median over rounds, and the median of the paired
 * differences (round k of the cell - round k of inbound-plain, run next to
 * each other). The bar (≤ 3 µs added with tracing off) is judged on the paired
 * median.
 */
function reportInbound(results) {
  const rows = [];
  const goals = [];
  for (const concurrency of config.concurrency) {
    const plain = results[concurrency]['inbound-plain'];
    for (const cell of inboundCells) {
      const r = results[concurrency][cell.id];
      const cpu = median(r.rounds.map((x) => x.serverCpuPerReq));
      const paired = (f) => (plain && cell.id !== 'inbound-plain' ? median(r.rounds.map((x, k) => f(x, plain.rounds[k]))) : NaN);
      const added = paired((x, p) => x.serverCpuPerReq - p.serverCpuPerReq);
      rows.push([
        String(concurrency),
        cell.id,
        fmtInt(r.rps),
        fmt(r.p50, 3),
        fmt(r.p99, 3),
        fmt(cpu, 1),
        cell.id === 'inbound-plain' ? '' : fmt(added, 1),
        cell.id === 'inbound-plain' ? '' : fmt(paired((x, p) => x.serverCpuPerReq / p.serverCpuPerReq)),
        cell.id === 'inbound-plain' ? '' : fmt(paired((x, p) => x.rps / p.rps)),
        r.errors ? String(r.errors) : '0',
      ]);
      if (cell.id === 'inbound-mesh' && plain) goals.push([`c=${concurrency} mesh.server() adds ≤ 3 µs server CPU/req (tracing off)`, added, added <= 3]);
    }
  }
  console.log(
    '\n' +
      table(
        ['in flight', 'cell', 'req/s (best)', 'p50 ms', 'p99 ms', 'server CPU µs/req (median)', 'added µs/req (paired median)', 'CPU ÷ plain (paired)', 'req/s ÷ plain (paired)', 'errors'],
        rows,
      ),
  );
  if (goals.length > 0) console.log('\n' + table(['goal', 'measured µs', 'met'], goals.map(([g, v, ok]) => [g, fmt(v, 1), ok ? 'yes' : 'NO'])));
}

// ---- main -------------------------------------------------------------------

async function main() {
  const started = Date.now();
  const machine = {
    date: new Date().toISOString(),
    node: process.version,
    cpu: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown'}`,
    loadBefore: loadavg().map((l) => l.toFixed(2)).join(' '),
  };
  console.log(`inmesh bench: Node ${machine.node}, ${machine.cpu}, load ${machine.loadBefore}`);
  console.log(
    `config: ${config.rounds} run(s) per cell (alternating order A..Z, Z..A, ..., best req/s kept), warm-up ${config.warmupMs} ms, ` +
      `measure ${config.durationMs} ms, cap ${config.maxRequests} req/run` +
      (cells.length > 0 ? `, ${config.upstreams} upstream processes` : '') +
      (inboundCells.length > 0 ? ', inbound cells: a fresh server and load-generator process per run' : '') +
      (globalThis.gc ? ', gc before measuring' : '') +
      (process.env.BENCH_ISOLATE === '0' ? ', all runs in this process' : ', each run in a fresh client process'),
  );
  if (meshCells.length === 0) console.log('note: createMesh is not available in dist/ yet: mesh cells skipped');

  const { ports, stop } = cells.length > 0 ? await startUpstreams(config.upstreams) : { ports: [], stop: async () => {} };
  const results = {}; // results[concurrency][cellId] = best run
  try {
    for (const concurrency of config.concurrency) {
      console.log(`c=${concurrency}: load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
      results[concurrency] = {};
      for (let round = 0; round < config.rounds; round++) {
        const order = round % 2 === 0 ? cells : [...cells].reverse(); // A B C, C B A, ...
        for (const cell of order) {
          const r = await runIsolated(cell, ports, concurrency);
          const best = results[concurrency][cell.id];
          results[concurrency][cell.id] = !best || r.rps > best.rps ? { ...r, runs: [...(best?.runs ?? []), r.rps] } : { ...best, runs: [...best.runs, r.rps] };
          process.stdout.write(
            `  c=${String(concurrency).padStart(2)} round ${round + 1} ${cell.id.padEnd(20)} ${fmtInt(r.rps).padStart(7)} req/s  p50 ${fmt(r.p50, 3)} ms  p99 ${fmt(r.p99, 3)} ms  cpu ${fmt(r.cpuPerReq, 0)} µs/req` +
              (r.errors ? `  ERRORS ${r.errors} (${r.lastError})` : '') + '\n',
          );
        }
        const inboundOrder = round % 2 === 0 ? inboundCells : [...inboundCells].reverse();
        for (const cell of inboundOrder) {
          const r = await runInbound(cell, concurrency, config);
          const prev = results[concurrency][cell.id];
          const rounds = [...(prev?.rounds ?? []), { rps: r.rps, serverCpuPerReq: r.serverCpuPerReq }];
          results[concurrency][cell.id] = !prev || r.rps > prev.rps ? { ...r, rounds } : { ...prev, rounds };
          process.stdout.write(
            `  c=${String(concurrency).padStart(2)} round ${round + 1} ${cell.id.padEnd(20)} ${fmtInt(r.rps).padStart(7)} req/s  p50 ${fmt(r.p50, 3)} ms  p99 ${fmt(r.p99, 3)} ms  server cpu ${fmt(r.serverCpuPerReq, 1)} µs/req` +
              (r.errors ? `  ERRORS ${r.errors} (${r.lastError})` : '') + '\n',
          );
        }
      }
    }
  } finally {
    await stop();
  }

  // ---- report -----------------------------------------------------------------

  const ratio = (a, b) => (a && b ? a / b : NaN);
  /** Median over rounds of cell run k ÷ baseline run k (runs are kept in round order). */
  const pairedMedian = (cell, base) => {
    const rs = cell.runs.map((rps, k) => rps / base.runs[k]).filter(Number.isFinite).sort((x, y) => x - y);
    if (rs.length === 0) return NaN;
    const mid = rs.length >> 1;
    return rs.length % 2 === 1 ? rs[mid] : (rs[mid - 1] + rs[mid]) / 2;
  };
  const rows = [];
  for (const concurrency of config.concurrency) {
    const base1 = results[concurrency]['raw-1pool'];
    const base3 = results[concurrency]['raw-3pools'];
    for (const cell of cells) {
      const r = results[concurrency][cell.id];
      rows.push([
        String(concurrency),
        cell.id,
        fmtInt(r.rps),
        fmt(r.p50, 3),
        fmt(r.p99, 3),
        fmt(ratio(r.rps, base1?.rps)),
        fmt(ratio(r.rps, base3?.rps)),
        fmt(ratio(r.p50, base3?.p50)),
        fmt(r.cpuPerReq, 0),
        fmt(ratio(r.cpuPerReq, base3?.cpuPerReq)),
        r.errors ? String(r.errors) : '0',
      ]);
    }
  }
  if (inboundCells.length > 0) reportInbound(results);
  const header = ['in flight', 'cell', 'req/s', 'p50 ms', 'p99 ms', 'req/s ÷ 1 Pool', 'req/s ÷ 3 Pools', 'p50 ÷ 3 Pools', 'CPU µs/req', 'CPU ÷ 3 Pools', 'errors'];
  if (rows.length > 0) console.log('\n' + table(header, rows));

  // Goals: mesh.request >= 0.90x raw (3 Pools) throughput and p50 <= 1.10x; traced >= 0.75x.
  const goals = [];
  for (const concurrency of config.concurrency) {
    const base = results[concurrency]['raw-3pools'];
    const mesh = results[concurrency]['mesh-request'];
    const traced = results[concurrency]['mesh-request-traced'];
    if (base && mesh) {
      goals.push([`c=${concurrency} mesh.request throughput ≥ 0.90× 3 Pools`, ratio(mesh.rps, base.rps), ratio(mesh.rps, base.rps) >= 0.9, pairedMedian(mesh, base)]);
      goals.push([`c=${concurrency} mesh.request p50 ≤ 1.10× 3 Pools`, ratio(mesh.p50, base.p50), ratio(mesh.p50, base.p50) <= 1.1, undefined]);
    }
    if (base && traced) {
      goals.push([`c=${concurrency} mesh.request traced throughput ≥ 0.75× 3 Pools`, ratio(traced.rps, base.rps), ratio(traced.rps, base.rps) >= 0.75, pairedMedian(traced, base)]);
    }
  }
  // Not goals, for reading the ones above: what the same telemetry costs without
  // the mesh, and what the mesh costs on top of it.
  const context_ = [];
  for (const concurrency of config.concurrency) {
    const r = results[concurrency];
    const rawTraced = r['raw-3pools-traced'];
    if (rawTraced && r['raw-3pools']) context_.push([`c=${concurrency} raw-3pools-traced ÷ raw-3pools (the SDK's own cost)`, ratio(rawTraced.rps, r['raw-3pools'].rps)]);
    if (rawTraced && r['mesh-request-traced']) context_.push([`c=${concurrency} mesh-request-traced ÷ raw-3pools-traced`, ratio(r['mesh-request-traced'].rps, rawTraced.rps)]);
  }
  if (context_.length > 0) console.log('\n' + table(['throughput ratio', 'measured'], context_.map(([g, v]) => [g, fmt(v)])));
  if (goals.length > 0) {
    console.log(
      '\n' +
        table(
          ['goal', 'measured (best ÷ best)', 'met', 'median of the rounds, paired'],
          goals.map(([g, v, ok, paired]) => [g, fmt(v), ok ? 'yes' : 'NO', paired === undefined ? '' : fmt(paired)]),
        ),
    );
    console.log(
      'paired: round k of the cell ÷ round k of the baseline, run next to each other; the median of those ratios is\n' +
        'less swayed by one lucky run of either side than the ratio of the two best runs.',
    );
  }
  machine.loadAfter = loadavg().map((l) => l.toFixed(2)).join(' ');
  console.log(`\nload average after: ${machine.loadAfter}; wall time ${((Date.now() - started) / 1000).toFixed(1)} s`);

  if (process.env.BENCH_JSON) {
    writeFileSync(process.env.BENCH_JSON, JSON.stringify({ machine, config, results, goals }, null, 2));
    console.log(`results written to ${process.env.BENCH_JSON}`);
  }
  const anyErrors = Object.values(results).some((byCell) => Object.values(byCell).some((r) => r.errors > 0));
  process.exitCode = anyErrors ? 1 : 0;
}
