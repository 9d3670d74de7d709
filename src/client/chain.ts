/**
 * THE assembler of the client call chain: every layer of an upstream is built
 * here, once per upstream, in LAYER_ORDER, by factories of one shape
 * (`(upstream, deps) → Layer | undefined`, core/types.ts). Pinned by
 * test/integration/client/layer-order.test.ts.
 *
 * Rule: array order = call order; the first layer is the OUTERMOST (like
 * cockatiel's `wrap()`, and unlike undici's `compose()`, where the last
 * interceptor listed is the outermost).
 *
 *   telemetry → deadline → breaker → rateLimit → limit → retry → attemptTimeout → balance → (transport)
 *
 * - telemetry: one logical INTERNAL span + duration metric per call (telemetry/layer.ts).
 * - deadline: fixes the absolute end of the call (total timeout, every attempt and backoff),
 *   bounded by the deadline of the inbound request the call is made for.
 * - breaker: the upstream's error-rate circuit breaker (opossum; resilience/breaker.ts); it
 *   counts a failed call only while the balancer reports no endpoint answering.
 * - rateLimit: the client token bucket (resilience/rate-limit.ts). Before the concurrency
 *   limit so that a call refused for want of a token never holds a concurrency slot.
 * - limit: Envoy-style max requests / max pending (resilience/limits.ts); overflow = LoadShedError.
 * - retry: Envoy retry_on + budget + backoff (resilience/retry.ts).
 * - attemptTimeout: one deadline per attempt, min(per-try timeout, time left).
 * - balance: a fresh pick per attempt + pick.done() (per-endpoint health / ejection).
 * - transport: one undici Pool per endpoint (client/transport.ts), the innermost handler,
 *   wrapped in the telemetry's attempt hook (one CLIENT span per physical attempt) when telemetry is on.
 *
 * A factory returns undefined when the upstream's policy turns its layer off;
 * the layer is then absent and costs nothing. Layers whose need depends on the
 * call (a per-call timeout or retry count) are always present and pass the
 * call straight on when it has none.
 */
import type { LoadBalancer } from '../balancer/types.ts';
import { buildLayers, composeLayers } from '../core/layers.ts';
import type { Handler, Layer, LayerFactory } from '../core/types.ts';
import type { ResolvedUpstream } from '../policy/types.ts';
import { createBreakerLayer, type BreakerDeps, type BreakerLayer } from '../resilience/breaker.ts';
import { createLimitLayer } from '../resilience/limits.ts';
import { createRateLimitLayer, type RateLimitDeps } from '../resilience/rate-limit.ts';
import { createRetryLayer, type RetryDeps } from '../resilience/retry.ts';
import { createTelemetryLayer, type TelemetryDeps } from '../telemetry/layer.ts';
import { createBalanceLayer, type BalanceDeps } from './balance.ts';
import { createAttemptTimeoutLayer, createDeadlineLayer } from './deadline.ts';

export const LAYER_ORDER = [
  'telemetry',
  'deadline',
  'breaker',
  'rateLimit',
  'limit',
  'retry',
  'attemptTimeout',
  'balance',
] as const;

export type LayerName = (typeof LAYER_ORDER)[number];

export type NamedLayers = Partial<Record<LayerName, Layer | undefined>>;

/** Everything any layer factory needs; the assembler hands the same object to each. */
export interface ChainDeps extends TelemetryDeps, BreakerDeps, RateLimitDeps, RetryDeps, BalanceDeps {
  readonly balancer: LoadBalancer;
}

/**
 * The breaker asks the upstream's balancer whether some endpoint is answering,
 * so that a partial outage never opens it (resilience/breaker.ts).
 */
function createBreaker(upstream: Readonly<ResolvedUpstream>, deps: ChainDeps): BreakerLayer | undefined {
  const answering = deps.answering ?? deps.balancer.answering?.bind(deps.balancer);
  return createBreakerLayer(upstream, { ...deps, answering });
}

/** The factory of each layer, by name: the one table the assembler reads. */
const FACTORIES: { readonly [K in LayerName]: LayerFactory<ChainDeps> } = {
  telemetry: createTelemetryLayer,
  deadline: createDeadlineLayer,
  breaker: createBreaker,
  rateLimit: createRateLimitLayer,
  limit: createLimitLayer,
  retry: createRetryLayer,
  attemptTimeout: createAttemptTimeoutLayer,
  balance: createBalanceLayer,
};

export interface Chain {
  readonly handler: Handler;
  /** The layers present, outermost first (for tests and `explain`). */
  readonly names: readonly LayerName[];
  /** The layers present, by name (a breaker's state, a limit's counters). */
  readonly layers: Readonly<NamedLayers>;
}

export interface UpstreamChain extends Chain {
  /** Shuts down the layers with state (breaker timers, queued calls, a Redis connection). */
  close(): Promise<void>;
}

/** Wraps `transport` in the present layers, in LAYER_ORDER (first = outermost). */
export function composeChain(layers: NamedLayers, transport: Handler): Chain {
  return { ...composeLayers(LAYER_ORDER, layers, transport), layers };
}

/** Builds every layer of `upstream` and composes them around `transport`. */
export function assembleChain(upstream: Readonly<ResolvedUpstream>, deps: ChainDeps, transport: Handler): UpstreamChain {
  // A factory that refuses its policy throws: what was built so far is shut down again.
  const { layers, close } = buildLayers(LAYER_ORDER, (name) => FACTORIES[name](upstream, deps));
  const attemptHook = deps.telemetry?.attempt;
  return { ...composeChain(layers, attemptHook === undefined ? transport : attemptHook(transport)), close };
}
