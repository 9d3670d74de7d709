/**
 * guard: runs a call to a non-HTTP resource (cache, database, queue) under a
 * resource policy — total and per-try timeout, retries with backoff, a
 * concurrency limit with load shedding.
 */
import { AbortedError, LoadShedError, TimeoutError, UpstreamError } from '../errors.ts';
import { sleep } from '../internal/sleep.ts';
import { backoffDelay } from '../resilience/retry.ts';

/** How a resource is guarded, given in code. */
export interface ResourcePolicy {
  /** Total time for the call, all tries and backoff included, in ms. */
  readonly timeout?: number;
  /** Time for one try, in ms. */
  readonly perTryTimeout?: number;
  /** Retries after the first try (only for retryable failures of retryable calls). */
  readonly retries?: number;
  /** Backoff base and cap between tries, in ms. */
  readonly retryBaseInterval?: number;
  readonly retryMaxInterval?: number;
  /** Calls in flight at once; above it a call is shed with LoadShedError. */
  readonly maxRequests?: number;
  /** Error codes or names that are retryable (e.g. ECONNRESET, READONLY, ETIMEDOUT). */
  readonly retryOn?: readonly string[];
  /** Predicate that decides whether a failure is retryable; wins over retryOn. */
  readonly isRetryable?: (error: unknown) => boolean;
  /** Every call to this resource is idempotent. */
  readonly idempotent?: boolean;
}

/** Per-call options, named as mesh.request's. */
export interface GuardOptions {
  readonly timeout?: number;
  readonly perTryTimeout?: number;
  readonly retries?: number;
  readonly idempotent?: boolean;
  readonly signal?: AbortSignal;
}

export type GuardedFn<T> = (signal: AbortSignal | undefined) => Promise<T> | T;

const DEFAULT_BASE_MS = 25;
const DEFAULT_MAX_MS = 250;

function codeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code } = error as { code?: unknown };
  return typeof code === 'string' ? code : undefined;
}

function retryable(policy: ResourcePolicy, error: unknown): boolean {
  if (policy.isRetryable) return policy.isRetryable(error);
  const list = policy.retryOn;
  if (!list) return false;
  const code = codeOf(error);
  if (code !== undefined && list.includes(code)) return true;
  if (error instanceof Error && list.includes(error.name)) return true;
  // Redis answers carry their code as the first word of the message (READONLY, LOADING, ...).
  return error instanceof Error && list.includes(error.message.split(' ', 1)[0] ?? '');
}

/** The state of one guarded resource: its policy and its calls in flight. */
export class Resource {
  readonly name: string;
  readonly policy: ResourcePolicy;
  private inFlight = 0;

  constructor(name: string, policy: ResourcePolicy) {
    this.name = name;
    this.policy = policy;
  }

  async run<T>(fn: GuardedFn<T>, options: GuardOptions = {}): Promise<T> {
    const max = this.policy.maxRequests;
    if (max !== undefined && this.inFlight >= max) throw new LoadShedError(this.name, 'maxRequests');
    this.inFlight++;
    try {
      return await this.tries(fn, options);
    } finally {
      this.inFlight--;
    }
  }

  private async tries<T>(fn: GuardedFn<T>, options: GuardOptions): Promise<T> {
    const p = this.policy;
    const total = options.timeout ?? p.timeout;
    const perTry = options.perTryTimeout ?? p.perTryTimeout;
    const idempotent = options.idempotent ?? p.idempotent ?? false;
    const retries = options.retries ?? p.retries ?? 0;
    const deadline = total === undefined ? undefined : performance.now() + total;
    const totalSignal = total === undefined ? undefined : AbortSignal.timeout(total);
    const outer = [options.signal, totalSignal].filter((s): s is AbortSignal => s !== undefined);
    const attempts: { endpoint: undefined; error?: string }[] = [];
    for (let n = 0; ; n++) {
      if (options.signal?.aborted) throw new AbortedError({ service: this.name, cause: options.signal.reason });
      if (totalSignal?.aborted) throw new TimeoutError('total', total ?? 0, { service: this.name });
      const trySignal = perTry === undefined ? undefined : AbortSignal.timeout(perTry);
      const signals = trySignal ? [...outer, trySignal] : outer;
      const signal = signals.length <= 1 ? signals[0] : AbortSignal.any(signals);
      try {
        return await raceSignal(fn(signal), signal);
      } catch (error) {
        if (options.signal?.aborted) throw new AbortedError({ service: this.name, cause: options.signal.reason });
        if (totalSignal?.aborted) throw new TimeoutError('total', total ?? 0, { service: this.name, cause: error });
        const tryTimedOut = trySignal?.aborted === true;
        const failure = tryTimedOut ? new TimeoutError('attempt', perTry ?? 0, { service: this.name, cause: error }) : error;
        attempts.push({ endpoint: undefined, error: codeOf(failure) ?? (failure instanceof Error ? failure.name : 'error') });
        // Only an idempotent call is tried again, and only after a per-try timeout or a failure classified retryable.
        const mayRetry = n < retries && idempotent && (tryTimedOut || retryable(p, error));
        if (!mayRetry) {
          if (attempts.length === 1) throw failure;
          throw new UpstreamError(this.name, attempts, { cause: failure });
        }
        const wait = backoffDelay(n, p.retryBaseInterval ?? DEFAULT_BASE_MS, p.retryMaxInterval ?? DEFAULT_MAX_MS);
        if (deadline !== undefined && performance.now() + wait >= deadline) {
          throw new TimeoutError('total', total ?? 0, { service: this.name, cause: failure });
        }
        await sleep(wait, outer.length === 0 ? undefined : outer.length === 1 ? outer[0] : AbortSignal.any(outer)).catch(() => undefined);
      }
    }
  }
}

/** Settles with the call, or rejects when the signal fires first (a client that ignores the signal). */
function raceSignal<T>(value: Promise<T> | T, signal: AbortSignal | undefined): Promise<T> | T {
  if (signal === undefined || !(value instanceof Promise)) return value;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    value.then(
      (v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the client's own failure passes through unchanged
      (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e); },
    );
  });
}

/** Guards calls by resource name; a name with no policy calls fn directly (no signal, no timer). */
export class Guard {
  private readonly resources = new Map<string, Resource>();

  constructor(policies: Readonly<Record<string, ResourcePolicy>> = {}) {
    for (const [name, policy] of Object.entries(policies)) this.resources.set(name, new Resource(name, policy));
  }

  guard<T>(name: string, fn: GuardedFn<T>, options?: GuardOptions): Promise<T> {
    const resource = this.resources.get(name);
    if (resource === undefined && options === undefined) {
      try {
        return Promise.resolve(fn(undefined));
      } catch (error) {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the client's own failure passes through unchanged
        return Promise.reject(error);
      }
    }
    return (resource ?? new Resource(name, {})).run(fn, options);
  }

  guarded<A extends unknown[], T>(name: string, fn: (signal: AbortSignal | undefined, ...args: A) => Promise<T> | T) {
    return (...args: A): Promise<T> => this.guard(name, (signal) => fn(signal, ...args));
  }
}
