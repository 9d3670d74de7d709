/**
 * The telemetry of the client chain, in two places:
 *
 * - The telemetry layer, outermost in the chain: one INTERNAL span per
 *   *logical* call (named `GET orders`, with `inmesh.attempts`), a duration
 *   histogram and an attempts counter.
 * - The attempt hook (`Telemetry.attempt`), wrapped around the transport: one
 *   CLIENT span per *physical* attempt, a child of the logical span, with
 *   `http.request.resend_count` on every attempt after the first (HTTP
 *   semantic conventions: a resent request is its own CLIENT span). The W3C
 *   trace context is injected per attempt, so the upstream's SERVER span hangs
 *   off the attempt that reached it.
 *
 * Cost model (the hot path of every call goes through here):
 * - `enabled: false` returns `undefined`, so the chain has no telemetry layer
 *   and no attempt hook.
 * - Enabled with no tracer provider registered (and no tracer given): no span
 *   at all, only `propagation.inject()` of the active context (a no-op without
 *   a propagator; forwards an inbound trace context with one); the handler's
 *   promise is returned as is (no attribute object, no closure, no timer). The
 *   attempt hook does one WeakMap lookup that finds nothing and passes on.
 * - A sampled-out or otherwise non-recording span: the same, plus the span.
 * - Recording: the attributes, one context, one `then` and the metric records,
 *   and per attempt one more span and one more `then`.
 *
 * Attributes are set after `startSpan()` (not passed in its options) so that
 * the no-op case allocates nothing: a sampler therefore sees the span name,
 * the kind and the parent, not the attributes.
 */
import {
  ProxyTracerProvider,
  SpanKind,
  SpanStatusCode,
  context,
  isSpanContextValid,
  propagation,
  trace,
} from '@opentelemetry/api';
import type { Attributes, Context, Counter, Histogram, Span, SpanOptions } from '@opentelemetry/api';
import type { Handler, Layer, MeshRequest, MeshResponse } from '../core/types.ts';
import type { ResolvedUpstream } from '../policy/types.ts';
import { safeExecute } from './safe.ts';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_INMESH_ATTEMPTS,
  ATTR_INMESH_ENDPOINT,
  ATTR_INMESH_SERVICE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_PEER_SERVICE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
  ERROR_TYPE_VALUE_OTHER,
  HTTP_DURATION_BUCKETS,
  HTTP_REQUEST_METHOD_VALUE_OTHER,
  KNOWN_HTTP_METHODS,
  METRIC_HTTP_CLIENT_REQUEST_DURATION,
  METRIC_INMESH_CLIENT_ATTEMPTS,
  METRIC_INMESH_CLIENT_RETRIES,
} from './semconv.ts';
import type { TelemetryLayerDeps } from './types.ts';
import { liveMeter, SCOPE_NAME, VERSION } from './version.ts';

const LOGICAL_SPAN_OPTIONS: SpanOptions = { kind: SpanKind.INTERNAL };
const ATTEMPT_SPAN_OPTIONS: SpanOptions = { kind: SpanKind.CLIENT };
// ProxyTracerProvider is deprecated for *users* of API 1.x (removed in 2.0); the
// global provider is still one in 1.10, our whole peer range, and it is the only
// public way to tell "no SDK" from "an SDK" without starting a span. An API 2
// upgrade will fail to compile here, which is what we want.
/** The API's no-op provider: what the global proxy delegates to while no SDK is registered. */
// eslint-disable-next-line @typescript-eslint/no-deprecated
const NOOP_TRACER_PROVIDER = new ProxyTracerProvider().getDelegate();

/** True while no tracer provider is registered globally (checked per call: an SDK may come later). */
export function noGlobalTracerProvider(): boolean {
  const provider = trace.getTracerProvider();
  // eslint-disable-next-line @typescript-eslint/no-deprecated
  return provider instanceof ProxyTracerProvider && provider.getDelegate() === NOOP_TRACER_PROVIDER;
}

/** A mesh's telemetry: its instruments and hooks, shared by every upstream's chain. */
export interface Telemetry {
  /** The telemetry layer (one for every upstream: it reads the service from the request). */
  readonly layer: Layer;
  /** The attempt hook, wrapped around the transport: one CLIENT span per physical attempt. */
  readonly attempt: Layer;
}

/** What the chain assembler hands the telemetry layer factory. */
export interface TelemetryDeps {
  /** The mesh's telemetry; undefined when telemetry is off. */
  readonly telemetry?: Telemetry | undefined;
}

/** The telemetry layer of an upstream (layer factory shape): the mesh's shared one, or none. */
export function createTelemetryLayer(_upstream: Readonly<ResolvedUpstream>, deps: TelemetryDeps): Layer | undefined {
  return deps.telemetry?.layer;
}

/**
 * Builds a mesh's telemetry (instruments made once), or `undefined` when
 * telemetry is disabled: the layer is then absent (zero cost).
 */
export function createTelemetry(deps: TelemetryLayerDeps): Telemetry | undefined {
  if (!deps.enabled) return undefined;
  // The API's global tracer is a proxy: an SDK registered after the mesh was
  // built is still picked up. Meters have no proxy in API 1.x, so the meter is
  // whatever is registered now; with none, metrics are off for this layer.
  const ownTracer = deps.tracer !== undefined;
  const tracer = deps.tracer ?? trace.getTracer(SCOPE_NAME, VERSION);
  const meter = liveMeter(deps.meter);
  const instruments: Instruments | undefined =
    meter === undefined
      ? undefined
      : {
          duration: meter.createHistogram(METRIC_HTTP_CLIENT_REQUEST_DURATION, {
            description: 'Duration of logical HTTP client calls made through the mesh (every attempt included).',
            unit: 's',
            advice: { explicitBucketBoundaries: [...HTTP_DURATION_BUCKETS] },
          }),
          attempts: meter.createCounter(METRIC_INMESH_CLIENT_ATTEMPTS, {
            description: 'Physical attempts made by logical calls (first tries and retries).',
            unit: '{attempt}',
          }),
          retries: meter.createCounter(METRIC_INMESH_CLIENT_RETRIES, {
            description: 'Retries made by logical calls (attempts after the first).',
            unit: '{retry}',
          }),
        };
  const { requestHook, responseHook } = deps;
  // The recording logical span of each call in flight, for the attempt hook. A
  // WeakMap keyed by the request (one object per call, shared by its attempts):
  // nothing is added to MeshRequest, and an entry goes with its request.
  const logicalSpans = new WeakMap<MeshRequest, Span>();

  const layer = (next: Handler): Handler =>
    (req: MeshRequest): Promise<MeshResponse> => {
      if (instruments === undefined && !ownTracer && noGlobalTracerProvider()) {
        propagation.inject(context.active(), req.headers);
        return next(req);
      }
      const method = normalizeMethod(req.method);
      const span = tracer.startSpan(
        `${method === HTTP_REQUEST_METHOD_VALUE_OTHER ? 'HTTP' : method} ${req.service}`,
        LOGICAL_SPAN_OPTIONS,
      );
      const recording = span.isRecording();
      let ctx: Context | undefined;
      if (recording) {
        logicalSpans.set(req, span);
        setRequestAttributes(span, req, method);
        safeExecute('requestHook', requestHook, span, req);
      }
      // Propagate whenever there is a trace to continue: our span (each attempt
      // then injects its own span over it), or (no SDK, or sampled out) the span
      // context the no-op/non-recording span carries.
      if (recording || isSpanContextValid(span.spanContext())) {
        ctx = trace.setSpan(context.active(), span);
        propagation.inject(ctx, req.headers);
      }
      if (!recording && instruments === undefined) return next(req);

      const start = performance.now();
      let pending: Promise<MeshResponse>;
      try {
        // Running the chain inside our context makes whatever starts spans
        // inside it (the attempt hook, the breaker's events) children of the logical span.
        pending = recording && ctx !== undefined ? context.with(ctx, next, undefined, req) : next(req);
      } catch (err) {
        pending = Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      return pending.then(
        (res) => {
          finish(span, recording, instruments, responseHook, req, method, start, res, undefined);
          return res;
        },
        (err: unknown) => {
          finish(span, recording, instruments, responseHook, req, method, start, undefined, err);
          throw err;
        },
      );
    };
  const attempt = (next: Handler): Handler =>
    (req: MeshRequest): Promise<MeshResponse> => {
      const parent = logicalSpans.get(req);
      if (parent === undefined) return next(req);
      const method = normalizeMethod(req.method);
      const parentCtx = trace.setSpan(context.active(), parent);
      const span = tracer.startSpan(method === HTTP_REQUEST_METHOD_VALUE_OTHER ? 'HTTP' : method, ATTEMPT_SPAN_OPTIONS, parentCtx);
      if (!span.isRecording()) {
        propagation.inject(parentCtx, req.headers);
        return next(req);
      }
      setRequestAttributes(span, req, method);
      if (req.attempt > 0) span.setAttribute(ATTR_HTTP_REQUEST_RESEND_COUNT, req.attempt);
      const endpoint = req.endpoint;
      if (endpoint !== undefined) {
        span.setAttribute(ATTR_NETWORK_PEER_ADDRESS, endpoint.address);
        span.setAttribute(ATTR_NETWORK_PEER_PORT, endpoint.port);
      }
      const ctx = trace.setSpan(parentCtx, span);
      propagation.inject(ctx, req.headers);
      let pending: Promise<MeshResponse>;
      try {
        pending = context.with(ctx, next, undefined, req);
      } catch (err) {
        pending = Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      return pending.then(
        (res) => {
          finishAttempt(span, res, undefined);
          return res;
        },
        (err: unknown) => {
          finishAttempt(span, undefined, err);
          throw err;
        },
      );
    };
  return { layer, attempt };
}

/** Ends an attempt's CLIENT span when its response head arrives (or it fails). */
function finishAttempt(span: Span, res: MeshResponse | undefined, err: unknown): void {
  if (res !== undefined) {
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.statusCode);
    if (res.statusCode >= 400) {
      span.setAttribute(ATTR_ERROR_TYPE, String(res.statusCode));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
  } else {
    span.setAttribute(ATTR_ERROR_TYPE, errorTypeOf(err));
    if (err instanceof Error) span.recordException(err);
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  }
  span.end();
}

interface Instruments {
  duration: Histogram;
  attempts: Counter;
  retries: Counter;
}

function finish(
  span: Span,
  recording: boolean,
  instruments: Instruments | undefined,
  responseHook: TelemetryLayerDeps['responseHook'],
  req: MeshRequest,
  method: string,
  start: number,
  res: MeshResponse | undefined,
  err: unknown,
): void {
  const seconds = (performance.now() - start) / 1000;
  const failed = res === undefined;
  const status = res?.statusCode;
  const attempts = res !== undefined ? res.attempts : attemptsOf(err, req);
  let errorType: string | undefined;
  if (failed) errorType = errorTypeOf(err);
  else if (status !== undefined && status >= 400) errorType = String(status);

  if (recording) {
    span.setAttribute(ATTR_INMESH_ATTEMPTS, attempts);
    const endpoint = res !== undefined ? res.endpoint : endpointOf(err, req);
    if (endpoint !== undefined) span.setAttribute(ATTR_INMESH_ENDPOINT, endpoint);
    if (status !== undefined) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
    if (errorType !== undefined) {
      span.setAttribute(ATTR_ERROR_TYPE, errorType);
      if (failed) {
        if (err instanceof Error) span.recordException(err);
        span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      } else {
        // HTTP conventions: a 4xx/5xx answer is an error for a CLIENT span; no description.
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
    }
    safeExecute('responseHook', responseHook, span, res, err);
    span.end();
  }

  if (instruments !== undefined) {
    // The semconv attribute set of the HTTP client duration metric, nothing
    // more: the SDK hashes the attributes on every record (sorted keys, JSON),
    // so each extra key costs on every call. server.address is the service host.
    const attrs: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: method,
      [ATTR_SERVER_ADDRESS]: hostnameOf(req.host, req.service),
    };
    if (status !== undefined) attrs[ATTR_HTTP_RESPONSE_STATUS_CODE] = status;
    if (errorType !== undefined) attrs[ATTR_ERROR_TYPE] = errorType;
    instruments.duration.record(seconds, attrs);
    instruments.attempts.add(attempts, attrs);
    if (attempts > 1) instruments.retries.add(attempts - 1, attrs);
  }
}

function setRequestAttributes(span: Span, req: MeshRequest, method: string): void {
  const authority = stripUserinfo(req.host);
  span.setAttribute(ATTR_HTTP_REQUEST_METHOD, method);
  if (method === HTTP_REQUEST_METHOD_VALUE_OTHER) span.setAttribute(ATTR_HTTP_REQUEST_METHOD_ORIGINAL, req.method);
  span.setAttribute(ATTR_SERVER_ADDRESS, hostnameOf(authority, req.service));
  const port = portOf(authority);
  if (port !== undefined) span.setAttribute(ATTR_SERVER_PORT, port);
  span.setAttribute(ATTR_URL_FULL, `${req.protocol}//${authority}${redactQuery(req.path)}`);
  span.setAttribute(ATTR_PEER_SERVICE, req.service);
  span.setAttribute(ATTR_INMESH_SERVICE, req.service);
}

/** `GET` for known methods (any case), `_OTHER` for the rest (HTTP conventions). */
export function normalizeMethod(method: string): string {
  if (KNOWN_HTTP_METHODS.has(method)) return method;
  const upper = method.toUpperCase();
  return KNOWN_HTTP_METHODS.has(upper) ? upper : HTTP_REQUEST_METHOD_VALUE_OTHER;
}

/** Drops `user:password@` from an authority: credentials never reach telemetry. */
export function stripUserinfo(authority: string): string {
  const at = authority.lastIndexOf('@');
  return at === -1 ? authority : authority.slice(at + 1);
}

/** The host part of an authority (`[::1]:80` → `::1`, `orders:8080` → `orders`). */
export function hostnameOf(authority: string, fallback: string): string {
  const host = stripUserinfo(authority);
  if (host === '') return fallback;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? host : host.slice(1, end);
  }
  const colon = host.indexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}

function portOf(authority: string): number | undefined {
  const colon = authority.lastIndexOf(':');
  if (colon === -1 || authority.indexOf(']', colon) !== -1) return undefined;
  const port = Number(authority.slice(colon + 1));
  return Number.isInteger(port) && port > 0 ? port : undefined;
}

// Query keys whose values the HTTP conventions say to redact in `url.full`.
const SENSITIVE_QUERY = /([?&])(AWSAccessKeyId|Signature|sig|X-Goog-Signature)=[^&#]*/g;

export function redactQuery(path: string): string {
  return path.includes('?') ? path.replace(SENSITIVE_QUERY, '$1$2=REDACTED') : path;
}

/** `error.type`: the error's stable code, else its class name, else `_OTHER`. */
export function errorTypeOf(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code !== '') return code;
    if (err instanceof Error && err.name !== '' && err.name !== 'Error') return err.name;
    const ctor = (err as { constructor?: { name?: unknown } }).constructor?.name;
    if (typeof ctor === 'string' && ctor !== '' && ctor !== 'Error' && ctor !== 'Object') return ctor;
  }
  return ERROR_TYPE_VALUE_OTHER;
}

interface AttemptLike {
  endpoint?: unknown;
}

function attemptRecords(err: unknown): readonly AttemptLike[] | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const attempts = (err as { attempts?: unknown }).attempts;
  return Array.isArray(attempts) ? (attempts as AttemptLike[]) : undefined;
}

function attemptsOf(err: unknown, req: MeshRequest): number {
  return attemptRecords(err)?.length ?? req.attempt + 1;
}

/** The endpoint of the last attempt: from the error's attempt records, else the last pick. */
function endpointOf(err: unknown, req: MeshRequest): string | undefined {
  const last = attemptRecords(err)?.at(-1);
  if (typeof last?.endpoint === 'string') return last.endpoint;
  const picked = req.endpoint;
  return picked === undefined ? undefined : `${picked.address}:${picked.port}`;
}
