/**
 * The client-side state metrics of a mesh, besides the per-call ones of the
 * telemetry layer (layer.ts): outlier ejections, circuit-breaker state and its
 * transitions, ejected endpoints and registry staleness.
 *
 * Events (an ejection, a breaker transition) are counted when they happen,
 * through hooks the mesh wires into the balancer and the breaker. States (the
 * breaker's, the ejected count, staleness) are observable instruments read
 * only when a metric reader collects, from a callback the mesh gives: nothing
 * is added to the call path.
 */
import type { BatchObservableResult, Counter, Meter, Observable } from '@opentelemetry/api';
import {
  ATTR_INMESH_BREAKER_STATE,
  ATTR_INMESH_EJECTION_REASON,
  ATTR_INMESH_REGISTRY,
  ATTR_INMESH_SERVICE,
  METRIC_INMESH_CLIENT_BREAKER_STATE,
  METRIC_INMESH_CLIENT_BREAKER_TRANSITIONS,
  METRIC_INMESH_CLIENT_EJECTED_ENDPOINTS,
  METRIC_INMESH_CLIENT_EJECTIONS,
  METRIC_INMESH_REGISTRY_STALENESS,
} from './semconv.ts';
import { liveMeter } from './version.ts';

/** The breaker states, in the order the state gauge reports them. */
export const BREAKER_STATES = ['closed', 'open', 'half-open'] as const;
export type BreakerStateValue = (typeof BREAKER_STATES)[number];

/** One started upstream, as the observable instruments read it. */
export interface UpstreamObservation {
  readonly service: string;
  /** Registry kind (`consul`, `static`, `file`). */
  readonly registry: string;
  /** Ms since the registry last answered; Infinity before its first answer (then not reported). */
  readonly stalenessMs: number;
  /** Undefined when the upstream has no breaker. */
  readonly breaker: BreakerStateValue | undefined;
  readonly ejected: number;
}

export interface ClientMetricsDeps {
  /** @default metrics.getMeter('inmesh', VERSION) (bound now: meters have no proxy in API 1.x) */
  readonly meter?: Meter | undefined;
  /** The started upstreams, read on each collection. */
  readonly observe: () => Iterable<UpstreamObservation>;
}

export class ClientMetrics {
  readonly #ejections: Counter;
  readonly #transitions: Counter;

  private constructor(meter: Meter, observe: () => Iterable<UpstreamObservation>) {
    this.#ejections = meter.createCounter(METRIC_INMESH_CLIENT_EJECTIONS, {
      description: 'Endpoints ejected by outlier detection.',
      unit: '{ejection}',
    });
    this.#transitions = meter.createCounter(METRIC_INMESH_CLIENT_BREAKER_TRANSITIONS, {
      description: 'Circuit-breaker state changes, by the state entered.',
      unit: '{transition}',
    });
    const state = meter.createObservableGauge(METRIC_INMESH_CLIENT_BREAKER_STATE, {
      description: 'Circuit-breaker state: 1 for the current state of each upstream, 0 for the others.',
      unit: '1',
    });
    const ejected = meter.createObservableGauge(METRIC_INMESH_CLIENT_EJECTED_ENDPOINTS, {
      description: 'Endpoints currently ejected by outlier detection.',
      unit: '{endpoint}',
    });
    const staleness = meter.createObservableGauge(METRIC_INMESH_REGISTRY_STALENESS, {
      description: 'Time since the registry last answered for an upstream (0 while it answers).',
      unit: 's',
    });
    meter.addBatchObservableCallback(
      (result) => {
        for (const u of observe()) report(result, u, state, ejected, staleness);
      },
      [state, ejected, staleness],
    );
  }

  /**
   * The mesh's client metrics, or undefined when no meter is registered
   * (nothing to record into: the hooks are then left unwired).
   */
  static create(deps: ClientMetricsDeps): ClientMetrics | undefined {
    const meter = liveMeter(deps.meter);
    return meter === undefined ? undefined : new ClientMetrics(meter, deps.observe);
  }

  /** Counts one ejection (the balancer's onEject hook). */
  ejected(service: string, reason: string): void {
    this.#ejections.add(1, { [ATTR_INMESH_SERVICE]: service, [ATTR_INMESH_EJECTION_REASON]: reason });
  }

  /** Counts one breaker transition (the breaker's onStateChange hook, hence its argument order). */
  breakerChanged(state: BreakerStateValue, service: string): void {
    this.#transitions.add(1, { [ATTR_INMESH_SERVICE]: service, [ATTR_INMESH_BREAKER_STATE]: state });
  }
}

function report(result: BatchObservableResult, u: UpstreamObservation, state: Observable, ejected: Observable, staleness: Observable): void {
  const service = { [ATTR_INMESH_SERVICE]: u.service };
  if (u.breaker !== undefined) {
    for (const s of BREAKER_STATES) result.observe(state, s === u.breaker ? 1 : 0, { ...service, [ATTR_INMESH_BREAKER_STATE]: s });
  }
  result.observe(ejected, u.ejected, service);
  if (Number.isFinite(u.stalenessMs)) result.observe(staleness, u.stalenessMs / 1000, { ...service, [ATTR_INMESH_REGISTRY]: u.registry });
}
