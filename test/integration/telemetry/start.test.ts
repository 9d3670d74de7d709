// startTelemetry(): the NodeSDK helper of the `inmesh/telemetry` entry point.
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { MetricReader } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTelemetryLayer } from '../../../src/telemetry/layer.ts';
import { startTelemetry } from '../../../src/telemetry/index.ts';
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
    const layer = createTelemetryLayer({ enabled: true })!;
    let traceparent = '';
    await layer((req) => {
      traceparent = String(req.headers.traceparent);
      return Promise.resolve(fakeResponse());
    })(fakeRequest());
    await processor.forceFlush();
    const [span] = exporter.getFinishedSpans();
    expect(span?.name).toBe('GET');
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
