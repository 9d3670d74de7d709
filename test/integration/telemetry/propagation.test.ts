// W3C trace context across real node:http hops:
//   test client --traceparent T--> front server (withServerSpan)
//     --> telemetry layer --> transport (undici) --> upstream server
// The upstream must see the same trace id as T, with our CLIENT span as parent.
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import { Pool, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Handler, MeshResponse } from '../../../src/core/types.ts';
import { extractContext, withServerSpan } from '../../../src/telemetry/server.ts';
import { createTelemetry } from '../../../src/telemetry/layer.ts';
import { createMesh } from '../../../src/mesh/mesh.ts';
import { fakeRequest } from '../../unit/telemetry/fixtures.ts';
import { registerOtel } from '../../unit/telemetry/otel-harness.ts';
import type { OtelHarness } from '../../unit/telemetry/otel-harness.ts';

const INBOUND_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const INBOUND_PARENT = '00f067aa0ba902b7';
const INBOUND = `00-${INBOUND_TRACE}-${INBOUND_PARENT}-01`;

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

/**
 * A request handler cannot be awaited: a handler that throws answers 500 with
 * the error, so the awaiting test fails on the status and shows why.
 */
function answerFailure(res: ServerResponse): (err: unknown) => void {
  return (err) => {
    if (res.headersSent) res.destroy(err instanceof Error ? err : new Error(String(err)));
    else res.writeHead(500).end(`handler failed: ${String(err)}`);
  };
}

let otel: OtelHarness;
let upstream: Server;
let front: Server;
let frontPort: number;
let pool: Pool;
const seenByUpstream: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  otel = registerOtel();
  upstream = createServer((req, res) => {
    seenByUpstream.push(req.headers);
    res.writeHead(req.url === '/fail' ? 503 : 200, { 'content-type': 'text/plain' }).end('ok');
  });
  upstream.keepAliveTimeout = 10;
  const upstreamPort = await listen(upstream);
  pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { keepAliveTimeout: 10 });

  // The transport stand-in: a real undici request with the headers the layers left.
  const transport: Handler = async (req) => {
    const { statusCode, headers, body, trailers } = await pool.request({
      path: req.path,
      method: req.method,
      headers: req.headers,
    });
    return { statusCode, headers, body, trailers, endpoint: `127.0.0.1:${upstreamPort}`, attempts: 1 } satisfies MeshResponse;
  };
  // As the chain assembles it: the logical layer outermost, the attempt hook around the transport.
  const telemetry = createTelemetry({ enabled: true })!;
  const call = telemetry.layer(telemetry.attempt(transport));

  front = createServer((req, res) => {
    withServerSpan(
      req,
      async () => {
        const out = await call(fakeRequest({ path: req.url === '/fail' ? '/fail' : '/items', host: 'orders' }));
        const text = await out.body.text();
        res.writeHead(out.statusCode === 200 ? 200 : 502).end(text);
      },
      { res },
    ).catch(answerFailure(res));
  });
  front.keepAliveTimeout = 10;
  frontPort = await listen(front);
});

afterAll(async () => {
  await pool.close();
  await new Promise((r) => front.close(r));
  await new Promise((r) => upstream.close(r));
  await otel.shutdown();
});

describe('trace context across a node:http hop', () => {
  it('an inbound traceparent reaches the outbound call with the same trace id', async () => {
    otel.reset();
    seenByUpstream.length = 0;
    const res = await request(`http://127.0.0.1:${frontPort}/items?q=1`, { headers: { traceparent: INBOUND } });
    expect(res.statusCode).toBe(200);
    await res.body.text();

    const outbound = String(seenByUpstream[0]?.traceparent);
    const [, traceId, parentId] = outbound.split('-');
    expect(traceId).toBe(INBOUND_TRACE);

    // Span tree: remote parent -> SERVER (front) -> INTERNAL (logical mesh call)
    // -> CLIENT (the attempt) -> upstream. The SERVER span ends on 'close', after the answer.
    const spans = await otel.spansWhen((all) => all.some((s) => s.kind === SpanKind.SERVER));
    const server = spans.find((s) => s.kind === SpanKind.SERVER)!;
    const logical = spans.find((s) => s.kind === SpanKind.INTERNAL)!;
    const client = spans.find((s) => s.kind === SpanKind.CLIENT)!;
    expect(server.spanContext().traceId).toBe(INBOUND_TRACE);
    expect(server.parentSpanContext?.spanId).toBe(INBOUND_PARENT);
    expect(server.parentSpanContext?.isRemote).toBe(true);
    expect(logical.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(client.parentSpanContext?.spanId).toBe(logical.spanContext().spanId);
    expect(parentId).toBe(client.spanContext().spanId);

    expect(server.name).toBe('GET');
    expect(server.attributes['http.request.method']).toBe('GET');
    expect(server.attributes['url.path']).toBe('/items');
    expect(server.attributes['url.query']).toBe('q=1');
    expect(server.attributes['url.scheme']).toBe('http');
    expect(server.attributes['server.address']).toBe('127.0.0.1');
    expect(server.attributes['server.port']).toBe(frontPort);
    expect(server.attributes['http.response.status_code']).toBe(200);
    expect(client.attributes['http.response.status_code']).toBe(200);
  });

  it('without an inbound traceparent the call starts a new trace, still propagated', async () => {
    otel.reset();
    seenByUpstream.length = 0;
    const res = await request(`http://127.0.0.1:${frontPort}/items`);
    await res.body.text();
    const spans = await otel.spansWhen((all) => all.some((s) => s.kind === SpanKind.SERVER));
    const server = spans.find((s) => s.kind === SpanKind.SERVER)!;
    expect(server.parentSpanContext).toBeUndefined();
    expect(String(seenByUpstream[0]?.traceparent).split('-')[1]).toBe(server.spanContext().traceId);
  });

  it('an upstream 503 marks the CLIENT span, a 502 answer the SERVER span', async () => {
    otel.reset();
    const res = await request(`http://127.0.0.1:${frontPort}/fail`, { headers: { traceparent: INBOUND } });
    expect(res.statusCode).toBe(502);
    await res.body.text();
    const spans = await otel.spansWhen((all) => all.some((s) => s.kind === SpanKind.SERVER));
    const server = spans.find((s) => s.kind === SpanKind.SERVER)!;
    const client = spans.find((s) => s.kind === SpanKind.CLIENT)!;
    expect(client.status.code).toBe(SpanStatusCode.ERROR);
    expect(client.attributes['error.type']).toBe('503');
    expect(server.status.code).toBe(SpanStatusCode.ERROR);
    expect(server.attributes['http.response.status_code']).toBe(502);
  });
});

describe('withServerSpan / extractContext', () => {
  it('extractContext reads traceparent from node:http headers', () => {
    const ctx = extractContext({ traceparent: INBOUND, host: 'x' });
    const sc = trace.getSpanContext(ctx);
    expect(sc?.traceId).toBe(INBOUND_TRACE);
    expect(sc?.isRemote).toBe(true);
  });

  it('without res, the span ends when fn settles; errors are recorded and rethrown', async () => {
    otel.reset();
    const server = createServer((req, res) => {
      withServerSpan(req, () => {
        throw new RangeError('handler bug');
      }).catch((err: unknown) => {
        res.writeHead(500).end(String(err));
      });
    });
    server.keepAliveTimeout = 10;
    const port = await listen(server);
    try {
      const res = await request(`http://127.0.0.1:${port}/x`, { method: 'DELETE' });
      expect(res.statusCode).toBe(500);
      expect(await res.body.text()).toContain('handler bug');
      const spans = await otel.spans();
      expect(spans).toHaveLength(1);
      expect(spans[0]!.name).toBe('DELETE');
      expect(spans[0]!.status.code).toBe(SpanStatusCode.ERROR);
      expect(spans[0]!.attributes['error.type']).toBe('RangeError');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('the server span is the active span inside fn', async () => {
    const server = createServer((req, res) => {
      withServerSpan(req, (span) => {
        const active = trace.getSpan(context.active());
        const carrier: Record<string, string> = {};
        propagation.inject(context.active(), carrier);
        res.end(JSON.stringify({ same: active === span, traceparent: carrier.traceparent }));
      }).catch(answerFailure(res));
    });
    server.keepAliveTimeout = 10;
    const port = await listen(server);
    try {
      const res = await request(`http://127.0.0.1:${port}/`, { headers: { traceparent: INBOUND } });
      const body = (await res.body.json()) as { same: boolean; traceparent: string };
      expect(body.same).toBe(true);
      expect(body.traceparent.split('-')[1]).toBe(INBOUND_TRACE);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('with the real mesh.request', () => {
  it('inbound traceparent -> SERVER -> mesh INTERNAL -> one CLIENT span per attempt -> upstream, one trace; retries counted', async () => {
    otel.reset();
    // Two endpoints sharing one counter: the first request overall gets a 503
    // (retried by the default policy), the rest 200.
    let hits = 0;
    const seen: IncomingHttpHeaders[] = [];
    const ups = [0, 1].map(() =>
      createServer((req, res) => {
        hits++;
        seen.push(req.headers);
        res.writeHead(hits === 1 ? 503 : 200).end('ok');
      }),
    );
    for (const u of ups) u.keepAliveTimeout = 10;
    const ports = await Promise.all(ups.map(listen));
    const mesh = createMesh({ registry: { static: { orders: ports.map((p) => `127.0.0.1:${p}`) } } });
    const server = createServer((req, res) => {
      withServerSpan(
        req,
        async () => {
          const out = await mesh.request('http://orders/items?sig=secret');
          res.writeHead(out.statusCode).end(await out.body.text());
        },
        { res },
      ).catch(answerFailure(res));
    });
    server.keepAliveTimeout = 10;
    const port = await listen(server);
    try {
      const res = await request(`http://127.0.0.1:${port}/`, { headers: { traceparent: INBOUND } });
      expect(res.statusCode).toBe(200);
      await res.body.text();
      const spans = await otel.spansWhen((all) => all.some((s) => s.kind === SpanKind.SERVER));
      const serverSpan = spans.find((s) => s.kind === SpanKind.SERVER)!;
      const client = spans.find((s) => s.kind === SpanKind.INTERNAL)!;
      expect(client.spanContext().traceId).toBe(INBOUND_TRACE);
      expect(client.parentSpanContext?.spanId).toBe(serverSpan.spanContext().spanId);
      // The attempts: CLIENT spans under the logical one, in the order they went out.
      const attempts = spans
        .filter((s) => s.kind === SpanKind.CLIENT)
        .sort((a, b) => Number(a.attributes['http.request.resend_count'] ?? 0) - Number(b.attributes['http.request.resend_count'] ?? 0));
      expect(attempts).toHaveLength(2);
      expect(attempts.map((a) => a.attributes['http.request.resend_count'])).toEqual([undefined, 1]);
      expect(attempts.map((a) => a.attributes['http.response.status_code'])).toEqual([503, 200]);
      expect(seen).toHaveLength(2);
      seen.forEach((h, i) => {
        const [, traceId, parentId] = String(h.traceparent).split('-');
        expect(traceId).toBe(INBOUND_TRACE);
        expect(parentId).toBe(attempts[i]!.spanContext().spanId);
        expect(attempts[i]!.parentSpanContext?.spanId).toBe(client.spanContext().spanId);
      });
      expect(client.name).toBe('GET orders');
      expect(client.attributes['peer.service']).toBe('orders');
      expect(client.attributes['url.full']).toBe('http://orders/items?sig=REDACTED');
      expect(client.attributes['inmesh.attempts']).toBe(2);
      expect(client.attributes['http.response.status_code']).toBe(200);
      expect(ports.map((p) => `127.0.0.1:${p}`)).toContain(client.attributes['inmesh.endpoint']);
      expect(client.status.code).toBe(SpanStatusCode.UNSET);
    } finally {
      await mesh.close();
      await new Promise((r) => server.close(r));
      await Promise.all(ups.map((u) => new Promise((r) => u.close(r))));
    }
  });
});
