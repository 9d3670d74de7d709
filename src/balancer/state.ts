/**
 * Per-endpoint mutable state shared by the policies and the outlier detector.
 * One instance per endpoint id, kept across `update()` while the id stays.
 * A plain class with every field initialised in the constructor, so V8 gives all
 * instances one hidden class and the hot path reads are monomorphic.
 */
import type { Endpoint } from '../core/types.ts';

export class EndpointState {
  readonly id: string;
  endpoint: Endpoint;
  /** Endpoint.weight, clamped to >= 1 (registry data is validated, this is a last guard). */
  weight: number;
  /** Picks handed out and not yet `done()`. */
  active = 0;
  /** Index in the balancer's `states` array, -1 once removed by `update()`. */
  index: number;

  // Outlier detection (Envoy DetectorHostMonitorImpl).
  ejected = false;
  /** Clock time at which the ejection is over (reviewed on the next interval tick). */
  ejectedUntil = 0;
  /** Envoy `ejectTimeBackoff`: ejection time = base x this, capped; decays by one per healthy interval. */
  multiplier = 0;
  /** Total ejections over the endpoint's life here (telemetry only). */
  ejections = 0;
  consecutive5xx = 0;
  consecutiveGatewayErrors = 0;
  /** Whether the current pick pass may choose this endpoint (not ejected, or panic). */
  usable = true;
  /** Whether the last finished (not ignored) attempt on this endpoint succeeded; false until one has. */
  lastOk = false;

  // peak_ewma (Finagle / tower PeakEwma): RTT estimate in ms and when it was last updated.
  ewma: number;
  ewmaStamp: number;

  constructor(endpoint: Endpoint, index: number, defaultRtt: number, now: number) {
    this.id = endpoint.id;
    this.endpoint = endpoint;
    this.weight = endpoint.weight >= 1 ? endpoint.weight : 1;
    this.index = index;
    this.ewma = defaultRtt;
    this.ewmaStamp = now;
  }
}
