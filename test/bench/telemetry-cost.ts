// Cost of the telemetry layer alone, without a network: ns per call around a
// handler that returns an already-resolved response.
//   npx node test/bench/telemetry-cost.ts
// Cases: no layer (telemetry disabled), layer with no SDK registered, layer
// with the SDK as startTelemetry() sets it up (batching span processor and a
// meter provider, both exporting to no-op exporters).
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ExportResultCode, W3CTraceContextPropagator } from '@opentelemetry/core';
import { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import type { PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import type { Handler, MeshRequest, MeshResponse } from '../../src/core/types.ts';
import { createTelemetry } from '../../src/telemetry/layer.ts';
import { toMeshRequest, EMPTY_OPTIONS } from '../../src/client/request.ts';
import { defaultUpstream, resolvePolicy } from '../../src/policy/index.ts';

const N = Number(process.env.N ?? 200_000);
const response = { statusCode: 200, headers: {}, body: undefined, trailers: {}, endpoint: '127.0.0.1:1', attempts: 1 } as unknown as MeshResponse;
const resolved = Promise.resolve(response);
const transport: Handler = () => resolved;

const upstream = defaultUpstream(resolvePolicy({ apiVersion: 'inmesh/v1' }), 'orders');
const url = new URL('http://orders/api/items');
const request = (): MeshRequest =>
  toMeshRequest(upstream, url, { options: EMPTY_OPTIONS });

async function measure(name: string, handler: Handler): Promise<void> {
  for (let i = 0; i < N / 10; i++) await handler(request()); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await handler(request());
  const ns = Number(process.hrtime.bigint() - t0) / N;
  console.log(`${name.padEnd(44)} ${ns.toFixed(0).padStart(6)} ns/call`);
}

await measure('no layer (telemetry: { enabled: false })', transport);
await measure('layer, no SDK registered', createTelemetry({ enabled: true })!.layer(transport));

const spanExporter: SpanExporter = {
  export: (_spans, done) => done({ code: ExportResultCode.SUCCESS }),
  shutdown: () => Promise.resolve(),
  forceFlush: () => Promise.resolve(),
};
const metricExporter: PushMetricExporter = {
  export: (_m, done) => done({ code: ExportResultCode.SUCCESS }),
  shutdown: () => Promise.resolve(),
  forceFlush: () => Promise.resolve(),
  selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
};
const provider = new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter: spanExporter })] });
const meterProvider = new MeterProvider({
  readers: [new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 60_000 })],
});
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
trace.setGlobalTracerProvider(provider);
await measure('layer, tracer provider only', createTelemetry({ enabled: true })!.layer(transport));
metrics.setGlobalMeterProvider(meterProvider);
await measure('layer, tracer + meter provider', createTelemetry({ enabled: true })!.layer(transport));
await provider.shutdown();
await meterProvider.shutdown();
