/**
 * Server-side helpers: an inbound `node:http` request's W3C `traceparent`
 * (or whatever propagator is registered) becomes the active context, so a
 * mesh call made while handling it continues the same trace. They work on
 * their own, around any node:http request listener.
 * Only `@opentelemetry/api` is used: with no SDK registered, they cost an
 * extract and a no-op span per inbound request.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import type { Context, Span, Tracer } from '@opentelemetry/api';
import { errorTypeOf, hostnameOf, normalizeMethod, redactQuery } from './layer.ts';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_PATH,
  ATTR_URL_QUERY,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
  HTTP_REQUEST_METHOD_VALUE_OTHER,
} from './semconv.ts';
import { SCOPE_NAME, VERSION } from './version.ts';

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
