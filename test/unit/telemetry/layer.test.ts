import { DiagLogLevel, SpanKind, SpanStatusCode, context, diag, trace } from '@opentelemetry/api';
import type { DiagLogger } from '@opentelemetry/api';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { UpstreamError } from '../../../src/errors.ts';
import type { Handler, MeshRequest, MeshResponse } from '../../../src/core/types.ts';
import { createTelemetry } from '../../../src/telemetry/layer.ts';
import { HTTP_DURATION_BUCKETS } from '../../../src/telemetry/semconv.ts';
import { fakeRequest, fakeResponse } from './fixtures.ts';
import { isHistogram, isSum, registerOtel } from './otel-harness.ts';
import type { OtelHarness } from './otel-harness.ts';

let otel: OtelHarness;
beforeAll(() => {
  otel = registerOtel();
});
afterAll(async () => {
  await otel.shutdown();
});
afterEach(() => {
  otel.reset();
  diag.disable();
});

function layered(next: Handler, deps: Parameters<typeof createTelemetry>[0] = { enabled: true }): Handler {
  const layer = createTelemetry(deps)?.layer;
  if (layer === undefined) throw new Error('layer expected');
  return layer(next);
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/;

describe("createTelemetry", () => {
  it('returns undefined when disabled, so the chain does not contain it', () => {
    expect(createTelemetry({ enabled: false })).toBeUndefined();
  });

  it('makes one INTERNAL span per logical call, named after the method and service, with semconv attributes', async () => {
    const handler = layered(() => Promise.resolve(fakeResponse({ statusCode: 200, attempts: 2 })));
    const res = await handler(fakeRequest({ host: 'orders:8080', path: '/api/items?x=1' }));
    expect(res.statusCode).toBe(200);
    const spans = await otel.spans();
    expect(spans).toHaveLength(1);
    const span = spans[0]!;
    expect(span.name).toBe('GET orders');
    expect(span.kind).toBe(SpanKind.INTERNAL);
    expect(span.instrumentationScope.name).toBe('inmesh');
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(span.attributes).toEqual({
      'http.request.method': 'GET',
      'server.address': 'orders',
      'server.port': 8080,
      'url.full': 'http://orders:8080/api/items?x=1',
      'peer.service': 'orders',
      'inmesh.service': 'orders',
      'inmesh.attempts': 2,
      'inmesh.endpoint': '127.0.0.1:8081',
      'http.response.status_code': 200,
    });
  });

  it('injects W3C trace context for its own span into the outbound headers', async () => {
    let seen: Record<string, string | string[]> = {};
    const handler = layered((req) => {
      seen = { ...req.headers };
      return Promise.resolve(fakeResponse());
    });
    await handler(fakeRequest({ headers: { 'x-user': 'a' } }));
    const span = (await otel.spans())[0]!;
    const m = TRACEPARENT.exec(String(seen.traceparent));
    expect(m?.[1]).toBe(span.spanContext().traceId);
    expect(m?.[2]).toBe(span.spanContext().spanId);
    expect(seen['x-user']).toBe('a');
  });

  it('continues the active trace (e.g. from an inbound request) and parents physical-attempt spans', async () => {
    const tracer = trace.getTracer('test');
    const parent = tracer.startSpan('inbound', { kind: SpanKind.SERVER });
    let traceparent = '';
    const handler = layered((req) => {
      traceparent = String(req.headers.traceparent);
      // What undici's instrumentation would do for a physical attempt:
      tracer.startSpan('attempt').end();
      return Promise.resolve(fakeResponse());
    });
    await context.with(trace.setSpan(context.active(), parent), () => handler(fakeRequest()));
    parent.end();
    const spans = await otel.spans();
    const logical = spans.find((s) => s.name === 'GET orders')!;
    const attempt = spans.find((s) => s.name === 'attempt')!;
    expect(logical.spanContext().traceId).toBe(parent.spanContext().traceId);
    expect(logical.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(attempt.parentSpanContext?.spanId).toBe(logical.spanContext().spanId);
    expect(TRACEPARENT.exec(traceparent)?.[1]).toBe(parent.spanContext().traceId);
  });

  it('marks a failed call as an error with error.type = the error code, attempts and last endpoint', async () => {
    const err = new UpstreamError('orders', [
      { endpoint: '127.0.0.1:1', error: 'ECONNREFUSED' },
      { endpoint: '127.0.0.1:2', status: 503 },
    ]);
    const handler = layered(() => Promise.reject(err));
    await expect(handler(fakeRequest())).rejects.toBe(err);
    const span = (await otel.spans())[0]!;
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.status.message).toBe(err.message);
    expect(span.attributes['error.type']).toBe('INMESH_ERR_UPSTREAM');
    expect(span.attributes['inmesh.attempts']).toBe(2);
    expect(span.attributes['inmesh.endpoint']).toBe('127.0.0.1:2');
    expect(span.attributes['http.response.status_code']).toBeUndefined();
    expect(span.events.map((e) => e.name)).toEqual(['exception']);
  });

  it('uses the class name, then _OTHER, for errors without a code; counts attempts from the request', async () => {
    class BoomError extends Error {
      override name = 'BoomError';
    }
    const handler = layered((req) => {
      req.attempt = 2;
      req.endpoint = { id: 'e', address: '10.0.0.7', port: 81, tags: [], meta: {}, weight: 1 };
      return Promise.reject(new BoomError('boom'));
    });
    await expect(handler(fakeRequest())).rejects.toThrow('boom');
    const other = layered(() => Promise.reject(new Error('plain')));
    await expect(other(fakeRequest())).rejects.toThrow('plain');
    const [boom, plain] = await otel.spans();
    expect(boom!.attributes['error.type']).toBe('BoomError');
    expect(boom!.attributes['inmesh.attempts']).toBe(3);
    expect(boom!.attributes['inmesh.endpoint']).toBe('10.0.0.7:81');
    expect(plain!.attributes['error.type']).toBe('_OTHER');
  });

  it('ends the span when the next handler throws synchronously', async () => {
    const handler = layered(() => {
      throw new TypeError('sync');
    });
    await expect(handler(fakeRequest())).rejects.toThrow('sync');
    const span = (await otel.spans())[0]!;
    expect(span.attributes['error.type']).toBe('TypeError');
  });

  it('treats a 4xx/5xx answer as an error status without a description (HTTP client conventions)', async () => {
    const handler = layered(() => Promise.resolve(fakeResponse({ statusCode: 503 })));
    await handler(fakeRequest());
    const span = (await otel.spans())[0]!;
    expect(span.status).toEqual({ code: SpanStatusCode.ERROR });
    expect(span.attributes['error.type']).toBe('503');
    expect(span.attributes['http.response.status_code']).toBe(503);
  });

  it('reports unknown methods as _OTHER with the original, and names the span HTTP', async () => {
    const handler = layered(() => Promise.resolve(fakeResponse()));
    await handler(fakeRequest({ method: 'PURGE' }));
    await handler(fakeRequest({ method: 'post' }));
    const [purge, post] = await otel.spans();
    expect(purge!.name).toBe('HTTP orders');
    expect(purge!.attributes['http.request.method']).toBe('_OTHER');
    expect(purge!.attributes['http.request.method_original']).toBe('PURGE');
    expect(post!.name).toBe('POST orders');
  });

  it('the attempt hook makes one CLIENT span per physical attempt under the logical span, resend_count from the second', async () => {
    const telemetry = createTelemetry({ enabled: true })!;
    const seen: string[] = [];
    const transport = telemetry.attempt((req) => {
      seen.push(String(req.headers.traceparent));
      return Promise.resolve(fakeResponse({ statusCode: req.attempt === 0 ? 503 : 200, attempts: req.attempt + 1 }));
    });
    // A stand-in for the retry layer: the same request object, attempt counted up.
    const handler = telemetry.layer(async (req) => {
      const first = await transport(req);
      if (first.statusCode !== 503) return first;
      req.attempt++;
      req.endpoint = { address: '127.0.0.1', port: 8082 } as NonNullable<typeof req.endpoint>;
      return transport(req);
    });
    await handler(fakeRequest({ endpoint: { address: '127.0.0.1', port: 8081 } as MeshRequest['endpoint'] }));
    const spans = await otel.spans();
    const logical = spans.find((s) => s.kind === SpanKind.INTERNAL)!;
    const attempts = spans.filter((s) => s.kind === SpanKind.CLIENT);
    expect(logical.attributes['inmesh.attempts']).toBe(2);
    expect(attempts).toHaveLength(2);
    const [a1, a2] = attempts.sort((x, y) => Number(x.attributes['network.peer.port']) - Number(y.attributes['network.peer.port']));
    for (const a of [a1!, a2!]) {
      expect(a.name).toBe('GET');
      expect(a.parentSpanContext?.spanId).toBe(logical.spanContext().spanId);
      expect(a.spanContext().traceId).toBe(logical.spanContext().traceId);
    }
    expect(a1!.attributes['http.request.resend_count']).toBeUndefined();
    expect(a1!.attributes['http.response.status_code']).toBe(503);
    expect(a1!.status.code).toBe(SpanStatusCode.ERROR);
    expect(a2!.attributes['http.request.resend_count']).toBe(1);
    expect(a2!.attributes['http.response.status_code']).toBe(200);
    expect(a2!.attributes['network.peer.address']).toBe('127.0.0.1');
    // Each attempt carries its own span as the parent of what the upstream records.
    expect(TRACEPARENT.exec(seen[0]!)?.[2]).toBe(a1!.spanContext().spanId);
    expect(TRACEPARENT.exec(seen[1]!)?.[2]).toBe(a2!.spanContext().spanId);
  });

  it('the attempt hook records a failed attempt with error.type and passes the error on', async () => {
    const telemetry = createTelemetry({ enabled: true })!;
    const err = Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
    const handler = telemetry.layer(telemetry.attempt(() => Promise.reject(err)));
    await expect(handler(fakeRequest())).rejects.toBe(err);
    const attempt = (await otel.spans()).find((s) => s.kind === SpanKind.CLIENT)!;
    expect(attempt.attributes['error.type']).toBe('ECONNREFUSED');
    expect(attempt.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('keeps credentials and signed query values out of url.full', async () => {
    const handler = layered(() => Promise.resolve(fakeResponse()));
    await handler(fakeRequest({ host: 'user:secret@orders', path: '/f?a=1&sig=abc&X-Goog-Signature=zz#frag' }));
    const span = (await otel.spans())[0]!;
    expect(span.attributes['url.full']).toBe('http://orders/f?a=1&sig=REDACTED&X-Goog-Signature=REDACTED#frag');
    expect(span.attributes['server.address']).toBe('orders');
    expect(JSON.stringify(span.attributes)).not.toContain('secret');
  });

  it('records http.client.request.duration in seconds with semconv buckets, and the attempts counter', async () => {
    const handler = layered(async () => {
      await new Promise((r) => setTimeout(r, 20));
      return fakeResponse({ attempts: 3 });
    });
    const req = (): ReturnType<typeof fakeRequest> => fakeRequest({ service: 'metered', host: 'metered' });
    await handler(req());
    await handler(req());
    const duration = await otel.metric('http.client.request.duration');
    expect(isHistogram(duration)).toBe(true);
    if (!isHistogram(duration)) return;
    expect(duration.descriptor.unit).toBe('s');
    const point = duration.dataPoints.find((p) => p.attributes['server.address'] === 'metered')!;
    expect(point.value.count).toBe(2);
    expect(point.value.min).toBeGreaterThanOrEqual(0.015);
    expect(point.value.max).toBeLessThan(5);
    expect(point.value.buckets.boundaries).toEqual(HTTP_DURATION_BUCKETS);
    expect(point.attributes).toEqual({
      'http.request.method': 'GET',
      'server.address': 'metered',
      'http.response.status_code': 200,
    });
    const attempts = await otel.metric('inmesh.client.attempts');
    expect(isSum(attempts)).toBe(true);
    if (!isSum(attempts)) return;
    expect(attempts.dataPoints.find((p) => p.attributes['server.address'] === 'metered')?.value).toBe(6);
  });

  it('records error.type on the duration metric of a failed call', async () => {
    const handler = layered(() => Promise.reject(Object.assign(new Error('x'), { code: 'ECONNRESET' })));
    await expect(handler(fakeRequest({ service: 'failing', host: 'failing' }))).rejects.toThrow('x');
    const duration = await otel.metric('http.client.request.duration');
    if (!isHistogram(duration)) throw new Error('histogram expected');
    const point = duration.dataPoints.find((p) => p.attributes['server.address'] === 'failing');
    expect(point?.attributes['error.type']).toBe('ECONNRESET');
  });

  it('a throwing or rejecting user hook is logged and does not break the call', async () => {
    const logger: DiagLogger = { error: vi.fn(), warn: vi.fn(), info: vi.fn(), debug: vi.fn(), verbose: vi.fn() };
    diag.setLogger(logger, DiagLogLevel.ERROR);
    const handler = layered(() => Promise.resolve(fakeResponse()), {
      enabled: true,
      requestHook: () => {
        throw new Error('request hook bug');
      },
      responseHook: () => Promise.reject(new Error('async response hook bug')) as unknown as undefined,
    });
    const res = await handler(fakeRequest());
    expect(res.statusCode).toBe(200);
    await new Promise((r) => setImmediate(r));
    expect(logger.error).toHaveBeenCalledTimes(2);
    expect(await otel.spans()).toHaveLength(1);
  });

  it('hooks can add attributes; the response hook sees the response or the error', async () => {
    const seen: unknown[] = [];
    const deps = {
      enabled: true,
      requestHook: (span: import('@opentelemetry/api').Span, req: { path: string }) => {
        span.setAttribute('app.path', req.path);
      },
      responseHook: (_span: unknown, res: MeshResponse | undefined, err: unknown) => {
        seen.push(res?.statusCode ?? err);
      },
    };
    await layered(() => Promise.resolve(fakeResponse({ statusCode: 201 })), deps)(fakeRequest());
    const boom = new Error('boom');
    await expect(layered(() => Promise.reject(boom), deps)(fakeRequest())).rejects.toBe(boom);
    expect(seen).toEqual([201, boom]);
    expect((await otel.spans())[0]!.attributes['app.path']).toBe('/api/items?x=1');
  });

  it('uses an explicitly given tracer', async () => {
    const startSpan = vi.fn(() => trace.wrapSpanContext({ traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 0 }));
    const handler = layered(() => Promise.resolve(fakeResponse()), {
      enabled: true,
      tracer: { startSpan, startActiveSpan: vi.fn() } as unknown as import('@opentelemetry/api').Tracer,
    });
    await handler(fakeRequest());
    expect(startSpan).toHaveBeenCalledTimes(1);
  });
});
