/**
 * ring_hash: consistent hashing on a ring of virtual nodes (Karger et al.; Envoy
 * RING_HASH, Consul ring_hash).
 *
 * The ring is built over ALL endpoints in `setEndpoints()` and never for health:
 * a pick walks clockwise from the key's position to the first usable (not ejected, or
 * panic) and not excluded endpoint. That is exactly the ring without the skipped hosts,
 * so ejections and retries move only the keys of the skipped hosts, and they come back
 * when the host does. Lookup: binary search over a sorted Uint32Array, O(log ring).
 *
 * Ring size. Envoy gives each host round(scale x weight) vnodes with the scale chosen
 * so that the ring has at least minimum_ring_size entries; since the scale depends on
 * the host count, every membership change also moves vnodes of hosts that stayed, and
 * adding one host to three moves ~38 % of keys instead of ~25 %. Here each unit of
 * weight gets V vnodes, V being the smallest power of two with V x totalWeight >
 * minimumRingSize, so the ring has between minimumRingSize and 2x entries and V only
 * changes when the total weight crosses a power-of-two boundary: between those,
 * adding one of N+1 hosts moves ~1/(N+1) of keys and removing one moves only its own.
 * Vnode i of a host hashes `${id}#${i}`; a smaller V keeps a prefix of the same vnodes.
 * The ring is capped at 2^23 entries (Envoy's default maximum_ring_size).
 *
 * Hash: Murmur3 32-bit (see hash.ts). A request without a hash key gets a random
 * position (Envoy picks a random host when no hash policy produced a key).
 */
import type { EndpointState } from './state.ts';
import type { Policy } from './internal-types.ts';
import { murmur3 } from './hash.ts';

const MAX_RING = 1 << 23;

export class RingHashPolicy implements Policy {
  readonly needsClock = false;
  #positions = new Uint32Array(0);
  #owners: EndpointState[] = [];
  readonly #minimumRingSize: number;
  readonly #random: () => number;

  constructor(minimumRingSize: number, random: () => number) {
    this.#minimumRingSize = Math.max(1, Math.floor(minimumRingSize));
    this.#random = random;
  }

  /** Builds the ring. O(R log R) for R entries; only on membership/weight changes. */
  setEndpoints(all: readonly EndpointState[]): void {
    let total = 0;
    for (const s of all) total += s.weight;
    if (total === 0) {
      this.#positions = new Uint32Array(0);
      this.#owners = [];
      return;
    }
    let perWeight = 1;
    while (perWeight * total <= this.#minimumRingSize) perWeight *= 2;
    const scale = perWeight * total > MAX_RING ? MAX_RING / (perWeight * total) : 1;

    // Owners in id order so that ties (equal positions) break the same way in every process.
    const byId = [...all].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const counts = byId.map((s) => Math.max(1, Math.floor(s.weight * perWeight * scale)));
    const size = counts.reduce((a, b) => a + b, 0);
    // position x 2^21 + owner rank is exact in a double (32 + 21 bits), so one numeric
    // typed-array sort orders by position, then by id.
    const keys = new Float64Array(size);
    let k = 0;
    for (let rank = 0; rank < byId.length; rank++) {
      const id = (byId[rank] as EndpointState).id;
      const count = counts[rank] as number;
      for (let i = 0; i < count; i++) keys[k++] = murmur3(`${id}#${i}`) * 2097152 + rank;
    }
    keys.sort();
    const positions = new Uint32Array(size);
    const owners = new Array<EndpointState>(size);
    for (let i = 0; i < size; i++) {
      const key = keys[i] as number;
      const rank = key % 2097152;
      positions[i] = (key - rank) / 2097152;
      owners[i] = byId[rank] as EndpointState;
    }
    this.#positions = positions;
    this.#owners = owners;
  }

  setCandidates(): void {
    // Health is applied while walking the ring (EndpointState.usable).
  }

  pick(hashKey: string | undefined, exclude: ReadonlySet<string> | undefined): EndpointState {
    const positions = this.#positions;
    const owners = this.#owners;
    const size = positions.length;
    const h = hashKey === undefined ? Math.floor(this.#random() * 4294967296) : murmur3(hashKey);
    // First entry at or after h, wrapping.
    let lo = 0;
    let hi = size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((positions[mid] as number) < h) lo = mid + 1;
      else hi = mid;
    }
    let i = lo === size ? 0 : lo;
    for (let steps = 0; steps < size; steps++) {
      const s = owners[i] as EndpointState;
      if (s.usable && (exclude === undefined || !exclude.has(s.id))) return s;
      i = i + 1 === size ? 0 : i + 1;
    }
    // Unreachable: the shell only picks when a usable, non-excluded endpoint exists.
    return owners[lo === size ? 0 : lo] as EndpointState;
  }

  record(): void {
    // Not latency-aware.
  }
}
