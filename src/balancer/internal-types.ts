/**
 * Private contracts between the balancer shell (balancer.ts) and the policies.
 * Not exported from the package.
 */
import type { AttemptOutcome } from './types.ts';
import type { EndpointState } from './state.ts';

/**
 * One load-balancing algorithm. The shell owns the endpoint states, health and
 * panic; a policy only chooses among the candidates it was last given.
 */
export interface Policy {
  /** Whether `pick()`/`record()` need the current time (peak_ewma decay). */
  readonly needsClock: boolean;
  /**
   * The endpoint set changed (`update()`): `all` is every endpoint, in update order.
   * Called before `setCandidates()`. O(n) (ring_hash: O(ring size · log)).
   */
  setEndpoints(all: readonly EndpointState[]): void;
  /**
   * The usable set changed (update, ejection, return, panic on/off). The array is
   * owned by the shell and only changes through another call to this method.
   * Never empty when `pick()` is called next.
   */
  setCandidates(candidates: readonly EndpointState[]): void;
  /**
   * Chooses a candidate. `exclude` is passed only when at least one candidate is
   * outside it, so a policy must return a candidate not in it. No allocation.
   */
  pick(hashKey: string | undefined, exclude: ReadonlySet<string> | undefined, now: number): EndpointState;
  /** Records a finished attempt (latency-aware policies). O(1). */
  record(state: EndpointState, outcome: AttemptOutcome, latencyMs: number, now: number): void;
}

/** First candidate not in `exclude`, scanning from `start` (wrapping). The shell guarantees one exists. */
export function firstAllowed(
  candidates: readonly EndpointState[],
  exclude: ReadonlySet<string>,
  start: number,
): EndpointState {
  const n = candidates.length;
  for (let i = 0; i < n; i++) {
    let j = start + i;
    if (j >= n) j -= n;
    const s = candidates[j];
    if (s !== undefined && !exclude.has(s.id)) return s;
  }
  // Unreachable by contract; fall back to any candidate rather than throw on the hot path.
  return candidates[0] as EndpointState;
}
