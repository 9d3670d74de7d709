/**
 * round_robin: Envoy's ROUND_ROBIN.
 *
 * - Equal weights (the common case): a cursor over the candidate array, O(1) per pick.
 * - Unequal weights: earliest-deadline-first over a binary heap, as Envoy's
 *   EdfScheduler: each endpoint is due every 1/weight virtual time units; the earliest
 *   deadline is picked and rescheduled. Ties go to the earliest scheduled (FIFO), so the
 *   sequence is deterministic. O(log n) per pick, no allocation (heap entries are built
 *   in `setCandidates()` and reused).
 *
 * Excluded endpoints (retry on another host) are skipped: they lose their turn, as
 * with Envoy's host-selection retries. The cursor starts at a random offset so that
 * many clients do not all hit the first endpoint together (Envoy does the same).
 */
import type { EndpointState } from './state.ts';
import { firstAllowed, type Policy } from './internal-types.ts';

interface EdfEntry {
  state: EndpointState;
  deadline: number;
  seq: number;
}

export class RoundRobinPolicy implements Policy {
  readonly needsClock = false;
  #candidates: readonly EndpointState[] = [];
  #uniform = true;
  #cursor = 0;
  readonly #heap: EdfEntry[] = [];
  #seq = 0;
  #started = false;
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
    if (this.#uniform) {
      // Keep the rotation going across rebuilds; a fresh balancer starts at random.
      if (!this.#started && n > 0) {
        this.#cursor = Math.floor(this.#random() * n);
        this.#started = true;
      } else {
        this.#cursor = n > 0 ? this.#cursor % n : 0;
      }
      this.#heap.length = 0;
      return;
    }
    // EDF: first deadline of each endpoint is 1/weight; ties in candidate order.
    this.#heap.length = 0;
    this.#seq = 0;
    for (const state of candidates) {
      this.#heap.push({ state, deadline: 1 / state.weight, seq: this.#seq++ });
    }
    for (let i = (n >> 1) - 1; i >= 0; i--) this.#siftDown(i);
  }

  pick(_hashKey: string | undefined, exclude: ReadonlySet<string> | undefined): EndpointState {
    const candidates = this.#candidates;
    const n = candidates.length;
    if (this.#uniform) {
      for (let tries = 0; tries < n; tries++) {
        const s = candidates[this.#cursor] as EndpointState;
        this.#cursor = this.#cursor + 1 === n ? 0 : this.#cursor + 1;
        if (exclude === undefined || !exclude.has(s.id)) return s;
      }
      return firstAllowed(candidates, exclude ?? EMPTY, 0);
    }
    // Weighted. A heavily weighted excluded host may come up several times in a row;
    // bound the work and fall back to a scan.
    const limit = 2 * n;
    for (let tries = 0; tries < limit; tries++) {
      const top = this.#heap[0] as EdfEntry;
      const s = top.state;
      top.deadline += 1 / s.weight;
      top.seq = this.#seq++;
      this.#siftDown(0);
      if (exclude === undefined || !exclude.has(s.id)) return s;
    }
    return firstAllowed(candidates, exclude ?? EMPTY, 0);
  }

  record(): void {
    // Not latency-aware.
  }

  #siftDown(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const entry = heap[i] as EdfEntry;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && before(heap[r] as EdfEntry, heap[l] as EdfEntry)) c = r;
      const child = heap[c] as EdfEntry;
      if (!before(child, entry)) break;
      heap[i] = child;
      i = c;
    }
    heap[i] = entry;
  }
}

function before(a: EdfEntry, b: EdfEntry): boolean {
  return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
}

const EMPTY: ReadonlySet<string> = new Set();
