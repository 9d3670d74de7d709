/**
 * Registers a real OpenTelemetry SDK (SDK-3 TracerProvider with an
 * InMemorySpanExporter behind a SimpleSpanProcessor, a MeterProvider with a
 * pull MetricReader, the AsyncLocalStorage context manager and the W3C
 * propagator) as the global one, for telemetry tests.
 */
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { DataPointType, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import type { HistogramMetricData, MetricData, SumMetricData } from '@opentelemetry/sdk-metrics';
import { EventEmitter, once } from 'node:events';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace';

class PullReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

export interface OtelHarness {
  readonly exporter: InMemorySpanExporter;
  readonly provider: TracerProvider;
  readonly meterProvider: MeterProvider;
  /** Flushes the span processor, then returns every finished span. */
  spans(): Promise<ReadableSpan[]>;
  /**
   * The finished spans once `until` holds for them: awaited on each span's end
   * (no sleep), failing after `timeoutMs` with what was there.
   */
  spansWhen(until: (spans: ReadableSpan[]) => boolean, timeoutMs?: number): Promise<ReadableSpan[]>;
  /** Collects and returns the metric with that name, if recorded. */
  metric(name: string): Promise<MetricData | undefined>;
  reset(): void;
  shutdown(): Promise<void>;
}

export function registerOtel(options: { metrics?: boolean } = {}): OtelHarness {
  const exporter = new InMemorySpanExporter();
  const processor = new SimpleSpanProcessor({ exporter });
  const ended = new EventEmitter();
  // Tells spansWhen() that a span ended (after the in-memory exporter has it).
  const notify: SpanProcessor = {
    onStart: () => undefined,
    onEnd: () => ended.emit('end'),
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
  const provider = new TracerProvider({ spanProcessors: [processor, notify] });
  const reader = new PullReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  if (options.metrics !== false) metrics.setGlobalMeterProvider(meterProvider);
  return {
    exporter,
    provider,
    meterProvider,
    async spans() {
      await processor.forceFlush();
      return exporter.getFinishedSpans();
    },
    async spansWhen(until, timeoutMs = 2000) {
      const deadline = AbortSignal.timeout(timeoutMs);
      for (;;) {
        await processor.forceFlush();
        const spans = exporter.getFinishedSpans();
        if (until(spans)) return spans;
        try {
          await once(ended, 'end', { signal: deadline });
        } catch {
          throw new Error(`spansWhen: not there after ${timeoutMs} ms; spans: ${spans.map((x) => `${x.name}/${x.kind}`).join(', ') || 'none'}`);
        }
      }
    },
    async metric(name) {
      const { resourceMetrics } = await reader.collect();
      for (const scope of resourceMetrics.scopeMetrics) {
        for (const m of scope.metrics) if (m.descriptor.name === name) return m;
      }
      return undefined;
    },
    reset() {
      exporter.reset();
    },
    async shutdown() {
      await provider.shutdown();
      await meterProvider.shutdown();
      trace.disable();
      metrics.disable();
      propagation.disable();
      context.disable();
    },
  };
}

export function isHistogram(m: MetricData | undefined): m is HistogramMetricData {
  return m?.dataPointType === DataPointType.HISTOGRAM;
}

export function isSum(m: MetricData | undefined): m is SumMetricData {
  return m?.dataPointType === DataPointType.SUM;
}
