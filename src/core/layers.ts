/**
 * Building and composing a chain of layers, for the two assemblers: the
 * client's (client/chain.ts, an upstream's layers around the transport) and
 * the guard's (guard/chain.ts, a resource's layers around the guarded call).
 * Each keeps its own order and factories; the order's first name is the
 * OUTERMOST layer.
 */
import { isClosable, type ClosableLayer, type Handler, type Layer } from './types.ts';

export interface BuiltLayers<N extends string> {
  /** The layers present, by name (a name `build` returned undefined for is absent). */
  readonly layers: Partial<Record<N, Layer>>;
  /** Shuts down the layers with state, all at once. */
  readonly close: () => Promise<void>;
}

/**
 * Builds the layer of each name in `order`. When one refuses its policy (a
 * throw), those built so far are shut down again and the error is rethrown.
 */
export function buildLayers<N extends string>(order: readonly N[], build: (name: N) => Layer | undefined): BuiltLayers<N> {
  const layers: Partial<Record<N, Layer>> = {};
  const closables: ClosableLayer[] = [];
  try {
    for (const name of order) {
      const layer = build(name);
      if (layer === undefined) continue;
      layers[name] = layer;
      if (isClosable(layer)) closables.push(layer);
    }
  } catch (error) {
    for (const c of closables) void c.close();
    throw error;
  }
  return {
    layers,
    close: async () => {
      await Promise.all(closables.map((c) => c.close()));
    },
  };
}

/** Wraps `inner` in the present layers of `order` (first = outermost); `names` are those present, outermost first. */
export function composeLayers<N extends string>(order: readonly N[], layers: Partial<Record<N, Layer | undefined>>, inner: Handler): { handler: Handler; names: N[] } {
  let handler = inner;
  const names: N[] = [];
  for (let i = order.length - 1; i >= 0; i--) {
    const name = order[i] as N;
    const layer = layers[name];
    if (layer === undefined) continue;
    handler = layer(handler);
    names.unshift(name);
  }
  return { handler, names };
}
