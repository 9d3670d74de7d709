/**
 * A real redis-server for the integration tests (Bottleneck clustering).
 *
 * Binary lookup: `REDIS_SERVER_BIN`, then `redis-server` on the PATH. When none
 * exists and apt is usable (root, apt-get present), Debian's `redis-server`
 * package is installed with `apt-get update && apt-get install -y
 * redis-server` (serialised across vitest workers with a lock file). When that
 * fails too, the error says how to provide one: the Redis tests then fail; they
 * never skip quietly.
 *
 * Each server runs on a free loopback port of our choosing with no persistence
 * (`--bind 127.0.0.1 --port P --save '' --appendonly no`) and is stopped by its
 * PID.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { isExecutable, onPath } from './executables.ts';
import { freePort } from './ports.ts';
import { withLock } from './pids.ts';

// Debian puts redis-server in /usr/bin, which a trimmed PATH may lack.
const DEBIAN_BIN = ['/usr/bin'];

const run = promisify(execFile);

const PROJECT_ROOT = resolve(import.meta.dirname, '..', '..');
const LOCK = join(PROJECT_ROOT, '.cache', 'redis-install.lock');

const HOW_TO = [
  'No redis-server is available for the Redis integration tests. Provide one of:',
  '  - REDIS_SERVER_BIN=/path/to/redis-server (Redis 6 or 7)',
  '  - a `redis-server` on the PATH (Debian/Ubuntu: `sudo apt-get install -y redis-server`)',
  "  - root and apt access to the Debian archive, so the harness can run `apt-get install -y redis-server` itself",
].join('\n');



async function installWithApt(): Promise<string> {
  const failures: string[] = [];
  if (process.getuid?.() !== 0) failures.push('not running as root');
  if (!onPath('apt-get')) failures.push('apt-get not found');
  if (failures.length === 0) {
    try {
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      await run('apt-get', ['update', '-qq'], { timeout: 240_000, env });
      await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'redis-server'], { timeout: 240_000, env });
    } catch (e) {
      failures.push(`apt-get install -y redis-server failed: ${(e as Error).message.split('\n')[0] ?? ''}`);
    }
  }
  const found = onPath('redis-server', DEBIAN_BIN);
  if (found) return found;
  throw new Error(`${HOW_TO}\n(automatic installation: ${failures.join('; ') || 'installed, but redis-server is still not found'})`);
}

let binary: Promise<string> | undefined;

/** Locates redis-server, installing Debian's package when it is missing and apt is usable. */
export function findRedisServer(): Promise<string> {
  binary ??= (async () => {
    const fromEnv = process.env.REDIS_SERVER_BIN;
    if (fromEnv) {
      if (!isExecutable(fromEnv)) throw new Error(`REDIS_SERVER_BIN=${fromEnv} is not an executable file.\n${HOW_TO}`);
      return fromEnv;
    }
    const fromPath = onPath('redis-server', DEBIAN_BIN);
    if (fromPath) return fromPath;
    let path: string | undefined;
    await withLock(LOCK, async () => {
      path = onPath('redis-server', DEBIAN_BIN) ?? (await installWithApt());
    });
    if (path === undefined) throw new Error(HOW_TO);
    return path;
  })();
  return binary;
}

export interface RedisServer {
  readonly url: string;
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly pid: number;
  /** SIGSTOP by PID: the server holds its connections and answers nothing until resume(). */
  pause(): void;
  /** SIGCONT by PID. */
  resume(): void;
  /** Resolves when the process has exited (by stop(), or a kill from the test). */
  readonly exited: Promise<void>;
  /** SIGTERM by PID (after SIGCONT, in case it is paused), then SIGKILL after 5 s; resolves when the process has exited. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts a throw-away redis-server on a free loopback port (or on `port`, to
 * restart one where its clients reconnect); resolves once it accepts connections.
 */
export async function startRedis(options: { port?: number } = {}): Promise<RedisServer> {
  const bin = await findRedisServer();
  if (options.port !== undefined) return launch(bin, options.port);
  let lastError: Error | undefined;
  // A free port can be taken between our probe and redis's bind: try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    try {
      return await launch(bin, port);
    } catch (e) {
      lastError = e as Error;
    }
  }
  throw new Error(`could not start redis-server (${bin}): ${lastError?.message ?? 'unknown error'}`);
}

/** Servers still running: killed by PID when the test process exits, even after a failed teardown. */
const live = new Set<number>();
let exitHook = false;
function track(pid: number): void {
  live.add(pid);
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const p of live) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

function launch(bin: string, port: number): Promise<RedisServer> {
  const child: ChildProcess = spawn(
    bin,
    ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const pid = child.pid;
  if (pid !== undefined) track(pid);
  let output = '';
  const exited = new Promise<void>((r) =>
    child.once('exit', () => {
      if (pid !== undefined) live.delete(pid);
      r();
    }),
  );

  return new Promise<RedisServer>((resolveServer, reject) => {
    const timer = setTimeout(() => {
      fail(new Error(`redis-server on port ${port} was not ready within 15 s:\n${output}`));
    }, 15_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        child.stderr?.resume();
        child.off('exit', onEarlyExit);
        let stopping: Promise<void> | undefined;
        resolveServer({
          url: `redis://127.0.0.1:${port}`,
          host: '127.0.0.1',
          port,
          pid: pid as number,
          exited,
          pause: () => process.kill(pid as number, 'SIGSTOP'),
          resume: () => process.kill(pid as number, 'SIGCONT'),
          stop: () => {
            stopping ??= (async () => {
              if (child.exitCode !== null || child.signalCode !== null) return;
              process.kill(pid as number, 'SIGCONT');
              process.kill(pid as number, 'SIGTERM');
              const kill = setTimeout(() => {
                try {
                  process.kill(pid as number, 'SIGKILL');
                } catch {
                  // already gone
                }
              }, 5_000);
              await exited;
              clearTimeout(kill);
            })();
            return stopping;
          },
        });
      }
    };
    const onEarlyExit = (code: number | null): void => {
      fail(new Error(`redis-server exited with code ${code} before it was ready:\n${output}`));
    };
    const fail = (error: Error): void => {
      clearTimeout(timer);
      if (child.exitCode === null && pid !== undefined) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      reject(error);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    child.once('exit', onEarlyExit);
    child.once('error', (e) => fail(e));
  });
}
