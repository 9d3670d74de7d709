/**
 * The retry layer (Envoy semantics, p-retry as the loop).
 *
 * How p-retry is used — never with its defaults (10 retries, 1 s, no jitter):
 * - The FIRST attempt runs outside p-retry: the happy path pays nothing for the
 *   retry machinery (no p-retry call, no closures, no option object). Only a
 *   first attempt that fails in a retryable way enters p-retry.
 * - p-retry gets `retries` = the retries left, and `minTimeout: 0,
 *   maxTimeout: 0, factor: 1, randomize: false`, so its own delay is always 0
 *   and schedules no timer. The delay is ours: `onFailedAttempt` (the hook
 *   p-retry documents for delays) runs `gate()`, which takes a retry-budget
 *   token, computes Envoy's full-jitter backoff (or honours `Retry-After`),
 *   caps it by the total deadline, drains the failed response and sleeps.
 *   Throwing from the hook ends the loop (budget spent, no time left, a
 *   `Retry-After` longer than `maxRetryAfter`).
 * - A result that must not be retried leaves the attempt as a return value
 *   (a response) or wrapped in p-retry's `AbortError` (an error), which p-retry
 *   unwraps; a retryable one is thrown as an internal `RetrySignal`.
 *
 * Conditions: classify.ts (Envoy retry_on). Only idempotent methods unless the
 * call says `idempotent: true` or the policy has `idempotentOnly: false`; a
 * connect failure (nothing sent) is always safe. Request bodies are replayed
 * only when buffered (string/Buffer/Uint8Array) and ≤ maxBodyBytes; streams
 * are sent once. Retries re-pick (balance layer) excluding hosts already tried.
 *
 * `Retry-After` on a 429/503 (when `maxRetryAfter` > 0) replaces the backoff:
 * the retry waits exactly that long, never less. When it asks for more than
 * `maxRetryAfter`, or more than the total deadline has left, the call does not
 * retry and returns that response (the server's answer, not an earlier retry
 * it asked us not to make).
 *
 * When retrying stops:
 * - retries or budget or time exhausted, or a Retry-After too long, with a
 *   response last → that response is returned (a 503 stays a response);
 * - budget spent with an error last → RetryBudgetExhaustedError (cause = that error);
 * - attempts exhausted with an error last → UpstreamError listing every attempt
 *   (cause = last error); a single attempt's error is thrown unchanged;
 * - caller abort → AbortedError; total deadline during an attempt → TimeoutError('total').
 */
import pRetry, { AbortError } from 'p-retry';
import {
  AbortedError,
  ErrorCodes,
  isInmeshError,
  RetryBudgetExhaustedError,
  UpstreamError,
  type AttemptRecord,
} from '../errors.ts';
import { IDEMPOTENT_METHODS } from '../policy/schema.ts';
import type { ResolvedRetries, ResolvedUpstream } from '../policy/types.ts';
import type { FailureVerdict, Handler, Layer, MeshRequest, MeshResponse } from '../core/types.ts';
import { sleep } from '../internal/sleep.ts';
import { RetryBudget } from './budget.ts';
import { classify, failureCode, type AttemptResult, type Classification } from './classify.ts';

const IDEMPOTENT: ReadonlySet<string> = new Set(IDEMPOTENT_METHODS);

/**
 * Envoy's full-jitter exponential backoff (JitteredExponentialBackOffStrategy):
 * retry n (0 for the first retry) waits a uniform random time in
 * [0, min(max, base·(2^(n+1) − 1))): base, 3·base, 7·base, … capped at max.
 */
export function backoffDelay(n: number, base: number, max: number, random: () => number = Math.random): number {
  const ceiling = Math.min(max, base * (2 ** Math.min(n + 1, 30) - 1));
  return Math.floor(random() * ceiling);
}

/** `Retry-After` as ms: delta-seconds or an HTTP date. Undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const at = Date.parse(s);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

export function isIdempotent(req: MeshRequest): boolean {
  return req.options.idempotent ?? (!req.policy.retries.idempotentOnly || IDEMPOTENT.has(req.method));
}

/** Can the request body be sent again? */
export function bodyReplayable(body: MeshRequest['body'], maxBytes: number): boolean {
  if (body === undefined || body === null) return true;
  if (typeof body === 'string') return body.length <= maxBytes && Buffer.byteLength(body) <= maxBytes;
  if (body instanceof Uint8Array) return body.byteLength <= maxBytes;
  return false;
}

export function retriesOf(req: MeshRequest): number {
  const r = req.options.retries;
  return r === false ? 0 : (r ?? req.policy.retries.attempts);
}

// A streamed body is never retried, not even after a refused connection:
// undici's request() destroys the stream when the attempt fails.
function mayRetry(req: MeshRequest, c: Classification, policy: Readonly<ResolvedRetries>): boolean {
  return c.retryable && (c.beforeSend || isIdempotent(req)) && bodyReplayable(req.body, policy.maxBodyBytes);
}

const VERDICTS: { readonly [V in FailureVerdict]: Classification } = {
  any: { outcome: 'gateway-error', retryable: true, beforeSend: true },
  idempotent: { outcome: 'gateway-error', retryable: true, beforeSend: false },
  never: { outcome: 'gateway-error', retryable: false, beforeSend: false },
};

/**
 * The one classification the retry layer reads: a guarded call's own verdict
 * on an error (`any` retries whatever the call, as a connect failure does),
 * else Envoy's retry_on (classify.ts).
 */
function classifyFor(req: MeshRequest, result: AttemptResult): Classification {
  const own = req.classifyFailure;
  if (own !== undefined && 'error' in result) return VERDICTS[own(result.error)];
  return classify(result, req.policy.retries);
}

/** Thrown inside p-retry for an attempt that should be retried. */
class RetrySignal extends Error {
  constructor() {
    super('retry');
    this.name = 'RetrySignal';
  }
}

/** Thrown from the hook when retrying must stop before the attempt. */
class StopRetry extends Error {
  readonly reason: 'budget' | 'deadline' | 'retry-after';
  constructor(reason: 'budget' | 'deadline' | 'retry-after') {
    super(reason);
    this.name = 'StopRetry';
    this.reason = reason;
  }
}

type Last = { response: MeshResponse; error?: undefined } | { error: unknown; response?: undefined };

function recordOf(last: Last, req: MeshRequest): AttemptRecord {
  const ep = req.endpoint;
  const endpoint = ep === undefined ? undefined : `${ep.address}:${ep.port}`;
  if (last.response !== undefined) return { endpoint: last.response.endpoint, status: last.response.statusCode };
  const e = last.error;
  const code = isInmeshError(e) && e.code !== ErrorCodes.UPSTREAM ? e.code : failureCode(e);
  return { endpoint, error: code ?? 'Error' };
}

function drain(res: MeshResponse): void {
  res.body.dump({ limit: 65_536 }).catch(() => undefined);
}

export interface RetryDeps {
  /** Random source for backoff jitter (tests). @default Math.random */
  readonly random?: (() => number) | undefined;
}

/** The retry layer, with the upstream's retry budget (undefined = unlimited). */
export interface RetryLayer extends Layer {
  readonly budget: RetryBudget | undefined;
}

/**
 * The retry layer of an upstream, with its retry budget. Always present: a
 * call's `retries` option or a route may ask for retries the upstream's
 * default has not; a call with none passes straight on.
 */
export function createRetryLayer(upstream: Readonly<ResolvedUpstream>, deps: RetryDeps = {}): RetryLayer {
  const cfg = upstream.retries.budget;
  const budget = cfg === undefined ? undefined : new RetryBudget(cfg);
  const random = deps.random ?? Math.random;

  async function retryLoop(req: MeshRequest, next: Handler, first: Last, max: number): Promise<MeshResponse> {
    const policy = req.policy.retries;
    const records: AttemptRecord[] = [recordOf(first, req)];
    let last: Last = first;
    let holding = false;
    let n = 0;

    const gate = async (): Promise<void> => {
      const res = last.response;
      // The server said when to come back: never sooner. Longer than we may wait → no retry.
      let after: number | undefined;
      if (res !== undefined && policy.maxRetryAfter > 0 && (res.statusCode === 429 || res.statusCode === 503)) {
        after = parseRetryAfter(res.headers['retry-after']);
        if (after !== undefined && after > policy.maxRetryAfter) throw new StopRetry('retry-after');
      }
      if (budget !== undefined) {
        if (!budget.tryAcquire()) throw new StopRetry('budget');
        holding = true;
      }
      let delay = backoffDelay(n, policy.backoff.base, policy.backoff.max, random);
      if (after !== undefined) delay = after;
      n++;
      if (delay >= req.deadline - performance.now()) {
        release();
        throw new StopRetry('deadline');
      }
      if (res !== undefined) drain(res);
      try {
        await sleep(delay, req.signal);
      } catch (error) {
        release();
        throw new AbortedError({ cause: error, service: req.service });
      }
    };
    const release = (): void => {
      if (holding) {
        holding = false;
        budget?.release();
      }
    };

    const attempt = async (): Promise<MeshResponse> => {
      req.attempt++;
      try {
        let res: MeshResponse;
        try {
          res = await next(req);
        } catch (error) {
          last = { error };
          records.push(recordOf(last, req));
          if (mayRetry(req, classifyFor(req, last), policy)) throw new RetrySignal();
          throw new AbortError(error instanceof Error ? error : new Error(String(error)));
        }
        last = { response: res };
        records.push(recordOf(last, req));
        if (mayRetry(req, classify(last, policy), policy)) throw new RetrySignal();
        return res;
      } finally {
        release();
      }
    };

    try {
      await gate();
      return await pRetry(attempt, {
        retries: max - 1,
        minTimeout: 0,
        maxTimeout: 0,
        factor: 1,
        randomize: false,
        maxRetryTime: Infinity,
        onFailedAttempt: ({ retriesLeft }) => (retriesLeft > 0 ? gate() : undefined),
      });
    } catch (error) {
      release();
      const stop = error instanceof StopRetry ? error.reason : error instanceof RetrySignal ? 'exhausted' : undefined;
      if (stop === undefined) {
        // a non-retryable failure (already unwrapped from AbortError by p-retry)
        if (isInmeshError(error) && error.code !== ErrorCodes.UPSTREAM && !isAttemptTimeout(error)) throw error;
        throw records.length > 1 ? new UpstreamError(req.service, records, { cause: error }) : error;
      }
      if (last.response !== undefined) return last.response;
      if (stop === 'budget') throw new RetryBudgetExhaustedError(req.service, { cause: last.error });
      throw records.length > 1 ? new UpstreamError(req.service, records, { cause: last.error }) : last.error;
    }
  }

  async function retrying(req: MeshRequest, next: Handler, max: number): Promise<MeshResponse> {
    if (budget !== undefined) budget.active++;
    try {
      let first: Last;
      try {
        const res = await next(req);
        // classify() answers "success, not retryable" below 400 whatever the policy: skip it (the common case).
        if (res.statusCode < 400) return res;
        const c = classify({ response: res }, req.policy.retries);
        if (!c.retryable || !mayRetry(req, c, req.policy.retries)) return res;
        first = { response: res };
      } catch (error) {
        const c = classifyFor(req, { error });
        if (!mayRetry(req, c, req.policy.retries)) throw error;
        first = { error };
      }
      return await retryLoop(req, next, first, max);
    } finally {
      if (budget !== undefined) budget.active--;
    }
  }

  const layer = ((next: Handler): Handler =>
    function retry(req) {
      const max = retriesOf(req);
      // No retries for this call: straight on, no async frame.
      return max <= 0 ? next(req) : retrying(req, next, max);
    }) as RetryLayer;
  Object.defineProperty(layer, 'budget', { value: budget, enumerable: true });
  return layer;
}

function isAttemptTimeout(error: unknown): boolean {
  return isInmeshError(error) && error.code === ErrorCodes.TIMEOUT && (error as { phase?: string }).phase === 'attempt';
}
