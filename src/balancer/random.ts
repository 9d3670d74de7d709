/**
 * random: Envoy's RANDOM, weighted. Equal weights: one random index, O(1). Unequal
 * weights: cumulative weights built in `setCandidates()` and a binary search, O(log n).
 * Excluded endpoints: draw again a few times, then scan from a random start.
 */
import type { EndpointState } from './state.ts';
import { firstAllowed, type Policy } from './internal-types.ts';

const REDRAWS = 4;

export class RandomPolicy implements Policy {
  readonly needsClock = false;
  #candidates: readonly EndpointState[] = [];
  #uniform = true;
  #cumulative = new Float64Array(0);
  #total = 0;
  readonly #random: () => number;

  constructor(random: () => number) {
    this.#random = random;
  }

  setEndpoints(): void {
    // Nothing: everything depends on the candidates.
  }

  setCandidates(candidates: readonly EndpointState[]): void {
    this.#candidates = candidates;
    const n = candidates.length;
    const w0 = candidates[0]?.weight ?? 1;
    this.#uniform = candidates.every((s) => s.weight === w0);
    if (this.#uniform) return;
    if (this.#cumulative.length < n) this.#cumulative = new Float64Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      total += (candidates[i] as EndpointState).weight;
      this.#cumulative[i] = total;
    }
    this.#total = total;
  }

  pick(_hashKey: string | undefined, exclude: ReadonlySet<string> | undefined): EndpointState {
    for (let tries = 0; tries <= REDRAWS; tries++) {
      const s = this.#draw();
      if (exclude === undefined || !exclude.has(s.id)) return s;
    }
    const n = this.#candidates.length;
    return firstAllowed(this.#candidates, exclude ?? new Set(), Math.floor(this.#random() * n));
  }

  record(): void {
    // Not latency-aware.
  }

  #draw(): EndpointState {
    const candidates = this.#candidates;
    const n = candidates.length;
    if (this.#uniform) return candidates[Math.floor(this.#random() * n)] as EndpointState;
    // First index whose cumulative weight exceeds the target.
    const target = this.#random() * this.#total;
    const cumulative = this.#cumulative;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cumulative[mid] as number) > target) hi = mid;
      else lo = mid + 1;
    }
    return candidates[lo] as EndpointState;
  }
}
