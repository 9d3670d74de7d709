/**
 * The balancer contract (after grpc-js load-balancer.ts / picker.ts): `update()`
 * takes a new endpoint set, `pick()` is synchronous and cheap, and each pick is
 * closed with `done()` so that least-request, peak-EWMA and outlier detection
 * see every attempt's outcome.
 */
import type { AttemptOutcome, Endpoint } from '../core/types.ts';

export type { AttemptOutcome };

export interface PickContext {
  /** ring_hash: the request's hash key; a random one is used when absent. */
  readonly hashKey?: string | undefined;
  /** Endpoint ids already tried by this request: avoided when another endpoint exists. */
  readonly exclude?: ReadonlySet<string> | undefined;
}

export interface Pick {
  readonly endpoint: Endpoint;
  /** Call exactly once when the attempt ends. `latencyMs` is time to response headers (or to failure). */
  done(outcome: AttemptOutcome, latencyMs: number): void;
}

export interface LoadBalancer {
  /** Replace the endpoint set. State of endpoints that stay (ids equal) is kept. */
  update(endpoints: readonly Endpoint[]): void;
  /** Undefined when there is no endpoint at all. */
  pick(ctx?: PickContext): Pick | undefined;
  /** Endpoints currently known (ejected ones included). */
  readonly endpoints: readonly Endpoint[];
  /** Stops timers. */
  close(): void;
  /**
   * True when some non-ejected endpoint's last finished attempt succeeded (the
   * upstream is at least partly serving). The error-rate breaker counts a failed
   * call only while this is false; a balancer without it is never "answering".
   */
  answering?(): boolean;
}

/** Emitted when outlier detection ejects an endpoint (for telemetry and logs). */
export interface EjectionEvent {
  readonly endpoint: Endpoint;
  readonly reason: 'consecutive-5xx' | 'consecutive-gateway-errors';
  /** The ejection multiplier after this ejection (Envoy's "times ejected", decays when healthy). */
  readonly timesEjected: number;
  /** min(baseEjectionTime x timesEjected, maxEjectionTime), ms. */
  readonly durationMs: number;
  /** Clock time after which the endpoint returns, on the next interval tick. */
  readonly ejectedUntil: number;
}

/** Emitted when an ejected endpoint returns to the balancer. */
export interface UnEjectionEvent {
  readonly endpoint: Endpoint;
  readonly timesEjected: number;
}

/** Injectable dependencies of `createLoadBalancer` (tests pass a fake clock and a seeded random). */
export interface LoadBalancerDeps {
  /** Monotonic milliseconds. @default performance.now */
  readonly clock?: () => number;
  /** Uniform in [0, 1). @default Math.random */
  readonly random?: () => number;
  /** Called synchronously on each ejection; errors are swallowed. */
  readonly onEject?: (event: EjectionEvent) => void;
  /** Called synchronously when an ejected endpoint returns; errors are swallowed. */
  readonly onUnEject?: (event: UnEjectionEvent) => void;
}

/** Read-only view of one endpoint's balancing and outlier state. */
export interface EndpointStats {
  readonly id: string;
  readonly endpoint: Endpoint;
  /** Picks not yet done. */
  readonly active: number;
  readonly ejected: boolean;
  /** Clock time the current ejection is over; 0 when never ejected. */
  readonly ejectedUntil: number;
  /** Ejection multiplier (Envoy ejectTimeBackoff): grows per ejection, decays by one per healthy interval. */
  readonly timesEjected: number;
  /** Total ejections since the endpoint joined. */
  readonly ejections: number;
  readonly consecutive5xx: number;
  readonly consecutiveGatewayErrors: number;
  /** peak_ewma RTT estimate, ms, decayed to now (other policies: the default RTT, untouched). */
  readonly ewma: number;
}

/** What `createLoadBalancer` returns: the LoadBalancer contract plus read-only introspection. */
export interface MeshLoadBalancer extends LoadBalancer {
  /** One entry per current endpoint, in `endpoints` order. O(n), allocates: not for the hot path. */
  stats(): EndpointStats[];
  /** True while fewer than panicThresholdPercent of the endpoints are healthy (health ignored). */
  readonly panic: boolean;
  /** See `LoadBalancer.answering`: always present here. O(n). */
  answering(): boolean;
  /** Per-endpoint states held (one per current endpoint: states of endpoints that left are dropped). */
  readonly stateCount: number;
}
