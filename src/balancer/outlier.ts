/**
 * Passive outlier detection with Envoy's semantics (source/common/upstream/
 * outlier_detection_impl.cc), run inside the balancer like grpc-js's
 * OutlierDetectionLoadBalancer/Picker: outcomes come in through `Pick.done()`.
 *
 * - consecutive5xx counts `server-error` and `gateway-error`; consecutiveGatewayErrors
 *   counts `gateway-error` only, and a `server-error` breaks its run (Envoy resets the
 *   gateway counter on a non-gateway 5xx). `success` resets both; `ignored` touches
 *   nothing (a local limit overflow or a caller abort says nothing about the host).
 *   A threshold of 0 turns that detector off.
 * - The failure that reaches a threshold ejects at once (Envoy ejects on consecutive
 *   errors immediately, not on the interval). The counter that fired is reset even
 *   if the ejection is refused by maxEjectionPercent, so a new run is needed.
 * - maxEjectionPercent: ejection allowed while (ejected + 1) / hosts <= percent, and
 *   always when nothing is ejected yet (at least one host may always be ejected).
 * - Ejection time = min(base x multiplier, max). The multiplier grows by one per
 *   ejection (Envoy stops growing it once base x multiplier >= max + base) and, on
 *   every interval tick, decays by one for each host that is not ejected.
 * - Hosts come back on the first interval tick at or after their ejection time is up;
 *   their consecutive counters are reset then (Envoy does so to avoid re-ejection on
 *   a single new error).
 *
 * Ticks are at creation + k x interval. They are driven by an unref'd timer and also
 * evaluated lazily on `pick()` from the clock, so a fake clock needs no timers. Several
 * missed ticks are applied at once with the same result as ticking one by one, which
 * also lets both skip all work (and `pick()` skip the clock read) while no host is
 * ejected or has a multiplier to decay.
 *
 * Costs: `record()` O(1) (an ejection also rebuilds the candidates, O(n), rare);
 * `tick()` O(n) once per interval.
 */
import type { Endpoint } from '../core/types.ts';
import type { ResolvedOutlierDetection } from '../policy/types.ts';
import type { AttemptOutcome, EjectionEvent, UnEjectionEvent } from './types.ts';
import type { EndpointState } from './state.ts';

export interface OutlierHost {
  /** Current endpoint states (every one, ejected included). */
  readonly states: readonly EndpointState[];
  /** Called after any ejection or return, to rebuild the candidate set. */
  healthChanged(): void;
}

export class OutlierDetector {
  readonly enabled: boolean;
  /** Number of currently ejected hosts among `host.states`. */
  ejectedCount = 0;
  /** Number of hosts whose multiplier is above 0 (ticks have work to do). */
  #decaying = 0;
  #nextTick: number;
  readonly #interval: number;
  readonly #config: Readonly<ResolvedOutlierDetection>;
  readonly #host: OutlierHost;
  readonly #clock: () => number;
  readonly #onEject: ((event: EjectionEvent) => void) | undefined;
  readonly #onUnEject: ((event: UnEjectionEvent) => void) | undefined;

  constructor(
    config: Readonly<ResolvedOutlierDetection>,
    host: OutlierHost,
    clock: () => number,
    onEject: ((event: EjectionEvent) => void) | undefined,
    onUnEject: ((event: UnEjectionEvent) => void) | undefined,
  ) {
    this.#config = config;
    this.#host = host;
    this.#clock = clock;
    this.enabled = config.consecutive5xx > 0 || config.consecutiveGatewayErrors > 0;
    // A non-positive interval would spin; treat it as 1 ms.
    this.#interval = config.interval > 0 ? config.interval : 1;
    this.#nextTick = clock() + this.#interval;
    this.#onEject = onEject;
    this.#onUnEject = onUnEject;
  }

  /** When the next interval tick is due (clock time). */
  get due(): number {
    return this.#nextTick;
  }

  /**
   * Whether an interval tick would change anything (a host is ejected or has a
   * multiplier to decay). When not, `pick()` skips the clock read entirely.
   */
  get pending(): boolean {
    return this.ejectedCount > 0 || this.#decaying > 0;
  }

  /** Records one attempt's outcome. O(1), no clock read unless it ejects. */
  record(state: EndpointState, outcome: AttemptOutcome): void {
    switch (outcome) {
      case 'success':
        state.consecutive5xx = 0;
        state.consecutiveGatewayErrors = 0;
        return;
      case 'ignored':
        return;
      case 'server-error': {
        state.consecutiveGatewayErrors = 0;
        const t = this.#config.consecutive5xx;
        if (++state.consecutive5xx >= t && t > 0) this.#fire(state, 'consecutive-5xx');
        return;
      }
      case 'gateway-error': {
        // Envoy checks the gateway detector first, then 5xx.
        const tg = this.#config.consecutiveGatewayErrors;
        if (++state.consecutiveGatewayErrors >= tg && tg > 0) this.#fire(state, 'consecutive-gateway-errors');
        const t5 = this.#config.consecutive5xx;
        if (++state.consecutive5xx >= t5 && t5 > 0) this.#fire(state, 'consecutive-5xx');
        return;
      }
    }
  }

  #fire(state: EndpointState, reason: EjectionEvent['reason']): void {
    // Removed from the set since the pick: nothing to do.
    if (state.index < 0) return;
    // Bring returns and decay up to date first, so the percentage check is current.
    const now = this.#clock();
    this.tick(now);
    // Already out: Envoy returns early without resetting the counter (reset on return).
    if (state.ejected) return;
    if (reason === 'consecutive-5xx') state.consecutive5xx = 0;
    else state.consecutiveGatewayErrors = 0;

    const hosts = this.#host.states.length;
    const allowed =
      this.ejectedCount === 0 || (100 * (this.ejectedCount + 1)) / hosts <= this.#config.maxEjectionPercent;
    if (!allowed) return;

    const base = this.#config.baseEjectionTime;
    const max = this.#config.maxEjectionTime;
    if (state.multiplier * base < max + base) {
      if (state.multiplier === 0) this.#decaying++;
      state.multiplier++;
    }
    const duration = Math.min(base * state.multiplier, max);
    state.ejected = true;
    state.ejectedUntil = now + duration;
    state.ejections++;
    this.ejectedCount++;
    this.#host.healthChanged();
    if (this.#onEject !== undefined) {
      safe(this.#onEject, {
        endpoint: state.endpoint,
        reason,
        timesEjected: state.multiplier,
        durationMs: duration,
        ejectedUntil: state.ejectedUntil,
      });
    }
  }

  /**
   * Applies every interval tick due by `now`. Equivalent to running Envoy's
   * onIntervalTimer at each tick time: an ejected host returns at the first tick at or
   * after `ejectedUntil` and its multiplier decays on each later tick; a healthy host's
   * multiplier decays by one per tick. O(n).
   */
  tick(now: number): void {
    if (now < this.#nextTick || !this.pending) return;
    const interval = this.#interval;
    const first = this.#nextTick;
    const count = Math.floor((now - first) / interval) + 1;
    const last = first + (count - 1) * interval;
    this.#nextTick = last + interval;

    let returned: Endpoint[] | undefined;
    let returnedMultipliers: number[] | undefined;
    let decaying = 0;
    for (const state of this.#host.states) {
      if (state.ejected) {
        if (state.ejectedUntil > last) continue;
        // First tick at or after ejectedUntil (and no earlier than the first pending one).
        const back =
          state.ejectedUntil <= first ? first : first + Math.ceil((state.ejectedUntil - first) / interval) * interval;
        state.ejected = false;
        state.consecutive5xx = 0;
        state.consecutiveGatewayErrors = 0;
        this.ejectedCount--;
        const decay = Math.round((last - back) / interval);
        state.multiplier = Math.max(0, state.multiplier - decay);
        (returned ??= []).push(state.endpoint);
        (returnedMultipliers ??= []).push(state.multiplier);
      } else if (state.multiplier > 0) {
        state.multiplier = Math.max(0, state.multiplier - count);
      }
      if (state.multiplier > 0) decaying++;
    }
    this.#decaying = decaying;
    if (returned === undefined) return;
    this.#host.healthChanged();
    if (this.#onUnEject !== undefined) {
      for (let i = 0; i < returned.length; i++) {
        safe(this.#onUnEject, {
          endpoint: returned[i] as Endpoint,
          timesEjected: (returnedMultipliers as number[])[i] as number,
        });
      }
    }
  }

  /** `update()` removed or added hosts: recount the ejected ones. O(n). */
  recount(): void {
    let ejected = 0;
    let decaying = 0;
    for (const s of this.#host.states) {
      if (s.ejected) ejected++;
      if (s.multiplier > 0) decaying++;
    }
    this.ejectedCount = ejected;
    this.#decaying = decaying;
  }
}

/** Telemetry callbacks must never break the data path. */
function safe<T>(fn: (event: T) => void, event: T): void {
  try {
    fn(event);
  } catch {
    // Swallowed on purpose: a failing listener must not fail the request.
  }
}
