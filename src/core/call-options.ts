/**
 * The per-call overrides (`timeout`, `perTryTimeout`, `retries`, `hashKey`,
 * `idempotent`), checked once for every entry point that takes them:
 * mesh.request, mesh.fetch, the dispatcher and mesh.guard.
 */
import { MAX_RETRY_ATTEMPTS } from '../policy/schema.ts';
import { InvalidArgumentError } from '../errors.ts';
import { describeValue } from '../internal/describe.ts';
import { MAX_DURATION_MS } from '../policy/duration.ts';
import type { CallOptions, ResolvedCallOptions } from './types.ts';

/** No override: shared by every call that gives none (no allocation). */
export const EMPTY_OPTIONS: Readonly<ResolvedCallOptions> = Object.freeze({});

export function checkMs(name: string, v: unknown): void {
  if (v === undefined) return;
  if (!(typeof v === 'number' && v >= 0 && v <= MAX_DURATION_MS)) {
    throw new InvalidArgumentError(`${name} must be a number of ms from 0 to ${MAX_DURATION_MS} (24 h) (got ${describeValue(v)})`);
  }
}

/** The per-call overrides found in an options object (mesh.fetch's init, or mesh.request's options). */
export function callOverridesOf(o: CallOptions | undefined): Readonly<ResolvedCallOptions> {
  if (o === undefined) return EMPTY_OPTIONS;
  if (
    o.timeout === undefined &&
    o.perTryTimeout === undefined &&
    o.retries === undefined &&
    o.hashKey === undefined &&
    o.idempotent === undefined
  )
    return EMPTY_OPTIONS;
  checkMs('timeout', o.timeout);
  checkMs('perTryTimeout', o.perTryTimeout);
  if (o.retries !== undefined && o.retries !== false && !(Number.isInteger(o.retries) && o.retries >= 0 && o.retries <= MAX_RETRY_ATTEMPTS)) {
    throw new InvalidArgumentError(`retries must be false or an integer from 0 to ${MAX_RETRY_ATTEMPTS}, as retries.attempts in the policy (got ${describeValue(o.retries)})`);
  }
  if (o.hashKey !== undefined && typeof o.hashKey !== 'string') throw new InvalidArgumentError(`hashKey must be a string (got ${describeValue(o.hashKey)})`);
  if (o.idempotent !== undefined && typeof o.idempotent !== 'boolean') {
    throw new InvalidArgumentError(`idempotent must be true or false (got ${describeValue(o.idempotent)})`);
  }
  const out: CallOptions = {};
  if (o.timeout !== undefined) out.timeout = o.timeout;
  if (o.perTryTimeout !== undefined) out.perTryTimeout = o.perTryTimeout;
  if (o.retries !== undefined) out.retries = o.retries;
  if (o.hashKey !== undefined) out.hashKey = o.hashKey;
  if (o.idempotent !== undefined) out.idempotent = o.idempotent;
  return out;
}
