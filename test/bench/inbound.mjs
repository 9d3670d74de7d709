// The inbound cells: one server process (inbound-server.mjs: plain node:http,
// or wrapped by mesh.server()) and one load-generator process
// (inbound-load.mjs) per run; the figure of interest is the SERVER process's
// CPU per request, measured by the server itself over the measured window.
import { execFileSync, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const inboundCells = [
  { id: 'inbound-plain', label: 'node:http server, the upstream handler', variant: 'plain' },
  { id: 'inbound-mesh', label: 'the same wrapped by mesh.server(), inbound policy on, no SDK', variant: 'mesh' },
  { id: 'inbound-mesh-traced', label: 'inbound-mesh with startTelemetry() on (batching, no-op exporters)', variant: 'mesh-traced' },
];

const serverScript = fileURLToPath(new URL('./inbound-server.mjs', import.meta.url));
const loadScript = fileURLToPath(new URL('./inbound-load.mjs', import.meta.url));

function pin(pid, cpu) {
  if (process.env.BENCH_PIN !== '1' || pid === undefined) return;
  execFileSync('taskset', ['-pc', String(cpu), String(pid)], { stdio: 'ignore' });
}

/** Resolves with the next IPC message of `child`; rejects if it exits first. */
function nextMessage(child, what) {
  return new Promise((resolve, reject) => {
    const onExit = (code) => reject(new Error(`${what} exited with ${code} before answering`));
    child.once('exit', onExit);
    child.once('message', (m) => {
      child.off('exit', onExit);
      resolve(m);
    });
  });
}

function stopChild(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', resolve);
    if (child.connected) child.disconnect();
    setTimeout(() => child.kill(), 2000).unref();
  });
}

/** One measured run of `cell` at `concurrency` in flight: fresh server and load processes. */
export async function runInbound(cell, concurrency, config) {
  const server = fork(serverScript, [cell.variant], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--expose-gc', ...(process.env.BENCH_SERVER_EXEC_ARGV?.split(' ').filter(Boolean) ?? [])] });
  pin(server.pid, 1);
  let load;
  try {
    const { port } = await nextMessage(server, `inbound server ${cell.id}`);
    load = fork(loadScript, [port, concurrency, config.warmupMs, config.durationMs, config.maxRequests].map(String), {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [],
    });
    pin(load.pid, 0);
    await nextMessage(load, 'inbound load generator'); // warmed up
    const started = nextMessage(server, `inbound server ${cell.id}`);
    server.send({ cmd: 'start' });
    await started;
    const result = nextMessage(load, 'inbound load generator');
    load.send({ cmd: 'go' });
    const r = await result;
    const cpuAnswer = nextMessage(server, `inbound server ${cell.id}`);
    server.send({ cmd: 'stop' });
    const cpu = await cpuAnswer;
    return { ...r, serverCpuPerReq: cpu.cpuUs / Math.max(1, r.requests) };
  } finally {
    await Promise.all([stopChild(server), load === undefined ? undefined : stopChild(load)]);
  }
}
