/**
 * The ONE classification of an attempt's result (after cockatiel's
 * `FailureReason = {error} | {value}`): what it means for outlier detection
 * (an `AttemptOutcome`) and which Envoy `retry_on` conditions it meets.
 * Used by the balance layer (pick.done) and by the retry layer.
 *
 * Envoy semantics kept:
 * - `5xx` covers every 5xx response and also connect failures, resets,
 *   refused streams and per-try timeouts (Envoy treats them as a 503/504).
 * - `gateway-error` covers 502/503/504 and the same transport failures.
 * - `connect-failure`: the connection was never established (nothing was
 *   sent): safe to replay for any method.
 * - `retriable-4xx`: 409 only.
 * - `retriable-status-codes`: the statuses listed in the policy.
 * - A response carrying `x-envoy-ratelimited` (any value, only its presence)
 *   is never retried, whatever its status and `retryOn`: a sidecar or gateway
 *   limited the call on purpose. Envoy retries it only under its own
 *   `envoy-ratelimited` condition, which inmesh does not offer. Outlier
 *   detection still counts it by its status, as Envoy does.
 * - Local rejections (load shed, rate limit, caller abort) say nothing about a
 *   host: `ignored`, never retried.
 */
import type { AttemptOutcome } from '../core/types.ts';
import { ErrorCodes, isInmeshError, UpstreamError } from '../errors.ts';
import type { ResolvedRetries, RetryOn } from '../policy/types.ts';

/** The part of a response that classification reads (a MeshResponse is one). */
export interface ClassifiedResponse {
  readonly statusCode: number;
  readonly headers?: Readonly<Record<string, string | string[] | undefined>> | undefined;
}

export type AttemptResult = { readonly error: unknown } | { readonly response: ClassifiedResponse };

/** Envoy's response header for "rate limited on purpose": such a response is never retried. */
export const ENVOY_RATELIMITED_HEADER = 'x-envoy-ratelimited';

/** The transport-level failure kinds an error can be. */
export type FailureKind = 'connect-failure' | 'refused-stream' | 'reset' | 'timeout' | 'local' | 'other';

export interface Classification {
  /** For outlier detection (pick.done). */
  readonly outcome: AttemptOutcome;
  /** Whether the policy's retry conditions match this result. */
  readonly retryable: boolean;
  /** The failure happened before any byte of the request was sent: replaying is safe for any method. */
  readonly beforeSend: boolean;
}

/** Error codes (undici `UND_ERR_*`, Node `E*`) of a connection that was never established. */
const CONNECT_FAILURE_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EADDRNOTAVAIL',
]);

/** Codes of a connection that broke while the request or response was in flight. */
const RESET_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

/** Codes of our own pool being closed under the request (the endpoint left the set): not the host's fault, nothing was sent. */
const LOCAL_CLOSED_CODES: ReadonlySet<string> = new Set(['UND_ERR_CLOSED', 'UND_ERR_DESTROYED']);

/** The code of the original (third-party) error behind an attempt failure. */
export function failureCode(error: unknown): string | undefined {
  let e: unknown = error;
  for (let depth = 0; depth < 4 && e !== null && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && !code.startsWith('INMESH_ERR_')) return code;
    if (e instanceof UpstreamError && e.attempts.length === 1) {
      const recorded = e.attempts[0]?.error;
      if (recorded !== undefined && !recorded.startsWith('INMESH_ERR_')) return recorded;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Which transport failure an error is. */
export function failureKind(error: unknown): FailureKind {
  if (isInmeshError(error)) {
    const code = (error).code;
    if (code === ErrorCodes.TIMEOUT) return (error as { phase?: string }).phase === 'attempt' ? 'timeout' : 'local';
    if (code !== ErrorCodes.UPSTREAM) return 'local';
  }
  const code = failureCode(error);
  if (code === undefined) return 'other';
  if (CONNECT_FAILURE_CODES.has(code)) return 'connect-failure';
  if (LOCAL_CLOSED_CODES.has(code)) return 'connect-failure';
  if (RESET_CODES.has(code) || code.startsWith('HPE_')) return 'reset';
  if (code === 'ERR_HTTP2_STREAM_ERROR' || code === 'NGHTTP2_REFUSED_STREAM') return 'refused-stream';
  return 'other';
}

const SUCCESS: Classification = Object.freeze({ outcome: 'success', retryable: false, beforeSend: false });

function has(retryOn: readonly RetryOn[], c: RetryOn): boolean {
  return retryOn.includes(c);
}

/** Outlier-detection outcome of a status code (Envoy: 502/503/504 are gateway errors). */
export function outcomeOfStatus(status: number): AttemptOutcome {
  if (status < 500) return 'success';
  return status === 502 || status === 503 || status === 504 ? 'gateway-error' : 'server-error';
}

/**
 * Classify one attempt's result against the retry conditions of the policy.
 * `retries` may be undefined (retries off): then only `outcome` matters.
 */
export function classify(
  result: AttemptResult,
  retries: Pick<ResolvedRetries, 'retryOn' | 'retriableStatusCodes'> | undefined,
): Classification {
  const retryOn = retries?.retryOn ?? [];
  if ('response' in result) {
    const status = result.response.statusCode;
    const codes = retries?.retriableStatusCodes ?? [];
    if (status < 400 || (status < 500 && status !== 409 && !codes.includes(status))) return SUCCESS;
    const outcome = outcomeOfStatus(status);
    const gateway = outcome === 'gateway-error';
    const retryable =
      ((status >= 500 && has(retryOn, '5xx')) ||
        (gateway && has(retryOn, 'gateway-error')) ||
        (status === 409 && has(retryOn, 'retriable-4xx')) ||
        (has(retryOn, 'retriable-status-codes') && codes.includes(status))) &&
      result.response.headers?.[ENVOY_RATELIMITED_HEADER] === undefined;
    return { outcome, retryable, beforeSend: false };
  }
  const error = result.error;
  const kind = failureKind(error);
  switch (kind) {
    case 'connect-failure': {
      const local = LOCAL_CLOSED_CODES.has(failureCode(error) ?? '');
      return {
        outcome: local ? 'ignored' : 'gateway-error',
        retryable: has(retryOn, 'connect-failure') || has(retryOn, '5xx') || has(retryOn, 'gateway-error'),
        beforeSend: true,
      };
    }
    case 'refused-stream':
      return {
        outcome: 'gateway-error',
        retryable: has(retryOn, 'refused-stream') || has(retryOn, '5xx') || has(retryOn, 'gateway-error'),
        // a refused stream was never processed by the server (HTTP/2 REFUSED_STREAM)
        beforeSend: true,
      };
    case 'reset':
      return {
        outcome: 'gateway-error',
        retryable: has(retryOn, 'reset') || has(retryOn, '5xx') || has(retryOn, 'gateway-error'),
        beforeSend: false,
      };
    case 'timeout':
      // a per-try timeout is a 504 for Envoy's retry and outlier logic
      return {
        outcome: 'gateway-error',
        retryable: has(retryOn, '5xx') || has(retryOn, 'gateway-error') || has(retryOn, 'reset'),
        beforeSend: false,
      };
    case 'local': {
      // total deadline: the host was too slow (Envoy records a local-origin timeout); others say nothing about the host
      const total = isInmeshError(error) && error.code === ErrorCodes.TIMEOUT;
      return { outcome: total ? 'gateway-error' : 'ignored', retryable: false, beforeSend: false };
    }
    case 'other':
      return { outcome: 'gateway-error', retryable: false, beforeSend: false };
  }
}
