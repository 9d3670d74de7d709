/** Processes by PID: whether one exists (stale locks, nothing left running), and stopping the children a test started. */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';

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
