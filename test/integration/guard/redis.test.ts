/**
 * mesh.guard() / Guard over a real redis-server (Debian's, started by the
 * harness) and ioredis: a paused server (SIGSTOP/SIGCONT of its PID), a killed
 * and restarted one, load shedding, a reply that is never retried, and a rate
 * limit shared through Redis. Every server is stopped by its PID in afterEach.
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { CircuitOpenError, ErrorCodes, LoadShedError, RateLimitedError, TimeoutError, UpstreamError, isInmeshError } from '../../../src/errors.ts';
import { Guard } from '../../../src/guard/guard.ts';
import { createMesh, type Mesh } from '../../../src/mesh/mesh.ts';
import { resolvePolicy } from '../../../src/policy/resolve.ts';
import type { PolicyDocument } from '../../../src/policy/schema.ts';
import { startRedis, type RedisServer } from '../../harness/redis.ts';

const servers: RedisServer[] = [];
const clients: Redis[] = [];
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  for (const close of closers.splice(0)) await close();
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function server(port?: number): Promise<RedisServer> {
  const s = await startRedis(port === undefined ? {} : { port });
  servers.push(s);
  return s;
}

/** A connected ioredis client; `options` as ioredis takes them. */
async function client(s: RedisServer, options: Record<string, unknown> = {}): Promise<Redis> {
  const r = new Redis(s.url, { lazyConnect: true, ...options });
  clients.push(r);
  r.on('error', () => undefined); // connection errors are what these tests provoke
  await r.connect();
  return r;
}

function meshWith(resources: PolicyDocument['resources'], extra: { redisUrl?: string } = {}): Mesh {
  const mesh = createMesh({ policy: { apiVersion: 'inmesh/v1', resources }, env: {}, telemetry: { enabled: false }, ...extra });
  closers.push(() => mesh.close());
  return mesh;
}

describe('guarding Redis calls (real redis-server, ioredis)', () => {
  it('a paused server: each try times out, the call is retried and succeeds once the server resumes', async () => {
    const s = await server();
    const redis = await client(s);
    await redis.set('k', 'v');
    const mesh = meshWith({ cache: { timeouts: { perTry: '100ms', request: '5s' }, retries: { attempts: 10, backoff: { base: '5ms', max: '10ms' } }, circuitBreaker: { enabled: false } } });
    let tries = 0;
    let secondTry!: () => void;
    const second = new Promise<void>((r) => (secondTry = r));
    s.pause();
    const started = performance.now();
    const call = mesh.guard(
      'cache',
      () => {
        if (++tries === 2) secondTry();
        return redis.get('k');
      },
      { idempotent: true },
    );
    await second; // the first try timed out and a retry began
    s.resume();
    await expect(call).resolves.toBe('v');
    expect(tries).toBeGreaterThanOrEqual(2);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('a paused server that does not resume: the call ends at its total deadline', async () => {
    const s = await server();
    const redis = await client(s);
    const mesh = meshWith({ cache: { timeouts: { perTry: '100ms', request: '400ms' }, retries: { attempts: 10, idempotent: true, backoff: { base: '5ms', max: '10ms' } }, circuitBreaker: { enabled: false } } });
    let tries = 0;
    s.pause();
    const started = performance.now();
    const err = await mesh.guard('cache', () => (tries++, redis.get('k'))).catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    s.resume();
    // Every try was a per-try timeout; the last one was cut by the total deadline (or no time was left to retry).
    expect(isInmeshError(err) && (err.code === ErrorCodes.TIMEOUT || err.code === ErrorCodes.UPSTREAM)).toBe(true);
    if (err instanceof UpstreamError) expect(err.attempts.every((a) => a.error === ErrorCodes.TIMEOUT)).toBe(true);
    else expect((err as TimeoutError).phase).toBe('total');
    expect(tries).toBeGreaterThanOrEqual(3);
    expect(elapsed).toBeGreaterThanOrEqual(390);
    expect(elapsed).toBeLessThan(400 + 300);
  });

  it('a killed and restarted server: the breaker opens, fails fast, half-opens and closes', async () => {
    const s = await server();
    // No offline queue and no retry inside ioredis: with the server gone a command fails at once.
    const redis = await client(s, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 20 });
    const states: string[] = [];
    const waiters = new Map<string, () => void>();
    const reached = (state: string): Promise<void> => new Promise((r) => waiters.set(state, r));
    const doc: PolicyDocument = {
      apiVersion: 'inmesh/v1',
      resources: { cache: { retries: { attempts: 0 }, circuitBreaker: { minimumRequests: 3, errorThresholdPercent: 50, window: '10s', halfOpenAfter: '300ms' } } },
    };
    const guard = new Guard({}, {
      resources: resolvePolicy(doc).resources,
      onStateChange: (state) => {
        states.push(state);
        waiters.get(state)?.();
      },
    });
    closers.push(() => guard.close());
    let calls = 0;
    const get = (): Promise<string | null> => guard.guard('cache', () => (calls++, redis.get('k')));
    await expect(get()).resolves.toBeNull();

    const opened = reached('open');
    process.kill(s.pid, 'SIGKILL');
    await s.exited;
    let failures = 0;
    for (let i = 0; i < 20 && !states.includes('open'); i++) {
      await get().catch(() => failures++);
    }
    await opened;
    expect(failures).toBe(2); // 1 success + 2 failures: 3 calls (minimumRequests), 67 % failed
    const before = calls;
    const fast = performance.now();
    await expect(get()).rejects.toBeInstanceOf(CircuitOpenError);
    expect(calls).toBe(before); // failing fast: fn was not called
    expect(performance.now() - fast).toBeLessThan(50);

    const halfOpen = reached('half-open');
    const closed = reached('closed');
    // ioredis emits 'error' on each refused reconnect: wait for 'ready' alone (events.once would reject on 'error').
    const ready = new Promise<void>((r) => redis.once('ready', () => r()));
    await server(s.port);
    await ready;
    await halfOpen;
    await expect(get()).resolves.toBeNull();
    await closed;
    expect(states).toEqual(['open', 'half-open', 'closed']);
  });

  it('sheds calls above the concurrency limit at once, without calling fn', async () => {
    const s = await server();
    const redis = await client(s);
    const mesh = meshWith({ cache: { limits: { maxRequests: 2, maxPendingRequests: 0 }, timeouts: { request: '10s' }, circuitBreaker: { enabled: false } } });
    let calls = 0;
    const get = (): Promise<string | null> => mesh.guard('cache', () => (calls++, redis.get('k')));
    s.pause(); // the two admitted calls stay in flight
    const admitted = [get(), get()];
    for (let i = 0; i < 10; i++) await expect(get()).rejects.toBeInstanceOf(LoadShedError);
    expect(calls).toBe(2);
    s.resume();
    await expect(Promise.all(admitted)).resolves.toEqual([null, null]);
    await expect(get()).resolves.toBeNull();
  });

  it('a WRONGTYPE reply is never retried, even for an idempotent call with retries left', async () => {
    const s = await server();
    const redis = await client(s);
    await redis.set('str', 'x');
    const mesh = meshWith({ cache: { retries: { attempts: 3, idempotent: true, retryOn: ['READONLY', 'ECONNRESET', 'ETIMEDOUT'] } } });
    let calls = 0;
    const err = await mesh.guard('cache', () => (calls++, redis.lpush('str', 'y')), { idempotent: true }).catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect((err as Error).name).toBe('ReplyError'); // the client's own error, unchanged
    expect((err as Error).message).toMatch(/^WRONGTYPE/);
  });

  it('a rate limit shared through Redis: two meshes draw from one bucket', async () => {
    const s = await server();
    const resources: PolicyDocument['resources'] = { queue: { rateLimit: { requestsPerSecond: 0.01, burst: 3, shared: true } } };
    const a = meshWith(resources, { redisUrl: s.url });
    const b = meshWith(resources, { redisUrl: s.url });
    const results: string[] = [];
    for (const m of [a, b, a, b, a]) {
      results.push(await m.guard('queue', () => 'sent').catch((e: unknown) => (e instanceof RateLimitedError ? 'limited' : String(e))));
    }
    expect(results).toEqual(['sent', 'sent', 'sent', 'limited', 'limited']);
  });
});
