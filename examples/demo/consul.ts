/**
 * A one-server Consul agent for the demo, on free loopback ports, found by the
 * test harness's finder (CONSUL_BIN, the PATH, the .cache copy, or Debian's
 * consul 1.8.7 fetched into .cache; see test/harness/consul-binary.ts).
 *
 * Unlike the tests' `-dev` agent it keeps its catalog in a data directory, so
 * stopping it for a few seconds and starting it again is what an agent restart
 * is in production: the registrations survive, and callers only lose the agent
 * while it is away.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findConsulBinary, type ConsulBinary } from '../../test/harness/consul-binary.ts';
import { agentPorts } from '../../test/harness/consul-agent.ts';
import { startProcess, stopProcess, type Proc } from './procs.ts';

export interface DemoConsul {
  readonly binary: ConsulBinary;
  /** `127.0.0.1:PORT`, the CONSUL_HTTP_ADDR form. */
  readonly httpAddr: string;
  /** Stops the agent (SIGTERM, by PID); its data stays for `start()`. */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data; resolves once it has a leader. */
  start(): Promise<void>;
  /** stop() and remove the data directory. */
  close(): Promise<void>;
}

/** The agent, or the reason none can be had (then the demo uses the file registry). */
export async function startDemoConsul(readyTimeoutMs = 30_000): Promise<DemoConsul | { unavailable: string }> {
  let binary: ConsulBinary;
  try {
    binary = await findConsulBinary();
  } catch (err) {
    return { unavailable: (err as Error).message.split('\n')[0] ?? 'no Consul binary' };
  }
  const ports = await agentPorts();
  const dir = mkdtempSync(join(tmpdir(), 'inmesh-demo-consul-'));
  const configFile = join(dir, 'agent.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      node_name: 'inmesh-demo',
      datacenter: 'dc1',
      server: true,
      bootstrap_expect: 1,
      data_dir: join(dir, 'data'),
      bind_addr: '127.0.0.1',
      client_addr: '127.0.0.1',
      advertise_addr: '127.0.0.1',
      ports: { ...ports, https: -1 },
      disable_update_check: true,
      log_level: 'WARN',
      check_update_interval: '0s',
      // The fastest Raft timings: a one-server agent elects itself within a second or two.
      performance: { raft_multiplier: 1 },
      leave_on_terminate: false,
    }),
  );
  const httpAddr = `127.0.0.1:${ports.http}`;
  let proc: Proc | undefined;

  const start = async (): Promise<void> => {
    if (proc !== undefined) return;
    const p = startProcess('consul', binary.path, ['agent', `-config-file=${configFile}`], { ...process.env, CONSUL_HTTP_TOKEN: '', CONSUL_HTTP_ADDR: '' }, false);
    proc = p;
    void p.exited.then(() => {
      if (proc === p) proc = undefined;
    });
    await waitForLeader(`http://${httpAddr}`, readyTimeoutMs, p);
  };
  const stop = async (): Promise<void> => {
    if (proc !== undefined) await stopProcess(proc, 'SIGTERM', 5_000);
    proc = undefined;
  };
  try {
    await start();
  } catch (err) {
    await stop();
    rmSync(dir, { recursive: true, force: true });
    return { unavailable: (err as Error).message };
  }
  return {
    binary,
    httpAddr,
    start,
    stop,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `/v1/status/leader` until it names a leader; fails at once if the agent exits. Bounded by `timeoutMs`. */
async function waitForLeader(url: string, timeoutMs: number, proc: Proc): Promise<void> {
  const state = { exited: false };
  void proc.exited.then(() => (state.exited = true));
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (state.exited) throw new Error('the Consul agent exited during start (see the demo log)');
    try {
      const res = await fetch(`${url}/v1/status/leader`, { signal: AbortSignal.timeout(1_000) });
      const body = await res.text();
      if (res.ok && /"[^"]+"/.test(body)) return;
      last = `status/leader answered ${res.status} ${body}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the Consul agent had no leader after ${timeoutMs} ms (${last})`);
}
