/**
 * Deadlines across hops, the part both sides share: the header that carries a
 * deadline from one hop to the next, and the absolute deadline of the inbound
 * request being handled, carried through the app's async work in an
 * AsyncLocalStorage. The server side writes it (server/inbound.ts); the
 * client's deadline layer (client/deadline.ts) bounds every mesh call made
 * while handling the request by it, so A → B → C never works past A's
 * deadline.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Header carrying the caller's remaining total deadline, in whole ms, at send
 * time: written by the client's transport on every attempt, read inbound by
 * server/deadline.ts.
 */
export const DEADLINE_HEADER = 'x-inmesh-deadline-ms';

/** What the store holds for one inbound request. */
export interface DeadlineHolder {
  /** performance.now()-based absolute time when the request's deadline passes; Infinity = none. */
  readonly deadline: number;
}

// One store per process, kept under a global symbol: the CommonJS build of each
// package entry point (and a second copy of the package) carries its own copy of
// this module, and they must all read the store the inbound chain writes.
const kStorage = Symbol.for('inmesh.inboundDeadline');
const slot = globalThis as unknown as Record<symbol, AsyncLocalStorage<DeadlineHolder> | undefined>;
export const deadlineStorage: AsyncLocalStorage<DeadlineHolder> = (slot[kStorage] ??= new AsyncLocalStorage<DeadlineHolder>());

/**
 * The absolute deadline of the inbound request whose handling is running now,
 * on the `performance.now()` clock (like `MeshRequest.deadline`), or undefined
 * outside such a request or when it has no deadline.
 */
export function currentDeadline(): number | undefined {
  const d = deadlineStorage.getStore()?.deadline;
  return d === undefined || d === Infinity ? undefined : d;
}
