/**
 * Power of d choices (Mitzenmacher; Envoy LEAST_REQUEST, Finagle/Linkerd P2C): draw
 * `choices` distinct candidates at random and keep the cheapest. Distinct draws use
 * a partial Fisher-Yates shuffle over a reusable index permutation (it stays a
 * permutation, so it is never reset): O(choices) per pick, no allocation. With
 * `choices >= n` every candidate is compared (from a random start, so ties spread).
 * Excluded candidates are skipped; if every draw was excluded, all candidates are scanned.
 */
import type { EndpointState } from './state.ts';
import type { AttemptOutcome } from './types.ts';
import type { Policy } from './internal-types.ts';

export abstract class PowerOfChoicesPolicy implements Policy {
  abstract readonly needsClock: boolean;
  protected candidates: readonly EndpointState[] = [];
  #perm = new Int32Array(0);
  readonly #choices: number;
  protected readonly random: () => number;

  constructor(choices: number, random: () => number) {
    this.#choices = Math.max(1, Math.floor(choices));
    this.random = random;
  }

  /** Lower is better. Called at most `choices` times per pick (all candidates when few). */
  protected abstract cost(state: EndpointState, now: number): number;

  abstract record(state: EndpointState, outcome: AttemptOutcome, latencyMs: number, now: number): void;

  setEndpoints(): void {
    // Nothing: everything depends on the candidates.
  }

  setCandidates(candidates: readonly EndpointState[]): void {
    this.candidates = candidates;
    const n = candidates.length;
    if (this.#perm.length !== n) {
      this.#perm = new Int32Array(n);
      for (let i = 0; i < n; i++) this.#perm[i] = i;
    }
  }

  pick(_hashKey: string | undefined, exclude: ReadonlySet<string> | undefined, now: number): EndpointState {
    const candidates = this.candidates;
    const n = candidates.length;
    let best: EndpointState | undefined;
    let bestCost = Infinity;
    if (this.#choices < n) {
      const perm = this.#perm;
      for (let j = 0; j < this.#choices; j++) {
        const r = j + Math.floor(this.random() * (n - j));
        const pick = perm[r] as number;
        perm[r] = perm[j] as number;
        perm[j] = pick;
        const s = candidates[pick] as EndpointState;
        if (exclude !== undefined && exclude.has(s.id)) continue;
        const c = this.cost(s, now);
        if (best === undefined || c < bestCost) {
          best = s;
          bestCost = c;
        }
      }
      if (best !== undefined) return best;
    }
    // Few candidates, or every draw excluded: compare them all from a random start.
    const start = Math.floor(this.random() * n);
    for (let i = 0; i < n; i++) {
      let k = start + i;
      if (k >= n) k -= n;
      const s = candidates[k] as EndpointState;
      if (exclude !== undefined && exclude.has(s.id)) continue;
      const c = this.cost(s, now);
      if (best === undefined || c < bestCost) {
        best = s;
        bestCost = c;
      }
    }
    return best ?? (candidates[0] as EndpointState);
  }
}
