/**
 * The ONE boundary where third-party errors become inmesh errors (STYLE §6).
 * Called by the transport for every failed attempt, and by the retry layer for
 * p-retry's AbortError. The original error is always kept as `cause`.
 *
 * - an inmesh error (our own abort reasons: TimeoutError, AbortedError) passes unchanged;
 * - the caller's signal fired → AbortedError;
 * - anything else from undici / node:net (`UND_ERR_*`, `ECONNREFUSED`,
 *   `ECONNRESET`, …) → UpstreamError with one attempt record whose `error` is the
 *   original code; classify.ts reads that code.
 */
import { AbortError as PRetryAbortError } from 'p-retry';
import { AbortedError, isInmeshError, UpstreamError, type InmeshError } from '../errors.ts';
import type { MeshRequest } from './types.ts';

export function endpointLabel(req: MeshRequest): string | undefined {
  const ep = req.endpoint;
  return ep === undefined ? undefined : `${ep.address}:${ep.port}`;
}

export function translateError(error: unknown, req: MeshRequest): InmeshError {
  if (isInmeshError(error)) return error;
  if (error instanceof PRetryAbortError) return translateError(error.originalError, req);
  if (req.signal?.aborted === true) return new AbortedError({ cause: error, service: req.service });
  const code = (error as { code?: unknown } | null)?.code;
  const name = (error as { name?: unknown } | null)?.name;
  const label = typeof code === 'string' ? code : typeof name === 'string' ? name : 'Error';
  return new UpstreamError(req.service, [{ endpoint: endpointLabel(req), error: label }], { cause: error });
}
