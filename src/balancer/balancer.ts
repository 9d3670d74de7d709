/**
 * `createLoadBalancer`: the balancer shell. It owns the endpoint states, wraps the
 * chosen policy with outlier detection (grpc-js OutlierDetectionPicker style: every
 * `Pick.done()` reports to the detector), applies Envoy's panic threshold and
 * honours `PickContext.exclude`.
 *
 * Hot path:
 * - `pick()`: one clock read only while a host is ejected (or its ejection multiplier
 *   has yet to decay) or for peak_ewma, the policy's
 *   pick (O(1) round_robin/random/least_request/peak_ewma with equal weights,
 *   O(log n) weighted or ring_hash), and one small `Pick` object. With an `exclude`
 *   set, O(|exclude|) more. No closures, no arrays.
 * - `done()`: O(1) (it also records whether the attempt succeeded, for `answering()`); reads the clock only when it ejects (peak_ewma dates its sample
 *   pick time + latency).
 * - Ejections, returns and `update()` rebuild the candidate array: O(n), rare.
 */
import type { Endpoint } from '../core/types.ts';
import type { LoadBalancerPolicy, ResolvedLoadBalancer, ResolvedOutlierDetection } from '../policy/types.ts';
import type {
  AttemptOutcome,
  EndpointStats,
  LoadBalancerDeps,
  MeshLoadBalancer,
  Pick,
  PickContext,
} from './types.ts';
import type { Policy } from './internal-types.ts';
import { EndpointState } from './state.ts';
import { OutlierDetector, type OutlierHost } from './outlier.ts';
import { RoundRobinPolicy } from './round-robin.ts';
import { RandomPolicy } from './random.ts';
import { LeastRequestPolicy } from './least-request.ts';
import { RingHashPolicy } from './ring-hash.ts';
import { PeakEwmaPolicy } from './peak-ewma.ts';

/**
 * One attempt's pick. A small class rather than a closure per pick; `done()` is
 * idempotent (a second call is ignored) so a double report cannot skew counts.
 */
class PickImpl implements Pick {
  readonly endpoint: Endpoint;
  #state: EndpointState | undefined;
  readonly #balancer: Balancer;
  /** Clock time of the pick (0 when the policy does not need time). */
  readonly #start: number;

  constructor(state: EndpointState, balancer: Balancer, start: number) {
    this.endpoint = state.endpoint;
    this.#state = state;
    this.#balancer = balancer;
    this.#start = start;
  }

  done(outcome: AttemptOutcome, latencyMs: number): void {
    const state = this.#state;
    if (state === undefined) return;
    this.#state = undefined;
    this.#balancer.finish(state, outcome, latencyMs, this.#start);
  }
}

class Balancer implements MeshLoadBalancer, OutlierHost {
  endpoints: readonly Endpoint[] = [];
  states: EndpointState[] = [];
  readonly #byId = new Map<string, EndpointState>();
  /** Endpoints the policy may choose now: the healthy ones, or all in panic. Reused. */
  readonly #candidates: EndpointState[] = [];
  #panicMode = false;
  readonly #policy: Policy;
  readonly #detector: OutlierDetector;
  readonly #outlier: Readonly<ResolvedOutlierDetection>;
  readonly #config: Readonly<ResolvedLoadBalancer>;
  readonly #clock: () => number;
  readonly #needsClock: boolean;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    config: Readonly<ResolvedLoadBalancer>,
    outlier: Readonly<ResolvedOutlierDetection>,
    deps: LoadBalancerDeps,
  ) {
    this.#config = config;
    this.#outlier = outlier;
    this.#clock = deps.clock ?? defaultClock;
    const random = deps.random ?? Math.random;
    this.#policy = createPolicy(config, random);
    this.#detector = new OutlierDetector(outlier, this, this.#clock, deps.onEject, deps.onUnEject);
    this.#needsClock = this.#policy.needsClock;
    if (this.#detector.enabled) {
      this.#timer = setInterval(() => {
        this.#detector.tick(this.#clock());
      }, Math.min(Math.max(outlier.interval, 1), 2_147_483_647));
      this.#timer.unref();
    }
  }

  get stateCount(): number {
    return this.#byId.size;
  }

  get panic(): boolean {
    return this.#panicMode;
  }

  update(endpoints: readonly Endpoint[]): void {
    const now = this.#clock();
    const next: EndpointState[] = [];
    const seen = new Set<string>();
    for (const endpoint of endpoints) {
      if (seen.has(endpoint.id)) continue; // first one wins; registries emit unique ids
      seen.add(endpoint.id);
      let state = this.#byId.get(endpoint.id);
      if (state === undefined) {
        state = new EndpointState(endpoint, next.length, this.#config.ewmaDefaultRtt, now);
      } else {
        state.endpoint = endpoint;
        state.weight = endpoint.weight >= 1 ? endpoint.weight : 1;
        state.index = next.length;
      }
      next.push(state);
    }
    for (const old of this.states) {
      if (!seen.has(old.id)) {
        old.index = -1; // outstanding picks may still call done(): ignored by the detector
        this.#byId.delete(old.id);
      }
    }
    for (const s of next) this.#byId.set(s.id, s);
    this.states = next;
    this.endpoints = next.map((s) => s.endpoint);
    this.#detector.recount();
    this.#policy.setEndpoints(next);
    this.healthChanged();
  }

  /** Rebuilds the candidate set after any change of membership or health. O(n). */
  healthChanged(): void {
    const states = this.states;
    const n = states.length;
    const healthy = n - this.#detector.ejectedCount;
    const threshold = this.#outlier.panicThresholdPercent;
    // Envoy: panic when the healthy percentage is below the threshold; 0 disables it.
    this.#panicMode = n > 0 && threshold > 0 && (100 * healthy) / n < threshold;
    const candidates = this.#candidates;
    candidates.length = 0;
    for (const s of states) {
      s.usable = this.#panicMode || !s.ejected;
      if (s.usable) candidates.push(s);
    }
    this.#policy.setCandidates(candidates);
  }

  pick(ctx?: PickContext): Pick | undefined {
    if (this.states.length === 0) return undefined;
    let now = 0;
    const detector = this.#detector;
    if (detector.pending) {
      now = this.#clock();
      if (now >= detector.due) detector.tick(now);
    } else if (this.#needsClock) {
      now = this.#clock();
    }
    const candidates = this.#candidates;
    // Every endpoint ejected and panic off: Envoy fails the request ("no healthy upstream").
    if (candidates.length === 0) return undefined;
    let exclude = ctx?.exclude;
    if (exclude !== undefined && (exclude.size === 0 || !this.#anyOutside(exclude))) exclude = undefined;
    const state = this.#policy.pick(ctx?.hashKey, exclude, now);
    state.active++;
    return new PickImpl(state, this, now);
  }

  /** Whether some candidate is not in `exclude`. O(|exclude|). */
  #anyOutside(exclude: ReadonlySet<string>): boolean {
    let excluded = 0;
    for (const id of exclude) {
      const s = this.#byId.get(id);
      if (s?.usable === true) excluded++;
    }
    return excluded < this.#candidates.length;
  }

  /** Called by `Pick.done()`. O(1) (an ejection rebuilds the candidates). */
  finish(state: EndpointState, outcome: AttemptOutcome, latencyMs: number, start: number): void {
    if (state.active > 0) state.active--;
    if (outcome !== 'ignored') state.lastOk = outcome === 'success';
    // The sample was taken when the response came: pick time + latency, no clock read.
    if (this.#needsClock) this.#policy.record(state, outcome, latencyMs, start + (latencyMs > 0 ? latencyMs : 0));
    if (this.#detector.enabled) this.#detector.record(state, outcome);
  }

  /**
   * Whether some endpoint that is not ejected answered its last finished attempt
   * with a success: the upstream is (partly) serving. O(n); the breaker asks only
   * when a call failed.
   */
  answering(): boolean {
    for (const s of this.states) if (!s.ejected && s.lastOk) return true;
    return false;
  }

  stats(): EndpointStats[] {
    const now = this.#clock();
    if (this.#detector.enabled) this.#detector.tick(now);
    const decay = this.#config.ewmaDecay;
    return this.states.map((s) => ({
      id: s.id,
      endpoint: s.endpoint,
      active: s.active,
      ejected: s.ejected,
      ejectedUntil: s.ejectedUntil,
      timesEjected: s.multiplier,
      ejections: s.ejections,
      consecutive5xx: s.consecutive5xx,
      consecutiveGatewayErrors: s.consecutiveGatewayErrors,
      ewma:
        this.#policy.needsClock && now > s.ewmaStamp && decay > 0
          ? s.ewma * Math.exp(-(now - s.ewmaStamp) / decay)
          : s.ewma,
    }));
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

function defaultClock(): number {
  return performance.now();
}

function createPolicy(config: Readonly<ResolvedLoadBalancer>, random: () => number): Policy {
  const policy: LoadBalancerPolicy = config.policy;
  switch (policy) {
    case 'round_robin':
      return new RoundRobinPolicy(random);
    case 'random':
      return new RandomPolicy(random);
    case 'least_request':
      return new LeastRequestPolicy(config.choiceCount, random);
    case 'ring_hash':
      return new RingHashPolicy(config.minimumRingSize, random);
    case 'peak_ewma':
      return new PeakEwmaPolicy(config.ewmaDecay, random);
  }
}

/**
 * Creates a load balancer for one upstream: `config.policy` chooses the algorithm,
 * `outlier` configures passive outlier detection and the panic threshold.
 * Call `update()` with the endpoints, then `pick()` per attempt and `done()` per pick;
 * `close()` stops the review timer.
 *
 * `pick()` returns undefined when there is no endpoint, and also when every endpoint
 * is ejected and panic is off (panicThresholdPercent 0), as Envoy fails such a request
 * with "no healthy upstream": tell the two apart with `endpoints.length`.
 */
export function createLoadBalancer(
  config: Readonly<ResolvedLoadBalancer>,
  outlier: Readonly<ResolvedOutlierDetection>,
  deps: LoadBalancerDeps = {},
): MeshLoadBalancer {
  return new Balancer(config, outlier, deps);
}
