/**
 * The one undici internal inmesh uses: `kQueuedAbort`, the request-options key
 * of the hook through which a Pool or Client hands out a function that takes a
 * request still waiting for a connection out of its queue (undici 8,
 * lib/core/symbols.js; lib/dispatcher/client.js `abortPendingRequest`,
 * lib/dispatcher/pool-base.js `kAbortQueued`).
 *
 * Why an internal: undici's public API reaches that hook only through a
 * request `signal` (lib/api/abort-signal.js `dispatchWithSignal`), and the
 * signal path has a per-request cost (attempt-control.ts). Without the
 * hook, an attempt aborted while queued would stay in the queue and, once a
 * connection is free, be started only to be aborted, which destroys that
 * keep-alive connection.
 *
 * When a future undici no longer has it, `QUEUED_ABORT` is undefined and the
 * transport hands undici an AbortSignal again (correct, and slower).
 * test/unit/client/undici-internals.test.ts fails first, so an upgrade is noticed.
 */
import symbols from 'undici/lib/core/symbols.js';

export const QUEUED_ABORT: symbol | undefined = typeof symbols.kQueuedAbort === 'symbol' ? symbols.kQueuedAbort : undefined;
