/** Processes by PID: whether one exists, a lock between processes (its holder's PID inside), and stopping the children a test started. */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** True while a process with this PID exists (signal 0 checks without signalling; EPERM: it exists, owned by another user). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Empties `children`, killing each one still running (SIGKILL, by PID) and waiting for its exit. */
export async function killChildren(children: ChildProcess[]): Promise<void> {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGKILL');
      await once(child, 'exit');
    }
  }
}

/** A cross-process lock: O_EXCL create, the holder's PID inside, stale locks (dead PID) taken over. Bounded wait. */
export async function withLock(path: string, fn: () => Promise<void>): Promise<void> {
  mkdirSync(join(path, '..'), { recursive: true });
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      closeSync(openSync(path, 'wx'));
      writeFileSync(path, String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number.parseInt(readFileSafe(path), 10);
      if (Number.isInteger(holder) && holder > 0 && !alive(holder)) {
        rmSync(path, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for the lock ${path} (held by PID ${holder})`);
      await new Promise((r) => setTimeout(r, 200)); // another process holds it: no event to await across processes
    }
  }
  try {
    await fn();
  } finally {
    rmSync(path, { force: true });
  }
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
