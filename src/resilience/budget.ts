/**
 * Retry budget of one upstream, with Envoy's semantics
 * (`circuit_breakers.thresholds.retry_budget`): a retry may start while the
 * retries in flight are fewer than
 *   max(minConcurrency, floor(percent / 100 × active requests)).
 * A retry is "in flight" from the decision to retry (before its backoff) until
 * that retry attempt ends; a call that is refused a retry stops retrying.
 *
 * Bound this gives (asserted in test/integration/client/resilience.test.ts): with
 * N calls in flight that all fail at once and R retries allowed per call, at
 * most B = max(minConcurrency, floor(percent·N/100)) calls ever retry, so the
 * servers see at most N + B·R requests instead of N·(1 + R).
 */
import type { ResolvedRetryBudget } from '../policy/types.ts';

export class RetryBudget {
  /** Calls in flight through the retry layer of this upstream. */
  active = 0;
  /** Retries in flight. */
  retries = 0;
  readonly #percent: number;
  readonly #min: number;

  constructor(budget: Readonly<ResolvedRetryBudget>) {
    this.#percent = budget.percent;
    this.#min = budget.minConcurrency;
  }

  /** The number of retries allowed in flight now. */
  get limit(): number {
    return Math.max(this.#min, Math.floor((this.#percent * this.active) / 100));
  }

  /** Takes a retry token; false when the budget is spent. */
  tryAcquire(): boolean {
    if (this.retries >= this.limit) return false;
    this.retries++;
    return true;
  }

  release(): void {
    if (this.retries > 0) this.retries--;
  }
}
