/**
 * Public telemetry types (re-exported from the package entry points). Private
 * ones stay in the files that use them (OTel contrib GUIDELINES: public types
 * in types.ts).
 */
import type { Meter, Span, Tracer } from '@opentelemetry/api';
import type { MeshRequest, MeshResponse } from '../core/types.ts';

/**
 * Called right after the logical span starts (only when it is recording). May
 * add attributes. A throwing hook is logged through `diag` and ignored.
 */
export type TelemetryRequestHook = (span: Span, request: MeshRequest) => void;

/**
 * Called when the logical call ends (only when the span is recording), with the
 * response or, for a failed call, `undefined` and the error. A throwing hook is
 * logged through `diag` and ignored.
 */
export type TelemetryResponseHook = (
  span: Span,
  response: MeshResponse | undefined,
  error: unknown,
) => void;

/** What the client passes to `createTelemetryLayer()`. */
export interface TelemetryLayerDeps {
  /**
   * `false` removes the layer from the chain altogether (zero cost).
   * With `true` and no tracer provider registered, the layer starts no span (one check per call).
   */
  enabled: boolean;
  /** @default trace.getTracer('inmesh', VERSION) — the global provider, resolved lazily per call. */
  tracer?: Tracer | undefined;
  /** @default metrics.getMeter('inmesh', VERSION) — the global provider at the time the layer is built. */
  meter?: Meter | undefined;
  requestHook?: TelemetryRequestHook | undefined;
  responseHook?: TelemetryResponseHook | undefined;
}

/** Telemetry options a user may put on the mesh (the client maps them onto `TelemetryLayerDeps`). */
export interface TelemetryOptions {
  /** @default true */
  enabled?: boolean;
  tracer?: Tracer;
  meter?: Meter;
  requestHook?: TelemetryRequestHook;
  responseHook?: TelemetryResponseHook;
}
