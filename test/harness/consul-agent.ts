/**
 * Starts a real `consul agent -dev` for the integration tests.
 *
 * Everything binds to 127.0.0.1 on free ephemeral ports picked here (http, dns,
 * serf lan/wan, server RPC, grpc; the TCP and, where Consul also uses it, the UDP
 * side are both checked). The configuration is a JSON file in a temp dir,
 * update checks are off. `start` returns once `/v1/status/leader` names a leader
 * (and, with ACLs on, once the master token works): a poll with a bounded
 * deadline that also fails at once if the process exits.
 *
 * `restart()` keeps the ports and the config but NOT the state: `-dev` keeps the
 * catalog in memory, so a restarted agent has forgotten every service, check and
 * ACL token except the master token from the config. That is deliberate: it is
 * what the SDK must survive (re-registration, an index that goes backwards).
 *
 * Agents are stopped by PID: `stop()` (SIGTERM, then SIGKILL after 10 s),
 * `kill()` (SIGKILL), and a process 'exit' hook kills whatever is still running
 * if a test run dies half-way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findConsulBinary, type ConsulBinary } from './consul-binary.ts';
import { freePort } from './ports.ts';

export interface ConsulAgentOptions {
  /** ACLs on, `default_policy` deny unless given; the master token is also the agent token. */
  acl?: { masterToken: string; defaultPolicy?: 'allow' | 'deny' };
  /**
   * Serve the HTTP API over TLS as well (on `httpsPort`), with these PEM files;
   * `verifyIncoming` requires a client certificate signed by the CA.
   */
  tls?: { caFile: string; certFile: string; keyFile: string; verifyIncoming?: boolean };
  /** Extra top-level agent config (merged over ours). */
  extraConfig?: Record<string, unknown>;
  /** Deadline for the agent to elect itself leader. Default 30 s. */
  startTimeoutMs?: number;
}

export interface ConsulAgent {
  /** Always 127.0.0.1. */
  readonly address: string;
  /** HTTP API port. */
  readonly port: number;
  /** HTTPS API port when started with `tls`, else undefined. */
  readonly httpsPort: number | undefined;
  /** `127.0.0.1:PORT`, the CONSUL_HTTP_ADDR form. */
  readonly httpAddr: string;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly binary: ConsulBinary;
  /** PID of the running agent, undefined while stopped. */
  pid(): number | undefined;
  /** SIGTERM and wait for the exit (SIGKILL after 10 s). Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
  /** Starts again on the same ports with fresh (in-memory, empty) state; stops first if running. */
  restart(): Promise<void>;
  /** Starts a stopped agent again (same ports, fresh state). */
  start(): Promise<void>;
  /** The last ~64 KiB of the agent's output. */
  logs(): string;
  /** stop() and remove the temp dir. */
  close(): Promise<void>;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) {
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
}

/** Keeps `child` in the set the process 'exit' hook kills (for other harnesses that start Consul processes). */
export function trackProcess(child: ChildProcess): void {
  installExitHook();
  running.add(child);
  child.once('exit', () => running.delete(child));
}

/** The ports of a one-server agent, all free and different (dns and serf also for UDP), joined to `taken`. */
export async function agentPorts(taken = new Set<number>()): Promise<{ http: number; dns: number; serf_lan: number; serf_wan: number; server: number; grpc: number }> {
  return {
    http: await freePort(false, taken),
    dns: await freePort(true, taken),
    serf_lan: await freePort(true, taken),
    serf_wan: await freePort(true, taken),
    server: await freePort(false, taken),
    grpc: await freePort(false, taken),
  };
}

export async function startConsulAgent(options: ConsulAgentOptions = {}): Promise<ConsulAgent> {
  installExitHook();
  const binary = await findConsulBinary();
  const taken = new Set<number>();
  const ports = await agentPorts(taken);
  const httpsPort = options.tls ? await freePort(false, taken) : undefined;
  const dir = mkdtempSync(join(tmpdir(), 'inmesh-consul-'));
  const config: Record<string, unknown> = {
    node_name: `inmesh-test-${ports.http}`,
    bind_addr: '127.0.0.1',
    client_addr: '127.0.0.1',
    advertise_addr: '127.0.0.1',
    advertise_addr_wan: '127.0.0.1',
    disable_update_check: true,
    log_level: 'INFO',
    // Check output changes are written at once, not batched for 5 min.
    check_update_interval: '0s',
    ports: { ...ports, https: httpsPort ?? -1 },
    ...(options.tls
      ? {
          ca_file: options.tls.caFile,
          cert_file: options.tls.certFile,
          key_file: options.tls.keyFile,
          verify_incoming: false,
          verify_incoming_rpc: false,
          verify_incoming_https: options.tls.verifyIncoming ?? false,
          verify_outgoing: false,
        }
      : {}),
    ...(options.acl
      ? {
          primary_datacenter: 'dc1',
          acl: {
            enabled: true,
            default_policy: options.acl.defaultPolicy ?? 'deny',
            down_policy: 'extend-cache',
            enable_token_persistence: false,
            tokens: { master: options.acl.masterToken, agent: options.acl.masterToken },
          },
        }
      : {}),
    ...options.extraConfig,
  };
  const configFile = join(dir, 'agent.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));

  let child: ChildProcess | undefined;
  let output = '';
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const url = `http://127.0.0.1:${ports.http}`;

  const start = async (): Promise<void> => {
    if (child) return;
    const proc = spawn(binary.path, ['agent', '-dev', `-config-file=${configFile}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, CONSUL_HTTP_TOKEN: '', CONSUL_HTTP_ADDR: '' },
    });
    child = proc;
    running.add(proc);
    const append = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.length > 65_536) output = output.slice(-65_536);
    };
    proc.stdout.on('data', append);
    proc.stderr.on('data', append);
    const exited = new Promise<never>((_, reject) => {
      proc.once('exit', (code, signal) => {
        running.delete(proc);
        if (child === proc) child = undefined;
        reject(new Error(`consul agent exited during start (code ${code}, signal ${signal})\n${output.slice(-4000)}`));
      });
      proc.once('error', (err) => reject(err));
    });
    exited.catch(() => undefined);
    try {
      await Promise.race([waitReady(url, options.acl?.masterToken, startTimeoutMs), exited]);
    } catch (err) {
      await stopProc(proc, 'SIGKILL');
      throw err;
    }
  };

  const stopProc = async (proc: ChildProcess, signal: NodeJS.Signals): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      running.delete(proc);
      if (child === proc) child = undefined;
      return;
    }
    const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
    running.delete(proc);
    if (child === proc) child = undefined;
  };

  const agent: ConsulAgent = {
    address: '127.0.0.1',
    port: ports.http,
    httpsPort,
    httpAddr: `127.0.0.1:${ports.http}`,
    url,
    binary,
    pid: () => child?.pid,
    start,
    stop: async () => {
      if (child) await stopProc(child, 'SIGTERM');
    },
    kill: async () => {
      if (child) await stopProc(child, 'SIGKILL');
    },
    restart: async () => {
      if (child) await stopProc(child, 'SIGTERM');
      await start();
    },
    logs: () => output,
    close: async () => {
      if (child) await stopProc(child, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    await start();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return agent;
}

/** Polls until the agent has a leader (and the master token works), bounded by `timeoutMs`. */
async function waitReady(url: string, masterToken: string | undefined, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  let delay = 20;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/v1/status/leader`, { signal: AbortSignal.timeout(2000) });
      const body = await res.text();
      if (res.ok && /"[^"]+"/.test(body)) {
        if (!masterToken) return;
        const self = await fetch(`${url}/v1/acl/token/self`, {
          headers: { 'X-Consul-Token': masterToken },
          signal: AbortSignal.timeout(2000),
        });
        await self.arrayBuffer();
        if (self.ok) return;
        last = `acl/token/self answered ${self.status}`;
      } else {
        last = `status/leader answered ${res.status} ${body}`;
      }
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 200);
  }
  throw new Error(`consul agent at ${url} had no leader after ${timeoutMs} ms (${last})`);
}
