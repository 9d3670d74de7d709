// The mesh cells. They load the library from dist/ (what users get);
// `npm run bench` builds first. Empty when dist/ has no createMesh.
import { context, metrics, propagation, trace } from '@opentelemetry/api';

let lib;
let telemetryLib;
try {
  lib = await import('../../dist/index.js');
  telemetryLib = await import('../../dist/telemetry.js');
} catch (err) {
  console.error(`bench: could not load dist/ (${err.message}); run \`npm run build\``);
  lib = {};
}

const SERVICE = 'bench';
const URL_ = `http://${SERVICE}/`;

function createMesh(ports, extra = {}) {
  return lib.createMesh({ registry: { static: { [SERVICE]: ports.map((p) => `127.0.0.1:${p}`) } }, ...extra });
}

/** mesh.request with the default policy; no SDK registered (the telemetry layer is a no-op span). */
async function meshRequest(ports, extra = {}) {
  const mesh = createMesh(ports, extra);
  return {
    async call() {
      const res = await mesh.request(URL_);
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
    },
    close: () => mesh.close(),
  };
}

/**
 * mesh.request with OpenTelemetry on, as `startTelemetry()` sets it up: NodeSDK
 * with a BatchSpanProcessor in front of a no-op exporter (spans are built,
 * queued and batched, then dropped), the AsyncLocalStorage context manager,
 * the W3C propagators, and a MeterProvider whose periodic reader exports to a
 * no-op exporter once a minute (so the histogram and counter are recorded).
 * BENCH_TRACED_METRICS=0 leaves metrics out.
 */
async function meshRequestTraced(ports) {
  const { BatchSpanProcessor } = await import('@opentelemetry/sdk-trace');
  const { PeriodicExportingMetricReader, AggregationTemporality } = await import('@opentelemetry/sdk-metrics');
  const noopSpanExporter = {
    export: (_spans, done) => done({ code: 0 }),
    shutdown: () => Promise.resolve(),
    forceFlush: () => Promise.resolve(),
  };
  const noopMetricExporter = {
    export: (_metrics, done) => done({ code: 0 }),
    shutdown: () => Promise.resolve(),
    forceFlush: () => Promise.resolve(),
    selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
  };
  const withMetrics = process.env.BENCH_TRACED_METRICS !== '0';
  const handle = telemetryLib.startTelemetry({
    serviceName: 'inmesh-bench',
    spanProcessors: [new BatchSpanProcessor({ exporter: noopSpanExporter })],
    metricReaders: withMetrics
      ? [new PeriodicExportingMetricReader({ exporter: noopMetricExporter, exportIntervalMillis: 60_000 })]
      : [],
    sdk: { logRecordProcessors: [] },
  });
  const mesh = createMesh(ports); // after the SDK: the meter is bound when the mesh is built
  return {
    async call() {
      const res = await mesh.request(URL_);
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
    },
    async close() {
      await mesh.close();
      await handle.shutdown();
      trace.disable();
      metrics.disable();
      propagation.disable();
      context.disable();
    },
  };
}

/** mesh.fetch (WHATWG Response) with the default policy. */
async function meshFetch(ports) {
  const mesh = createMesh(ports);
  return {
    async call() {
      const res = await mesh.fetch(URL_);
      await res.text();
      if (res.status !== 200) throw new Error(`status ${res.status}`);
    },
    close: () => mesh.close(),
  };
}

export const meshCells =
  typeof lib.createMesh === 'function'
    ? [
        { id: 'mesh-request', label: 'mesh.request, default policy, no SDK', create: meshRequest },
        { id: 'mesh-request-traced', label: 'mesh.request, startTelemetry() on (batching, no-op exporters)', create: meshRequestTraced },
        { id: 'mesh-fetch', label: 'mesh.fetch, default policy, no SDK', create: meshFetch },
      ]
    : [];

// Ablation (BENCH_ABLATION=1): the default-policy mesh with one layer off at a
// time, and with all of them off, to put a price on each layer.
const policy = (defaults) => ({ policy: { apiVersion: 'inmesh/v1', defaults } });
const ablations = {
  'mesh-no-telemetry': { telemetry: { enabled: false } },
  'mesh-no-breaker': policy({ circuitBreaker: { enabled: false } }),
  'mesh-no-timeouts': policy({ timeouts: { request: '0' } }),
  'mesh-no-retry': policy({ retries: { attempts: 0 } }),
  'mesh-minimal': {
    telemetry: { enabled: false },
    ...policy({ circuitBreaker: { enabled: false }, timeouts: { request: '0' }, retries: { attempts: 0 } }),
  },
};
export const ablationCells =
  typeof lib.createMesh === 'function'
    ? Object.entries(ablations).map(([id, extra]) => ({
        id,
        label: `mesh.request, ${id.slice(5)}`,
        create: (ports) => meshRequest(ports, extra),
      }))
    : [];
