import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { alive, withLock } from './pids.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'inmesh-pids-'));
  dirs.push(d);
  return d;
}

/** The PID of a process that has exited (a child started and awaited). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await once(child, 'exit');
  return child.pid as number;
}

describe('pid harness', () => {
  it('alive() tells this process from one that has exited', async () => {
    expect(alive(process.pid)).toBe(true);
    expect(alive(await deadPid())).toBe(false);
  });

  it('withLock() takes over a lock whose holder has exited, and removes it after', async () => {
    const lock = join(tempDir(), 'x.lock');
    writeFileSync(lock, String(await deadPid()));
    let ran = false;
    await withLock(lock, async () => {
      ran = existsSync(lock);
    });
    expect(ran).toBe(true);
    expect(existsSync(lock)).toBe(false);
  });

  it('withLock() runs two holders one after the other', async () => {
    const lock = join(tempDir(), 'y.lock');
    const order: string[] = [];
    let release: () => void = () => undefined;
    const first = withLock(lock, async () => {
      order.push('a start');
      await new Promise<void>((r) => (release = r));
      order.push('a end');
    });
    const second = withLock(lock, async () => {
      order.push('b');
    });
    await new Promise((r) => setImmediate(r));
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(['a start', 'a end', 'b']);
  });
});
