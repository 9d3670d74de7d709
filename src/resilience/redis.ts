/**
 * The Redis side of the shared rate limit: loads ioredis lazily (it is an
 * optional peerDependency, so the core never requires it) and opens the
 * Bottleneck connection for one limiter.
 */
import Bottleneck from 'bottleneck';
import { InvalidArgumentError } from '../errors.ts';

/** The part of the ioredis class we use (kept structural: ioredis' own types stay out of ours). */
type IORedisClass = new (url: string, options: Record<string, unknown>) => IORedisClient;
interface IORedisClient {
  disconnect(): void;
}

let loading: Promise<IORedisClass> | undefined;

/** Imports ioredis once; a missing package becomes an error that says how to install it. */
export function loadIORedis(): Promise<IORedisClass> {
  loading ??= import('ioredis').then(
    (mod: Record<string, unknown>) => {
      const ctor = (mod.default ?? mod.Redis) as IORedisClass | undefined;
      if (typeof ctor !== 'function') throw new InvalidArgumentError('the installed ioredis exports no Redis class; ioredis ^6 is needed');
      return ctor;
    },
    (error: unknown) => {
      loading = undefined; // allow a later retry once it is installed
      throw new InvalidArgumentError(
        'a shared rate limit needs the optional peer dependency ioredis (^6), which is not installed: run `npm install ioredis@^6`',
        { cause: error },
      );
    },
  );
  return loading;
}

/** Connect timeout and request policy of the limiter's Redis clients, ms. */
export const REDIS_CONNECT_TIMEOUT = 2_000;

/**
 * Opens a Bottleneck IORedisConnection to `url` (`redis://[user:pass@]host:port[/db]`
 * or `rediss://`). Commands fail at once while Redis is unreachable (no offline
 * queue, one try) so that the rate limit layer can fail open instead of
 * hanging calls.
 */
export async function openBottleneckConnection(url: string): Promise<Bottleneck.IORedisConnection> {
  const Redis = await loadIORedis();
  const client = new Redis(url, {
    connectTimeout: REDIS_CONNECT_TIMEOUT,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
  });
  try {
    return new Bottleneck.IORedisConnection({ Redis, client });
  } catch (error) {
    client.disconnect();
    throw error;
  }
}

/** `redis://user:secret@host:6379/0` → `redis://user:***@host:6379/0`, for messages. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable Redis URL)';
  }
}
