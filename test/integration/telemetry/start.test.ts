// startTelemetry(): the NodeSDK helper of the `inmesh/telemetry` entry point.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { MetricReader } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTelemetry } from '../../../src/telemetry/layer.ts';
import { loadConfig } from '../../../src/config/index.ts';
import { startTelemetry, type StartTelemetryOptions } from '../../../src/telemetry/index.ts';
import { fakeRequest, fakeResponse } from '../../unit/telemetry/fixtures.ts';

class PullReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

afterEach(() => {
  vi.unstubAllEnvs();
  trace.disable();
  metrics.disable();
  propagation.disable();
  context.disable();
});

interface Receiver {
  url: string;
  posts: { method: string | undefined; url: string | undefined; contentType: string | undefined; body: Buffer }[];
  close(): Promise<void>;
}

/** A loopback OTLP/HTTP receiver that records every request and answers 200. */
async function startReceiver(): Promise<Receiver> {
  const posts: Receiver['posts'] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push({ method: req.method, url: req.url, contentType: req.headers['content-type'], body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    posts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Starts the SDK with an in-memory exporter, ends one span and returns its resource's service.name. */
async function serviceNameOf(options: StartTelemetryOptions, detectResources = false): Promise<unknown> {
  const { exporter, processor } = sdkParts();
  const handle = startTelemetry({ ...options, spanProcessors: [processor], metricReaders: [], sdk: { autoDetectResources: detectResources } });
  try {
    trace.getTracer('t').startSpan('s').end();
    await processor.forceFlush();
    const [span] = exporter.getFinishedSpans();
    await span?.resource.waitForAsyncAttributes?.();
    return span?.resource.attributes['service.name'];
  } finally {
    await handle.shutdown();
  }
}

function sdkParts(): { exporter: InMemorySpanExporter; processor: SimpleSpanProcessor; reader: PullReader } {
  const exporter = new InMemorySpanExporter();
  return { exporter, processor: new SimpleSpanProcessor({ exporter }), reader: new PullReader() };
}

describe('startTelemetry', () => {
  it('registers a NodeSDK: the mesh layer then records spans and metrics, with the service name', async () => {
    vi.stubEnv('OTEL_LOGS_EXPORTER', 'none');
    const { exporter, processor, reader } = sdkParts();
    const handle = startTelemetry({
      serviceName: 'checkout',
      spanProcessors: [processor],
      metricReaders: [reader],
      sdk: { autoDetectResources: false },
    });
    expect(handle.started).toBe(true);
    const layer = createTelemetry({ enabled: true })!.layer;
    let traceparent = '';
    await layer((req) => {
      traceparent = String(req.headers.traceparent);
      return Promise.resolve(fakeResponse());
    })(fakeRequest());
    await processor.forceFlush();
    const [span] = exporter.getFinishedSpans();
    expect(span?.name).toBe('GET orders');
    expect(span?.resource.attributes['service.name']).toBe('checkout');
    // The default propagator (W3C trace context + baggage) is installed.
    expect(traceparent.split('-')[2]).toBe(span?.spanContext().spanId);
    const { resourceMetrics } = await reader.collect();
    const names = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name));
    expect(names).toContain('http.client.request.duration');
    await handle.shutdown();
    await handle.shutdown(); // idempotent
  });

  it('takes the service name from OTEL_SERVICE_NAME', async () => {
    vi.stubEnv('OTEL_LOGS_EXPORTER', 'none');
    vi.stubEnv('OTEL_SERVICE_NAME', 'from-env');
    const { exporter, processor } = sdkParts();
    const handle = startTelemetry({ spanProcessors: [processor], metricReaders: [], sdk: { autoDetectResources: false } });
    trace.getTracer('t').startSpan('s').end();
    await processor.forceFlush();
    expect(exporter.getFinishedSpans()[0]?.resource.attributes['service.name']).toBe('from-env');
    await handle.shutdown();
  });

  it('falls back to INMESH_SERVICE_NAME when neither the option nor OTEL_SERVICE_NAME is set', async () => {
    vi.stubEnv('OTEL_LOGS_EXPORTER', 'none');
    vi.stubEnv('OTEL_SERVICE_NAME', undefined);
    vi.stubEnv('INMESH_SERVICE_NAME', 'from-inmesh');
    expect(await serviceNameOf({})).toBe('from-inmesh');
  });

  // [option, OTEL_SERVICE_NAME, INMESH_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, service.name]
  const ORDER: [string | undefined, string | undefined, string | undefined, string | undefined, string | RegExp][] = [
    ['code', 'otel', 'inmesh', undefined, 'code'],
    [undefined, 'otel', 'inmesh', undefined, 'otel'],
    [undefined, undefined, 'inmesh', undefined, 'inmesh'],
    [undefined, undefined, ' inmesh ', undefined, 'inmesh'], // trimmed, as src/config reads it
    // blank = unset (loadConfig rejects a blank variable instead; starting telemetry never throws)
    [undefined, '  ', 'inmesh', undefined, 'inmesh'],
    [undefined, undefined, undefined, undefined, /^unknown_service:/], // the SDK's default
    // OpenTelemetry ranks a resource attribute above defaults: INMESH_SERVICE_NAME does not override it…
    [undefined, undefined, 'inmesh', 'deployment.environment=prod,service.name=from-attrs', 'from-attrs'],
    // …but OTEL_SERVICE_NAME does (the OTel specification's order).
    [undefined, 'otel', 'inmesh', 'service.name=from-attrs', 'otel'],
  ];
  for (const [option, otel, inmesh, attrs, expected] of ORDER) {
    it(`service.name order: option ${String(option)}, OTEL_SERVICE_NAME ${JSON.stringify(otel)}, INMESH_SERVICE_NAME ${JSON.stringify(inmesh)}, OTEL_RESOURCE_ATTRIBUTES ${JSON.stringify(attrs)} → ${String(expected)}`, async () => {
      vi.stubEnv('OTEL_LOGS_EXPORTER', 'none');
      vi.stubEnv('OTEL_SERVICE_NAME', otel);
      vi.stubEnv('INMESH_SERVICE_NAME', inmesh);
      vi.stubEnv('OTEL_RESOURCE_ATTRIBUTES', attrs);
      // the env detector reads OTEL_RESOURCE_ATTRIBUTES; the other cases need no detection
      const name = await serviceNameOf({ ...(option === undefined ? {} : { serviceName: option }) }, attrs !== undefined);
      if (expected instanceof RegExp) expect(name).toMatch(expected);
      else expect(name).toBe(expected);
      // the same answer as the mesh configuration's telemetry.serviceName (src/config/load.ts)
      if (attrs === undefined && typeof expected === 'string' && otel?.trim() !== '') {
        const config = loadConfig({
          env: { OTEL_SERVICE_NAME: otel, INMESH_SERVICE_NAME: inmesh },
          ...(option === undefined ? {} : { code: { telemetry: { serviceName: option } } }),
        });
        expect(config.telemetry.serviceName).toBe(expected);
      }
    });
  }

  it('OTEL_TRACES_EXPORTER=otlp with OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: NodeSDK posts the span to that endpoint', async () => {
    const receiver = await startReceiver();
    try {
      vi.stubEnv('OTEL_TRACES_EXPORTER', 'otlp');
      vi.stubEnv('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', `${receiver.url}/v1/traces`);
      vi.stubEnv('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'http/protobuf');
      vi.stubEnv('OTEL_METRICS_EXPORTER', 'none');
      vi.stubEnv('OTEL_LOGS_EXPORTER', 'none');
      vi.stubEnv('OTEL_SERVICE_NAME', undefined);
      vi.stubEnv('INMESH_SERVICE_NAME', 'otlp-probe-service');
      const handle = startTelemetry({ sdk: { autoDetectResources: false } });
      trace.getTracer('t').startSpan('otlp-probe-span').end();
      await handle.shutdown(); // flushes the BatchSpanProcessor the SDK built from the environment
      expect(receiver.posts.map((p) => [p.method, p.url, p.contentType])).toEqual([['POST', '/v1/traces', 'application/x-protobuf']]);
      // protobuf keeps strings as UTF-8 bytes: the span and the resource's service.name are in the body
      const body = receiver.posts[0]!.body.toString('latin1');
      expect(body).toContain('otlp-probe-span');
      expect(body).toContain('otlp-probe-service');
    } finally {
      await receiver.close();
    }
  });

  it('OTEL_TRACES_EXPORTER=none: no span is exported', async () => {
    const receiver = await startReceiver();
    try {
      vi.stubEnv('OTEL_TRACES_EXPORTER', 'none');
      vi.stubEnv('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', `${receiver.url}/v1/traces`);
      vi.stubEnv('OTEL_METRICS_EXPORTER', 'none');
      vi.stubEnv('OTEL_LOGS_EXPORTER', 'none');
      const handle = startTelemetry({ sdk: { autoDetectResources: false } });
      trace.getTracer('t').startSpan('never-exported').end();
      await handle.shutdown();
      expect(receiver.posts).toEqual([]);
    } finally {
      await receiver.close();
    }
  });

  it('OTEL_SDK_DISABLED=true registers nothing', async () => {
    vi.stubEnv('OTEL_SDK_DISABLED', 'true');
    const { exporter, processor } = sdkParts();
    const handle = startTelemetry({ spanProcessors: [processor] });
    expect(handle.started).toBe(false);
    const span = trace.getTracer('t').startSpan('s');
    expect(span.isRecording()).toBe(false);
    span.end();
    await processor.forceFlush();
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    await handle.shutdown();
  });
});
