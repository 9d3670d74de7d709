// SERVER spans and server metrics of the inbound chain, through the in-memory OTel SDK.
import { createServer } from 'node:http';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createMesh, type Mesh } from '../../../src/mesh/mesh.ts';
import type { PolicyDocument } from '../../../src/policy/index.ts';
import { inmeshExpress } from '../../../src/server/express.ts';
import { inmeshFastify } from '../../../src/server/fastify.ts';
import { isHistogram, isSum, registerOtel, type OtelHarness } from '../../unit/telemetry/otel-harness.ts';
import { Holds, client, close, listen } from './helpers.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';
const TOKEN = 'Bearer s3cr3t-t0ken';

let otel: OtelHarness;
beforeAll(() => {
  otel = registerOtel();
});
afterAll(async () => {
  await otel.shutdown();
});

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  otel.reset();
});

function meshWith(inbound: PolicyDocument['inbound']): Mesh {
  const mesh = createMesh({ policy: { apiVersion: 'inmesh/v1', inbound }, env: {} });
  cleanup.push(() => mesh.close());
  return mesh;
}

function http() {
  const c = client();
  cleanup.push(() => c.close());
  return c;
}

const serverSpans = (spans: ReadableSpan[]) => spans.filter((s) => s.kind === SpanKind.SERVER);

function noSecrets(span: ReadableSpan): void {
  for (const [key, value] of Object.entries(span.attributes)) {
    expect(key).not.toMatch(/authorization|cookie|token/i);
    expect(String(value)).not.toContain('s3cr3t');
  }
}

describe('node:http', () => {
  it('one SERVER span per request, child of the inbound traceparent, active while the app runs; probes are not traced', async () => {
    const mesh = meshWith({});
    let activeInApp: string | undefined;
    const server = createServer(
      mesh.server((req, res) => {
        activeInApp = trace.getActiveSpan()?.spanContext().spanId;
        res.writeHead(req.url === '/boom' ? 500 : 200).end('ok');
      }),
    );
    const base = await listen(server);
    cleanup.push(() => close(server));
    const c = http();
    await c.get(`${base}/items?id=1`, { traceparent: `00-${TRACE}-${PARENT}-01`, authorization: TOKEN, cookie: 'sid=s3cr3t' });
    await c.get(`${base}/boom`);
    await c.get(`${base}/livez`);
    const spans = serverSpans(await otel.spansWhen((s) => serverSpans(s).length >= 2));
    expect(spans).toHaveLength(2); // /livez made none
    const [ok, boom] = spans as [ReadableSpan, ReadableSpan];
    expect(ok.name).toBe('GET');
    expect(ok.spanContext().traceId).toBe(TRACE);
    expect(ok.parentSpanContext?.spanId).toBe(PARENT);
    expect(activeInApp).toBeDefined();
    expect(ok.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/items',
      'url.query': 'id=1',
      'url.scheme': 'http',
      'http.response.status_code': 200,
    });
    expect(ok.attributes['http.route']).toBeUndefined();
    expect(ok.attributes['error.type']).toBeUndefined();
    expect(ok.status.code).toBe(SpanStatusCode.UNSET);
    noSecrets(ok);
    expect(boom.attributes['error.type']).toBe('500');
    expect(boom.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('shed and rate-limited requests are visible as such on spans and metrics', async () => {
    const holds = new Holds();
    const mesh = meshWith({ maxConcurrent: 1, rateLimit: { requestsPerSecond: 0.1, burst: 2 } });
    const server = createServer(
      mesh.server(async (_req, res) => {
        await holds.hold();
        res.end('ok');
      }),
    );
    const base = await listen(server);
    cleanup.push(() => close(server));
    const c = http();
    const held = c.get(`${base}/a`);
    await holds.arrived(1);
    expect((await c.get(`${base}/b`)).status).toBe(503); // token 2, no slot
    expect((await c.get(`${base}/c`)).status).toBe(429); // no token
    holds.release();
    await held;
    const spans = serverSpans(await otel.spansWhen((s) => serverSpans(s).length >= 3));
    const byPath = Object.fromEntries(spans.map((s) => [s.attributes['url.path'], s]));
    expect(byPath['/b']?.attributes).toMatchObject({
      'http.response.status_code': 503,
      'error.type': 'INMESH_ERR_LOAD_SHED',
      'inmesh.inbound.refusal': 'load_shed',
    });
    expect(byPath['/b']?.status.code).toBe(SpanStatusCode.ERROR);
    expect(byPath['/c']?.attributes).toMatchObject({
      'http.response.status_code': 429,
      'error.type': 'INMESH_ERR_RATE_LIMITED',
      'inmesh.inbound.refusal': 'rate_limited',
    });
    expect(byPath['/c']?.status.code).toBe(SpanStatusCode.UNSET); // a 4xx is not the server's error
    expect(byPath['/a']?.attributes['inmesh.inbound.refusal']).toBeUndefined();

    const refused = await otel.metric('inmesh.server.refused');
    expect(isSum(refused)).toBe(true);
    const counts = Object.fromEntries(
      (isSum(refused) ? refused.dataPoints : []).map((p) => [p.attributes['inmesh.inbound.refusal'], p.value]),
    );
    expect(counts).toEqual({ load_shed: 1, rate_limited: 1 });
    const duration = await otel.metric('http.server.request.duration');
    expect(isHistogram(duration)).toBe(true);
    expect(duration?.descriptor.unit).toBe('s');
    const statuses = (isHistogram(duration) ? duration.dataPoints : []).map((p) => p.attributes['http.response.status_code']).sort();
    expect(statuses).toEqual(expect.arrayContaining([429, 503])); // metrics add up across this file's tests
    const active = await otel.metric('http.server.active_requests');
    expect(isSum(active) ? active.dataPoints.reduce((n, p) => n + p.value, 0) : NaN).toBe(0);
  });

  it('a timed-out request: 504 with error.type INMESH_ERR_TIMEOUT and inmesh.inbound.refusal timeout', async () => {
    const mesh = meshWith({ timeouts: { request: '50ms' } });
    const server = createServer(mesh.server(() => undefined));
    const base = await listen(server);
    cleanup.push(() => close(server));
    expect((await http().get(`${base}/slow`)).status).toBe(504);
    const [span] = serverSpans(await otel.spansWhen((s) => serverSpans(s).length >= 1));
    expect(span?.attributes).toMatchObject({ 'http.response.status_code': 504, 'error.type': 'INMESH_ERR_TIMEOUT', 'inmesh.inbound.refusal': 'timeout' });
  });
});

describe('http.route where the framework knows it', () => {
  it('mesh.server({ route }): a route function that throws gives no route, and breaks nothing', async () => {
    const mesh = meshWith({});
    const server = createServer(
      mesh.server((_req, res) => res.end('ok'), {
        route: (req) => {
          if (req.url === '/bad') throw new Error('no route');
          return '/items/{id}';
        },
      }),
    );
    const base = await listen(server);
    cleanup.push(() => close(server));
    const c = http();
    expect((await c.get(`${base}/bad`)).status).toBe(200);
    expect((await c.get(`${base}/items/1`)).status).toBe(200);
    const spans = serverSpans(await otel.spansWhen((s) => serverSpans(s).length >= 2));
    expect(spans.map((s) => s.attributes['http.route'])).toEqual([undefined, '/items/{id}']);
  });


  it('express: the matched route template names the span and labels the duration metric', async () => {
    const mesh = meshWith({});
    const app = express();
    app.use(inmeshExpress(mesh));
    const router = express.Router();
    router.get('/orders/:id', (_req, res) => res.json({ ok: true }));
    app.use('/api', router);
    const server = createServer(app);
    const base = await listen(server);
    cleanup.push(() => close(server));
    await http().get(`${base}/api/orders/42`, { authorization: TOKEN });
    const [span] = serverSpans(await otel.spansWhen((s) => serverSpans(s).length >= 1));
    expect(span?.name).toBe('GET /api/orders/:id');
    expect(span?.attributes['http.route']).toBe('/api/orders/:id');
    expect(span?.attributes['url.path']).toBe('/api/orders/42');
    noSecrets(span!);
    const duration = await otel.metric('http.server.request.duration');
    const routes = (isHistogram(duration) ? duration.dataPoints : []).map((p) => p.attributes['http.route']);
    expect(routes).toContain('/api/orders/:id');
  });

  it('fastify: the route URL names the span; the handler runs with the SERVER span active', async () => {
    const mesh = meshWith({});
    const app = Fastify();
    await app.register(inmeshFastify, { mesh });
    let activeInHandler: string | undefined;
    app.get('/orders/:id', async () => {
      activeInHandler = trace.getActiveSpan()?.spanContext().spanId;
      return { ok: true };
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    cleanup.push(() => app.close());
    const addr = app.server.address();
    await http().get(`http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}/orders/42`, {
      traceparent: `00-${TRACE}-${PARENT}-01`,
    });
    const [span] = serverSpans(await otel.spansWhen((s) => serverSpans(s).length >= 1));
    expect(span?.name).toBe('GET /orders/:id');
    expect(span?.attributes['http.route']).toBe('/orders/:id');
    expect(span?.spanContext().traceId).toBe(TRACE);
    expect(activeInHandler).toBe(span?.spanContext().spanId);
  });
});
