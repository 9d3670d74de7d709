/**
 * peak_ewma: Finagle's / Linkerd's (tower `PeakEwma`) latency-aware balancer.
 *
 * Each endpoint keeps an RTT estimate (ms), starting at `ewmaDefaultRtt`:
 * - a sample above the estimate replaces it at once (the "peak": react to slowness fast);
 * - a lower sample is blended in with weight 1 - e^(-elapsed / ewmaDecay), where
 *   elapsed is the time since the last update (a time-based, not count-based, EWMA);
 * - when read for a pick the estimate first decays toward 0 the same way (tower's
 *   `decay`), so a host that was slow once is tried again after a while.
 * The cost is estimate x (active + 1) / weight and the pick is P2C over cost.
 * Weights are not in Finagle/Linkerd; dividing by them keeps `Endpoint.weight` meaningful.
 *
 * Outcomes: `ignored` attempts never reached the host and are not samples. A failure
 * may only raise the estimate (a fast-failing host must not look like a fast host);
 * outlier detection deals with failures as such.
 *
 * A sample is dated pick time + latency (when the response came), which saves a clock
 * read in `done()`; elapsed times are clamped at 0.
 *
 * Costs: O(1) per sample and per cost (one Math.exp).
 */
import type { EndpointState } from './state.ts';
import type { AttemptOutcome } from './types.ts';
import { PowerOfChoicesPolicy } from './p2c.ts';

export class PeakEwmaPolicy extends PowerOfChoicesPolicy {
  readonly needsClock = true;
  readonly #decay: number;

  constructor(decay: number, random: () => number) {
    super(2, random);
    this.#decay = decay > 0 ? decay : 1;
  }

  protected cost(state: EndpointState, now: number): number {
    const elapsed = now - state.ewmaStamp;
    if (elapsed > 0) {
      state.ewma *= Math.exp(-elapsed / this.#decay);
      state.ewmaStamp = now;
    }
    return (state.ewma * (state.active + 1)) / state.weight;
  }

  record(state: EndpointState, outcome: AttemptOutcome, latencyMs: number, now: number): void {
    if (outcome === 'ignored' || !(latencyMs >= 0)) return;
    if (latencyMs > state.ewma) {
      state.ewma = latencyMs;
      if (now > state.ewmaStamp) state.ewmaStamp = now;
    } else if (outcome === 'success') {
      const elapsed = now - state.ewmaStamp;
      const w = elapsed > 0 ? Math.exp(-elapsed / this.#decay) : 1;
      state.ewma = state.ewma * w + latencyMs * (1 - w);
      if (now > state.ewmaStamp) state.ewmaStamp = now;
    }
    // A failure faster than the estimate is not a sample.
  }
}
