/**
 * Every process the demo starts goes through here: it is spawned with an IPC
 * channel (Node children) or plain pipes (Consul), its PID is recorded, and
 * `stopAll()` stops each one still running by its PID (SIGTERM, then SIGKILL
 * after a grace period). A process 'exit' hook SIGKILLs whatever is left, so an
 * error anywhere still leaves nothing running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { alive } from '../../test/harness/pids.ts';

export interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
}

const running = new Map<number, Proc>();
/** Every PID started, for the end check that none is left. */
export const startedPids: { name: string; pid: number }[] = [];
let log: WriteStream | undefined;
let onStart: ((name: string, pid: number) => void) | undefined;

/** Children's stdout and stderr go to this file (not the terminal, which the live view owns). */
export function setProcessLog(path: string, started: (name: string, pid: number) => void): void {
  log = createWriteStream(path, { flags: 'a' });
  onStart = started;
  process.once('exit', () => {
    for (const p of running.values()) kill(p.pid, 'SIGKILL');
  });
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Spawns `command args`; `ipc` adds Node's IPC channel (for the demo's own children). */
export function startProcess(name: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv, ipc: boolean): Proc {
  const child = spawn(command, args, { env, stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  const pid = child.pid;
  const exited = once(child, 'exit').then(() => {
    running.delete(pid);
  });
  child.stdout?.on('data', (chunk: Buffer) => log?.write(`[${name} ${pid}] ${chunk.toString()}`));
  child.stderr?.on('data', (chunk: Buffer) => log?.write(`[${name} ${pid}] ${chunk.toString()}`));
  child.on('error', (err) => log?.write(`[${name} ${pid}] spawn error: ${err.message}\n`));
  const proc: Proc = { name, child, pid, exited };
  running.set(pid, proc);
  startedPids.push({ name, pid });
  onStart?.(name, pid);
  return proc;
}

/** Stops one process by PID: `signal`, then SIGKILL after `graceMs`; resolves once it has exited. */
export async function stopProcess(proc: Proc, signal: NodeJS.Signals = 'SIGTERM', graceMs = 3_000): Promise<void> {
  if (!running.has(proc.pid)) return;
  kill(proc.pid, signal);
  const timer = setTimeout(() => kill(proc.pid, 'SIGKILL'), graceMs);
  await proc.exited;
  clearTimeout(timer);
}

/** Stops every process still running, all at once, each by its PID. */
export async function stopAll(graceMs = 3_000): Promise<void> {
  await Promise.all([...running.values()].map((p) => stopProcess(p, 'SIGTERM', graceMs)));
}

/** PIDs started by the demo that still exist. */
export function leftRunning(): number[] {
  return startedPids
    .map((p) => p.pid)
    .filter(alive);
}

export async function closeProcessLog(): Promise<void> {
  if (log === undefined) return;
  const l = log;
  log = undefined;
  await new Promise<void>((resolve) => l.end(resolve));
}
