/** Whether a process exists, by PID (for stale locks and for checking that nothing a test started is left). */

/** True while a process with this PID exists (signal 0 checks without signalling; EPERM: it exists, owned by another user). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
