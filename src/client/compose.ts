/**
 * THE layer order of the client data path, written down once and pinned by
 * test/integration/client/layer-order.test.ts.
 *
 * Rule: array order = call order; the first layer is the OUTERMOST (like
 * cockatiel's `wrap()`, and unlike undici's `compose()`, where the last
 * interceptor listed is the outermost).
 *
 *   telemetry → deadline → breaker → rateLimit → limit → retry → attemptTimeout → balance → (transport)
 *
 * - telemetry: one logical span + duration metric per call (src/telemetry/layer.ts).
 * - deadline: fixes the absolute end of the call (total timeout, every attempt and backoff).
 * - breaker: the upstream's error-rate circuit breaker (opossum; src/resilience/breaker.ts).
 * - rateLimit: the client token bucket (src/resilience/rate-limit.ts: a hand-written bucket in
 *   the process, Bottleneck over Redis only when shared). Before the concurrency limit so that
 *   a call refused for want of a token never holds a concurrency slot.
 * - limit: Envoy-style max requests / max pending (src/resilience/limits.ts); overflow = LoadShedError.
 * - retry: Envoy retry_on + budget + backoff (src/resilience/retry.ts).
 * - attemptTimeout: one timer per attempt, min(per-try timeout, time left).
 * - balance: a fresh pick per attempt + pick.done() (per-endpoint health / ejection).
 * - transport: one undici Pool per endpoint (client/transport.ts).
 *
 * A layer whose policy is off is absent (undefined) and costs nothing. Chains are
 * built once per upstream and presence variant, never per request.
 */
import type { Handler, Layer } from './types.ts';

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

export interface Chain {
  readonly handler: Handler;
  /** The layers present, outermost first (for tests and `explain`). */
  readonly names: readonly LayerName[];
}

/** Wraps `transport` in the present layers, in LAYER_ORDER (first = outermost). */
export function composeChain(layers: NamedLayers, transport: Handler): Chain {
  let handler = transport;
  const names: LayerName[] = [];
  for (let i = LAYER_ORDER.length - 1; i >= 0; i--) {
    const name = LAYER_ORDER[i] as LayerName;
    const layer = layers[name];
    if (layer === undefined) continue;
    handler = layer(handler);
    names.unshift(name);
  }
  return { handler, names };
}
