/**
 * A real Consul cluster on loopback for the integration tests: three servers
 * (`consul agent -server -bootstrap-expect=3`) and one client agent, all from
 * the one harness binary, each with its own ports (picked here, 127.0.0.1 only)
 * and its own data dir in a temp dir. Every agent joins the others with
 * `retry_join` on their serf LAN ports; Raft runs with `raft_multiplier` 1 (the
 * tightest timing Consul accepts from its config). `start` returns once the
 * client agent sees a leader and three Raft peers, within a bounded deadline.
 *
 * Processes are stopped by PID: `kill(i)` (SIGKILL to one server),
 * `close()` (SIGTERM to all, SIGKILL after 10 s, then the temp dir goes), and
 * the process 'exit' hook of consul-agent.ts kills whatever is left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findConsulBinary } from './consul-binary.ts';
import { trackProcess } from './consul-agent.ts';
import { freePort } from './ports.ts';

export interface ClusterMember {
  readonly name: string;
  readonly server: boolean;
  /** HTTP API port (127.0.0.1). */
  readonly httpPort: number;
  /** Server RPC port (what `/v1/status/leader` names); undefined for the client. */
  readonly rpcPort: number | undefined;
  pid(): number | undefined;
  logs(): string;
}

export interface ConsulCluster {
  readonly servers: readonly ClusterMember[];
  readonly client: ClusterMember;
  /** `127.0.0.1:PORT` of the client agent's HTTP API (what inmesh talks to). */
  readonly clientAddr: string;
  /** `http://127.0.0.1:PORT` of the client agent. */
  readonly clientUrl: string;
  /** The index in `servers` of the leader as the client agent reports it, undefined while there is none. */
  leader(): Promise<number | undefined>;
  /** SIGKILL to server `i`; resolves once it has exited. */
  kill(i: number): Promise<void>;
  close(): Promise<void>;
}

async function leaderOf(url: string): Promise<string> {
  const res = await fetch(`${url}/v1/status/leader`, { signal: AbortSignal.timeout(2_000) });
  const text = await res.text();
  return res.ok ? (JSON.parse(text) as string) : '';
}

export async function startConsulCluster(options: { startTimeoutMs?: number } = {}): Promise<ConsulCluster> {
  const binary = await findConsulBinary();
  const dir = mkdtempSync(join(tmpdir(), 'inmesh-consul-cluster-'));
  const taken = new Set<number>();
  interface Plan {
    name: string;
    server: boolean;
    ports: { http: number; serf_lan: number; serf_wan: number; server: number };
  }
  const plans: Plan[] = [];
  for (let i = 0; i < 4; i++) {
    const server = i < 3;
    plans.push({
      name: server ? `server-${i}` : 'client',
      server,
      ports: { http: await freePort(false, taken), serf_lan: await freePort(true, taken), serf_wan: await freePort(true, taken), server: await freePort(false, taken) },
    });
  }
  const joinAddrs = plans.filter((p) => p.server).map((p) => `127.0.0.1:${p.ports.serf_lan}`);
  const children = new Map<string, ChildProcess>();
  const outputs = new Map<string, string>();

  const spawnMember = (plan: Plan): void => {
    const data = join(dir, plan.name);
    mkdirSync(data, { recursive: true });
    const config = {
      node_name: `inmesh-${plan.name}-${plan.ports.http}`,
      datacenter: 'dc1',
      data_dir: data,
      server: plan.server,
      ...(plan.server ? { bootstrap_expect: 3 } : {}),
      bind_addr: '127.0.0.1',
      client_addr: '127.0.0.1',
      advertise_addr: '127.0.0.1',
      advertise_addr_wan: '127.0.0.1',
      retry_join: joinAddrs,
      retry_interval: '500ms',
      disable_update_check: true,
      disable_host_node_id: true,
      log_level: 'INFO',
      check_update_interval: '0s',
      performance: { raft_multiplier: 1 },
      ports: { http: plan.ports.http, https: -1, dns: -1, grpc: -1, serf_lan: plan.ports.serf_lan, serf_wan: plan.ports.serf_wan, server: plan.ports.server },
    };
    const file = join(dir, `${plan.name}.json`);
    writeFileSync(file, JSON.stringify(config, null, 2));
    const proc = spawn(binary.path, ['agent', `-config-file=${file}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CONSUL_HTTP_TOKEN: '', CONSUL_HTTP_ADDR: '' },
    });
    trackProcess(proc);
    children.set(plan.name, proc);
    outputs.set(plan.name, '');
    const append = (chunk: Buffer): void => {
      const text = (outputs.get(plan.name) ?? '') + chunk.toString();
      outputs.set(plan.name, text.length > 65_536 ? text.slice(-65_536) : text);
    };
    proc.stdout.on('data', append);
    proc.stderr.on('data', append);
    proc.once('exit', () => {
      if (children.get(plan.name) === proc) children.delete(plan.name);
    });
  };

  const stop = async (name: string, signal: NodeJS.Signals): Promise<void> => {
    const proc = children.get(name);
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  };

  const member = (plan: Plan): ClusterMember => ({
    name: plan.name,
    server: plan.server,
    httpPort: plan.ports.http,
    rpcPort: plan.server ? plan.ports.server : undefined,
    pid: () => children.get(plan.name)?.pid,
    logs: () => outputs.get(plan.name) ?? '',
  });
  const servers = plans.filter((p) => p.server).map(member);
  const clientPlan = plans[3]!;
  const client = member(clientPlan);
  const clientUrl = `http://127.0.0.1:${clientPlan.ports.http}`;

  const close = async (): Promise<void> => {
    await Promise.all([...children.keys()].map((name) => stop(name, 'SIGTERM')));
    rmSync(dir, { recursive: true, force: true });
  };

  const cluster: ConsulCluster = {
    servers,
    client,
    clientAddr: `127.0.0.1:${clientPlan.ports.http}`,
    clientUrl,
    leader: async () => {
      const addr = await leaderOf(clientUrl).catch(() => '');
      const i = plans.findIndex((p) => p.server && addr === `127.0.0.1:${p.ports.server}`);
      return i >= 0 ? i : undefined;
    },
    kill: (i) => stop(plans[i]!.name, 'SIGKILL'),
    close,
  };

  for (const plan of plans) spawnMember(plan);
  // Bounded wait: the client sees a leader and three Raft peers.
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  let last = 'no answer yet';
  try {
    for (;;) {
      for (const plan of plans) {
        if (!children.has(plan.name)) throw new Error(`consul ${plan.name} exited during start\n${(outputs.get(plan.name) ?? '').slice(-4000)}`);
      }
      try {
        const leader = await leaderOf(clientUrl);
        const res = await fetch(`${clientUrl}/v1/status/peers`, { signal: AbortSignal.timeout(2_000) });
        const peers = res.ok ? ((await res.json()) as string[]) : [];
        if (leader !== '' && peers.length === 3) break;
        last = `leader ${JSON.stringify(leader)}, ${peers.length} peers`;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`consul cluster had no leader with 3 peers after ${options.startTimeoutMs ?? 60_000} ms (${last})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await Promise.all([...children.keys()].map((name) => stop(name, 'SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return cluster;
}
