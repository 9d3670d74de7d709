/**
 * The absolute deadline of the inbound request being handled, carried through
 * the app's async work in an AsyncLocalStorage, so that a mesh call made while
 * handling a request can be bounded by what is left of it (A → B → C never
 * works past A's deadline).
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** What the store holds for one inbound request. */
export interface DeadlineHolder {
  /** performance.now()-based absolute time when the request's deadline passes; Infinity = none. */
  readonly deadline: number;
}

export const deadlineStorage = new AsyncLocalStorage<DeadlineHolder>();

/**
 * The absolute deadline of the inbound request whose handling is running now,
 * on the `performance.now()` clock (like `MeshRequest.deadline`), or undefined
 * outside such a request or when it has no deadline.
 */
export function currentDeadline(): number | undefined {
  const d = deadlineStorage.getStore()?.deadline;
  return d === undefined || d === Infinity ? undefined : d;
}
