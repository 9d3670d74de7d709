/**
 * Server-side helpers: an inbound `node:http` request's W3C `traceparent`
 * (or whatever propagator is registered) becomes the active context, so a
 * mesh call made while handling it continues the same trace. `withServerSpan`
 * works on its own, around any node:http request listener; `ServerTelemetry`
 * is what the inbound chain (src/server/) uses: one SERVER span and the server
 * metrics per inbound request, ended when the response closes.
 * Only `@opentelemetry/api` is used: with no SDK registered, they cost an
 * extract and a no-op span per inbound request.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import type { Attributes, Context, Counter, Histogram, Meter, Span, Tracer, UpDownCounter } from '@opentelemetry/api';
import { errorTypeOf, hostnameOf, normalizeMethod, redactQuery } from './layer.ts';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_INMESH_INBOUND_REFUSAL,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_PATH,
  ATTR_URL_QUERY,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
  HTTP_DURATION_BUCKETS,
  HTTP_REQUEST_METHOD_VALUE_OTHER,
  METRIC_HTTP_SERVER_ACTIVE_REQUESTS,
  METRIC_HTTP_SERVER_REQUEST_DURATION,
  METRIC_INMESH_SERVER_REFUSED,
} from './semconv.ts';
import { liveMeter, SCOPE_NAME, VERSION } from './version.ts';

/** Inbound headers as node:http gives them, or any lower-cased header record. */
export type InboundHeaders = IncomingHttpHeaders | Readonly<Record<string, string | readonly string[] | undefined>>;

/**
 * The context carried by inbound headers (W3C `traceparent`/`tracestate` with
 * the default propagator), on top of `base` (the root context by default: an
 * inbound request starts a new local trace tree).
 */
export function extractContext(headers: InboundHeaders, base: Context = ROOT_CONTEXT): Context {
  return propagation.extract(base, headers);
}

export interface ServerSpanOptions {
  /** @default trace.getTracer('inmesh', VERSION) */
  tracer?: Tracer;
  /**
   * The response: the span then ends when it closes, with its status code
   * (a 5xx marks the span as an error). Without it the span ends when `fn` settles.
   */
  res?: ServerResponse;
}

/**
 * Runs `fn` inside a SERVER span whose parent is the context extracted from
 * `req`'s headers; the span is the active span while `fn` runs, so mesh calls
 * made in it carry the same trace id. Errors from `fn` mark the span and are
 * rethrown.
 */
export async function withServerSpan<T>(
  req: IncomingMessage,
  fn: (span: Span) => T | Promise<T>,
  options: ServerSpanOptions = {},
): Promise<T> {
  const tracer = options.tracer ?? trace.getTracer(SCOPE_NAME, VERSION);
  const parent = extractContext(req.headers);
  const rawMethod = req.method ?? 'GET';
  const method = normalizeMethod(rawMethod);
  const span = tracer.startSpan(
    method === HTTP_REQUEST_METHOD_VALUE_OTHER ? 'HTTP' : method,
    { kind: SpanKind.SERVER },
    parent,
  );
  if (span.isRecording()) setServerAttributes(span, req, method, rawMethod);
  const { res } = options;
  const state = { failed: false };
  const ended = res === undefined ? undefined : endWithResponse(span, res, state);
  try {
    return await context.with(trace.setSpan(parent, span), fn, undefined, span);
  } catch (err) {
    state.failed = true;
    span.setAttribute(ATTR_ERROR_TYPE, errorTypeOf(err));
    if (err instanceof Error) span.recordException(err);
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
    throw err;
  } finally {
    if (ended === undefined) span.end();
  }
}

function endWithResponse(span: Span, res: ServerResponse, state: { failed: boolean }): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      const status = res.statusCode;
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
      // An error thrown by fn already set the status (with its message) and error.type.
      if (status >= 500 && !state.failed) {
        span.setAttribute(ATTR_ERROR_TYPE, String(status));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
      resolve();
    };
    if (res.closed) done();
    else res.once('close', done);
  });
}

function setServerAttributes(span: Span, req: IncomingMessage, method: string, rawMethod: string): void {
  span.setAttribute(ATTR_HTTP_REQUEST_METHOD, method);
  if (method === HTTP_REQUEST_METHOD_VALUE_OTHER) span.setAttribute(ATTR_HTTP_REQUEST_METHOD_ORIGINAL, rawMethod);
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  span.setAttribute(ATTR_URL_PATH, q === -1 ? url : url.slice(0, q));
  if (q !== -1) span.setAttribute(ATTR_URL_QUERY, redactQuery(url.slice(q)).slice(1));
  const encrypted = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
  span.setAttribute(ATTR_URL_SCHEME, encrypted ? 'https' : 'http');
  const host = req.headers.host;
  if (host !== undefined) {
    span.setAttribute(ATTR_SERVER_ADDRESS, hostnameOf(host, host));
    const colon = host.lastIndexOf(':');
    const port = colon === -1 || host.includes(']', colon) ? NaN : Number(host.slice(colon + 1));
    if (Number.isInteger(port) && port > 0) span.setAttribute(ATTR_SERVER_PORT, port);
  }
  const peer = req.socket.remoteAddress;
  if (peer !== undefined) span.setAttribute(ATTR_NETWORK_PEER_ADDRESS, peer);
  const ua = req.headers['user-agent'];
  if (ua !== undefined) span.setAttribute(ATTR_USER_AGENT_ORIGINAL, ua);
}

/** How an inbound request ended, as the inbound chain reports it to its telemetry. */
export interface InboundOutcome {
  /** The status sent; undefined when no response was sent (the connection closed first). */
  readonly status: number | undefined;
  /** `http.route` when the framework knows it (a template such as `/orders/:id`, never the raw path). */
  readonly route: string | undefined;
  /** `error.type`: set for refusals, timeouts and aborted requests; a 5xx without one is reported as its status code. */
  readonly errorType: string | undefined;
  /** Why inbound policy answered instead of the app (`inmesh.inbound.refusal`), if it did. */
  readonly refusal: string | undefined;
}

/** One inbound request's span and the start of its duration, from `ServerTelemetry.start()`. */
export interface InboundSpan {
  readonly span: Span;
  /** The context the app runs in: the extracted parent with this span active. */
  readonly context: Context;
  readonly start: number;
  /** Low-cardinality attributes shared by the span and the metrics. */
  readonly method: string;
  readonly scheme: 'http' | 'https';
}

export interface ServerTelemetryDeps {
  /** @default trace.getTracer('inmesh', VERSION) */
  readonly tracer?: Tracer | undefined;
  /** @default metrics.getMeter('inmesh', VERSION) (bound now: meters have no proxy in API 1.x) */
  readonly meter?: Meter | undefined;
}

interface ServerInstruments {
  readonly duration: Histogram;
  readonly active: UpDownCounter;
  readonly refused: Counter;
}

/**
 * The server half of a mesh's telemetry: a SERVER span per inbound request
 * (parent extracted from `traceparent`/`baggage` by the registered
 * propagator), `http.server.request.duration` (s),
 * `http.server.active_requests` and `inmesh.server.refused`. Attributes are
 * the stable HTTP server conventions; no header other than `user-agent` is
 * read into them, so tokens and `authorization` never reach telemetry.
 */
export class ServerTelemetry {
  readonly #tracer: Tracer;
  readonly #instruments: ServerInstruments | undefined;

  constructor(deps: ServerTelemetryDeps = {}) {
    this.#tracer = deps.tracer ?? trace.getTracer(SCOPE_NAME, VERSION);
    const meter = liveMeter(deps.meter);
    this.#instruments =
      meter === undefined
        ? undefined
        : {
            duration: meter.createHistogram(METRIC_HTTP_SERVER_REQUEST_DURATION, {
              description: 'Duration of inbound HTTP requests, refusals by inbound policy included.',
              unit: 's',
              advice: { explicitBucketBoundaries: [...HTTP_DURATION_BUCKETS] },
            }),
            active: meter.createUpDownCounter(METRIC_HTTP_SERVER_ACTIVE_REQUESTS, {
              description: 'Inbound HTTP requests being handled (health probes excluded).',
              unit: '{request}',
            }),
            refused: meter.createCounter(METRIC_INMESH_SERVER_REFUSED, {
              description: 'Inbound requests answered by inbound policy instead of the app, by inmesh.inbound.refusal.',
              unit: '{request}',
            }),
          };
  }

  /** Starts the SERVER span of `req` (and counts it as active). */
  start(req: IncomingMessage): InboundSpan {
    const parent = extractContext(req.headers);
    const rawMethod = req.method ?? 'GET';
    const method = normalizeMethod(rawMethod);
    const span = this.#tracer.startSpan(method === HTTP_REQUEST_METHOD_VALUE_OTHER ? 'HTTP' : method, { kind: SpanKind.SERVER }, parent);
    if (span.isRecording()) setServerAttributes(span, req, method, rawMethod);
    const scheme = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true ? 'https' : 'http';
    this.#instruments?.active.add(1, { [ATTR_HTTP_REQUEST_METHOD]: method, [ATTR_URL_SCHEME]: scheme });
    return { span, context: trace.setSpan(parent, span), start: performance.now(), method, scheme };
  }

  /** Runs `fn` with the request's span active (its context), so the calls it makes continue the trace. */
  run<T>(s: InboundSpan, fn: () => T): T {
    return context.with(s.context, fn);
  }

  /** Ends the span and records the metrics. */
  end(s: InboundSpan, outcome: InboundOutcome): void {
    const { span, method } = s;
    const { status, route, refusal } = outcome;
    const errorType = outcome.errorType ?? (status !== undefined && status >= 500 ? String(status) : undefined);
    if (span.isRecording()) {
      if (status !== undefined) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
      if (route !== undefined) {
        span.setAttribute(ATTR_HTTP_ROUTE, route);
        span.updateName(`${method === HTTP_REQUEST_METHOD_VALUE_OTHER ? 'HTTP' : method} ${route}`);
      }
      if (errorType !== undefined) span.setAttribute(ATTR_ERROR_TYPE, errorType);
      if (refusal !== undefined) span.setAttribute(ATTR_INMESH_INBOUND_REFUSAL, refusal);
      // Server spans: a 4xx is the client's doing, not an error of this server (HTTP conventions).
      if (status === undefined || status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
    const m = this.#instruments;
    if (m === undefined) return;
    const base = { [ATTR_HTTP_REQUEST_METHOD]: method, [ATTR_URL_SCHEME]: s.scheme };
    m.active.add(-1, base);
    const attrs: Attributes = { ...base };
    if (status !== undefined) attrs[ATTR_HTTP_RESPONSE_STATUS_CODE] = status;
    if (route !== undefined) attrs[ATTR_HTTP_ROUTE] = route;
    if (errorType !== undefined) attrs[ATTR_ERROR_TYPE] = errorType;
    m.duration.record((performance.now() - s.start) / 1000, attrs);
    if (refusal !== undefined) m.refused.add(1, { ...attrs, [ATTR_INMESH_INBOUND_REFUSAL]: refusal });
  }
}
