/**
 * Every error inmesh throws, in one table (after fastify's lib/errors.js).
 *
 * Match on `err.code` (stable, never reused) or use the `isInmeshError` guard. `instanceof`
 * works across two copies of the package because each class checks a
 * `Symbol.for` brand (after undici's lib/core/errors.js). Third-party errors
 * (undici, opossum, bottleneck, consul) are translated at one boundary each and
 * kept as `cause`.
 */

const kInmeshError = Symbol.for('inmesh.error');

export const ErrorCodes = {
  INVALID_POLICY: 'INMESH_ERR_INVALID_POLICY',
  INVALID_CONFIG: 'INMESH_ERR_INVALID_CONFIG',
  INVALID_ARGUMENT: 'INMESH_ERR_INVALID_ARGUMENT',
  NO_ENDPOINTS: 'INMESH_ERR_NO_ENDPOINTS',
  CIRCUIT_OPEN: 'INMESH_ERR_CIRCUIT_OPEN',
  LOAD_SHED: 'INMESH_ERR_LOAD_SHED',
  RATE_LIMITED: 'INMESH_ERR_RATE_LIMITED',
  TIMEOUT: 'INMESH_ERR_TIMEOUT',
  RETRY_BUDGET: 'INMESH_ERR_RETRY_BUDGET',
  UPSTREAM: 'INMESH_ERR_UPSTREAM',
  REGISTRY: 'INMESH_ERR_REGISTRY',
  ABORTED: 'INMESH_ERR_ABORTED',
  CLOSED: 'INMESH_ERR_CLOSED',
  EXPORT: 'INMESH_ERR_EXPORT',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface InmeshErrorOptions {
  cause?: unknown;
  /** Upstream service the call was for. */
  service?: string;
}

export class InmeshError extends Error {
  readonly code: ErrorCode;
  readonly service: string | undefined;

  constructor(code: ErrorCode, message: string, options: InmeshErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'InmeshError';
    this.code = code;
    this.service = options.service;
  }

  get [kInmeshError](): true {
    return true;
  }

  // A copy of this class from another copy of the package is recognised by the
  // brand, and each subclass by its `name` (which is set once per class).
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (!isInmeshError(value)) return false;
    return this === InmeshError || value.name === this.name;
  }
}

export function isInmeshError(value: unknown): value is InmeshError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kInmeshError] === true;
}

/** One problem found while validating a policy document or configuration. */
export interface PolicyIssue {
  /** Dotted path of the field, e.g. `upstreams.orders.retries.attempts`. */
  path: string;
  /** The offending value, already redacted when it is a secret. */
  value: unknown;
  /** What was expected, in words. */
  message: string;
}

/** A policy document or configuration failed validation; `issues` lists every problem found. */
export class InvalidPolicyError extends InmeshError {
  readonly issues: readonly PolicyIssue[];
  readonly source: string;

  constructor(source: string, issues: readonly PolicyIssue[], code: ErrorCode = ErrorCodes.INVALID_POLICY) {
    const lines = issues.map((i) => `  - ${i.path || '(root)'}: ${i.message} (got ${formatValue(i.value)})`);
    super(code, `invalid ${source}: ${issues.length} problem${issues.length === 1 ? '' : 's'}\n${lines.join('\n')}`);
    this.name = 'InvalidPolicyError';
    this.issues = Object.freeze([...issues]);
    this.source = source;
  }
}

/** A bad argument passed to an API call (not a policy field). */
export class InvalidArgumentError extends InmeshError {
  constructor(message: string, options: InmeshErrorOptions = {}) {
    super(ErrorCodes.INVALID_ARGUMENT, message, options);
    this.name = 'InvalidArgumentError';
  }
}

/** No healthy endpoint is known for the service (retryable: the set may change). */
export class NoEndpointsError extends InmeshError {
  /**
   * While discovery is failing: milliseconds since the registry's last good
   * answer (Infinity when it never answered); the failure itself is `cause`.
   * Undefined while discovery answers.
   */
  readonly stalenessMs: number | undefined;
  constructor(service: string, detail = 'no endpoints are known', options: InmeshErrorOptions & { stalenessMs?: number } = {}) {
    const { stalenessMs, ...rest } = options;
    super(ErrorCodes.NO_ENDPOINTS, `${service}: ${detail}`, { ...rest, service });
    this.name = 'NoEndpointsError';
    this.stalenessMs = stalenessMs;
  }
}

/** The error-rate circuit breaker of the upstream is open: the call failed fast. */
export class CircuitOpenError extends InmeshError {
  constructor(service: string, options: InmeshErrorOptions = {}) {
    super(ErrorCodes.CIRCUIT_OPEN, `${service}: circuit breaker is open, failing fast`, { ...options, service });
    this.name = 'CircuitOpenError';
  }
}

/** A local limit (max requests, max pending) is full: the call was shed. Never retried, never counted against a host. */
export class LoadShedError extends InmeshError {
  readonly limit: string;
  constructor(service: string, limit: string, options: InmeshErrorOptions = {}) {
    super(ErrorCodes.LOAD_SHED, `${service}: ${limit} reached, request shed`, { ...options, service });
    this.name = 'LoadShedError';
    this.limit = limit;
  }
}

/** A rate limit has no token for this call: the upstream's client rate limit, or (`limit: 'inbound rate limit'`) the server's. */
export class RateLimitedError extends InmeshError {
  constructor(service: string, options: InmeshErrorOptions & { limit?: string } = {}) {
    const { limit = 'client rate limit', ...rest } = options;
    super(ErrorCodes.RATE_LIMITED, `${service}: ${limit} exceeded`, { ...rest, service });
    this.name = 'RateLimitedError';
  }
}

export type TimeoutPhase = 'connect' | 'attempt' | 'total' | 'inbound';

/** A deadline passed; `phase` says which. */
export class TimeoutError extends InmeshError {
  readonly phase: TimeoutPhase;
  readonly timeoutMs: number;
  constructor(phase: TimeoutPhase, timeoutMs: number, options: InmeshErrorOptions = {}) {
    super(
      ErrorCodes.TIMEOUT,
      `${options.service ? `${options.service}: ` : ''}${phase} timeout of ${timeoutMs} ms exceeded`,
      options,
    );
    this.name = 'TimeoutError';
    this.phase = phase;
    this.timeoutMs = timeoutMs;
  }
}

/** A retry was wanted but the retry budget of the upstream is spent. `cause` is the last attempt's failure. */
export class RetryBudgetExhaustedError extends InmeshError {
  constructor(service: string, options: InmeshErrorOptions = {}) {
    super(ErrorCodes.RETRY_BUDGET, `${service}: retry budget exhausted`, { ...options, service });
    this.name = 'RetryBudgetExhaustedError';
  }
}

/** One attempt's outcome, as kept on an UpstreamError. */
export interface AttemptRecord {
  endpoint: string | undefined;
  /** HTTP status if a response arrived. */
  status?: number;
  /** Error code of the failure (undici `UND_ERR_*`, `ECONNREFUSED`, an inmesh code). */
  error?: string;
}

/**
 * The upstream failed at the transport. `phase: 'request'` (the default): an
 * attempt failed before its response headers, or every attempt failed;
 * `attempts` lists what each one met, `cause` is the last error.
 * `phase: 'body'`: the response arrived but reading its body failed (the
 * connection was cut mid-body, undici's bodyTimeout); `attempts` has that one
 * record, `cause` is the original undici/node error.
 */
export class UpstreamError extends InmeshError {
  readonly attempts: readonly AttemptRecord[];
  readonly phase: 'request' | 'body';
  constructor(
    service: string,
    attempts: readonly AttemptRecord[],
    options: InmeshErrorOptions & { phase?: 'request' | 'body' } = {},
  ) {
    const last = attempts.at(-1);
    const what = last?.status !== undefined ? `status ${last.status}` : (last?.error ?? 'error');
    const from = last?.endpoint ? ` from ${last.endpoint}` : '';
    const phase = options.phase ?? 'request';
    super(
      ErrorCodes.UPSTREAM,
      phase === 'body'
        ? `${service}: reading the response body failed (${what}${from})`
        : `${service}: request failed after ${attempts.length} attempt${attempts.length === 1 ? '' : 's'} (last: ${what}${from})`,
      { ...(options.cause === undefined ? {} : { cause: options.cause }), service },
    );
    this.name = 'UpstreamError';
    this.attempts = Object.freeze([...attempts]);
    this.phase = phase;
  }
}

/** The registry could not be used (bad configuration, refused by ACL, unreachable at start). */
export class RegistryError extends InmeshError {
  readonly statusCode: number | undefined;
  constructor(message: string, options: InmeshErrorOptions & { statusCode?: number } = {}) {
    super(ErrorCodes.REGISTRY, message, options);
    this.name = 'RegistryError';
    this.statusCode = options.statusCode;
  }
}

/** The caller's AbortSignal fired. */
export class AbortedError extends InmeshError {
  constructor(options: InmeshErrorOptions = {}) {
    super(ErrorCodes.ABORTED, 'request aborted by the caller', options);
    this.name = 'AbortedError';
  }
}

/** The mesh (or a component of it) was closed. */
export class ClosedError extends InmeshError {
  constructor(what = 'mesh', options: InmeshErrorOptions = {}) {
    super(ErrorCodes.CLOSED, `${what} is closed`, options);
    this.name = 'ClosedError';
  }
}

/**
 * A policy could not be exported: two callers' policies set different values
 * for the same destination, the target version is unknown, or a value cannot be
 * written for the target at all.
 */
export class ExportError extends InmeshError {
  constructor(message: string, options: InmeshErrorOptions = {}) {
    super(ErrorCodes.EXPORT, message, options);
    this.name = 'ExportError';
  }
}

function formatValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  try {
    const s = JSON.stringify(value);
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return typeof value;
  }
}
