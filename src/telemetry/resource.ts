/**
 * The telemetry of guarded calls (guard/): one CLIENT span per call, following
 * the OpenTelemetry database conventions (`db.system.name`,
 * `db.operation.name`, `db.collection.name`) or the messaging ones
 * (`messaging.system`, `messaging.operation.name`,
 * `messaging.destination.name`) as the call names them, with `inmesh.resource`
 * and `inmesh.attempts`; and its duration in the same metric family as the
 * HTTP client's (`*.client.*.duration`, seconds): `db.client.operation.duration`
 * or `messaging.client.operation.duration`.
 *
 * One span per call, not per try: a library instrumentation of the client
 * (ioredis, pg) already makes one span per command it sends, and those become
 * children of this one. Cost with no SDK and no meter: one check per call, as
 * in layer.ts.
 */
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { Attributes, Histogram, Span, SpanOptions, Tracer, Meter } from '@opentelemetry/api';
import type { Handler, Layer, MeshRequest, MeshResponse, ResourceCallInfo } from '../core/types.ts';
import { noGlobalTracerProvider } from './layer.ts';
import {
  ATTR_DB_COLLECTION_NAME,
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_SYSTEM_NAME,
  ATTR_ERROR_TYPE,
  ATTR_INMESH_ATTEMPTS,
  ATTR_INMESH_RESOURCE,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_SYSTEM,
  METRIC_DB_CLIENT_OPERATION_DURATION,
  METRIC_MESSAGING_CLIENT_OPERATION_DURATION,
  OPERATION_DURATION_BUCKETS,
} from './semconv.ts';
import { liveMeter, SCOPE_NAME, VERSION } from './version.ts';

const SPAN_OPTIONS: SpanOptions = { kind: SpanKind.CLIENT };

export interface ResourceTelemetryDeps {
  readonly tracer?: Tracer | undefined;
  readonly meter?: Meter | undefined;
}

const KEYS = {
  db: { system: ATTR_DB_SYSTEM_NAME, operation: ATTR_DB_OPERATION_NAME, target: ATTR_DB_COLLECTION_NAME },
  messaging: { system: ATTR_MESSAGING_SYSTEM, operation: ATTR_MESSAGING_OPERATION_NAME, target: ATTR_MESSAGING_DESTINATION_NAME },
} as const;

/** The attributes the span and the metric share: the conventions' names for what the call named, and the resource. */
function callAttributes(req: MeshRequest, info: ResourceCallInfo): Attributes {
  const keys = KEYS[info.kind];
  const attrs: Attributes = { [ATTR_INMESH_RESOURCE]: req.service };
  if (info.system !== undefined) attrs[keys.system] = info.system;
  if (info.operation !== undefined) attrs[keys.operation] = info.operation;
  if (info.target !== undefined) attrs[keys.target] = info.target;
  return attrs;
}

/** `{operation} {target}`, else the system, else the resource name (the conventions' span name, with our fallback). */
function spanName(req: MeshRequest, info: ResourceCallInfo): string {
  if (info.operation !== undefined) return info.target === undefined ? info.operation : `${info.operation} ${info.target}`;
  return info.system ?? req.service;
}

function errorType(error: unknown): string {
  if (error !== null && typeof error === 'object') {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return error instanceof Error ? error.name : '_OTHER';
}

/** The telemetry layer of guarded calls (outermost in guard/chain.ts), or undefined when telemetry is off. */
export function createResourceTelemetry(deps: ResourceTelemetryDeps): Layer {
  const ownTracer = deps.tracer !== undefined;
  const tracer = deps.tracer ?? trace.getTracer(SCOPE_NAME, VERSION);
  const meter = liveMeter(deps.meter);
  const durations: { readonly [K in ResourceCallInfo['kind']]: Histogram } | undefined =
    meter === undefined
      ? undefined
      : {
          db: meter.createHistogram(METRIC_DB_CLIENT_OPERATION_DURATION, {
            description: 'Duration of guarded calls to databases and caches (every try included).',
            unit: 's',
            advice: { explicitBucketBoundaries: [...OPERATION_DURATION_BUCKETS] },
          }),
          messaging: meter.createHistogram(METRIC_MESSAGING_CLIENT_OPERATION_DURATION, {
            description: 'Duration of guarded calls to message brokers (every try included).',
            unit: 's',
            advice: { explicitBucketBoundaries: [...OPERATION_DURATION_BUCKETS] },
          }),
        };

  return (next: Handler): Handler =>
    function resourceTelemetry(req: MeshRequest): Promise<MeshResponse> {
      const info = req.resource;
      if (info === undefined || (durations === undefined && !ownTracer && noGlobalTracerProvider())) return next(req);
      const span = tracer.startSpan(spanName(req, info), SPAN_OPTIONS);
      const recording = span.isRecording();
      if (!recording && durations === undefined) return next(req);
      const attrs = callAttributes(req, info);
      if (recording) span.setAttributes(attrs);
      const start = performance.now();
      let pending: Promise<MeshResponse>;
      try {
        // Inside our context, a client library's own spans become children of this one.
        pending = recording ? context.with(trace.setSpan(context.active(), span), next, undefined, req) : next(req);
      } catch (error) {
        pending = Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
      const end = (error: unknown, failed: boolean): void => {
        if (failed) attrs[ATTR_ERROR_TYPE] = errorType(error);
        durations?.[info.kind].record((performance.now() - start) / 1000, attrs);
        if (!recording) return;
        endSpan(span, req, failed, error);
      };
      return pending.then(
        (res) => {
          end(undefined, false);
          return res;
        },
        (error: unknown) => {
          end(error, true);
          throw error;
        },
      );
    };
}

function endSpan(span: Span, req: MeshRequest, failed: boolean, error: unknown): void {
  span.setAttribute(ATTR_INMESH_ATTEMPTS, req.attempt + 1);
  if (failed) {
    span.setAttribute(ATTR_ERROR_TYPE, errorType(error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    if (error instanceof Error) span.recordException(error);
  }
  span.end();
}
