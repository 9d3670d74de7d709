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

// BENCH_ALT_DIST=<folder with another build's dist/index.js>: adds the cell
// mesh-request-alt, the same mesh.request from that build, for an A/B of two
// versions measured side by side in one run (e.g. a worktree of main).
let altLib;
if (process.env.BENCH_ALT_DIST) altLib = await import(`${process.env.BENCH_ALT_DIST}/index.js`);

const SERVICE = 'bench';
const URL_ = `http://${SERVICE}/`;

function createMesh(ports, extra = {}, from = lib) {
  return from.createMesh({ registry: { static: { [SERVICE]: ports.map((p) => `127.0.0.1:${p}`) } }, ...extra });
}

/** mesh.request with the default policy; no SDK registered (the telemetry layer is a no-op span). */
async function meshRequest(ports, extra = {}, from = lib) {
  const mesh = createMesh(ports, extra, from);
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
 * OpenTelemetry on, as `startTelemetry()` sets it up: NodeSDK with a
 * BatchSpanProcessor in front of a no-op exporter (spans are built, queued and
 * batched, then dropped), the AsyncLocalStorage context manager, the W3C
 * propagators, and a MeterProvider whose periodic reader exports to a no-op
 * exporter once a minute (so histograms and counters are recorded).
 * BENCH_TRACED_METRICS=0 leaves metrics out. Returns the shutdown function.
 */
export async function startBenchTelemetry() {
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
  return async () => {
    await handle.shutdown();
    trace.disable();
    metrics.disable();
    propagation.disable();
    context.disable();
  };
}

/** mesh.request with OpenTelemetry on (startBenchTelemetry). */
async function meshRequestTraced(ports) {
  const stopTelemetry = await startBenchTelemetry();
  const mesh = createMesh(ports); // after the SDK: the meter is bound when the mesh is built
  return {
    async call() {
      const res = await mesh.request(URL_);
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
    },
    async close() {
      await mesh.close();
      await stopTelemetry();
    },
  };
}

/**
 * The reference for mesh-request-traced: raw undici over the three Pools
 * (round robin by hand) with the SAME telemetry done by hand, as a team would
 * instrument it: one CLIENT span with the same attributes, the context made
 * active and injected as traceparent, the status set, and the same two metric
 * records (duration histogram, attempts counter) with the same attributes. It
 * puts a price on what the OpenTelemetry SDK itself costs per call, apart from
 * the mesh.
 */
async function rawThreePoolsTraced(ports) {
  const { Pool } = await import('undici');
  const { SpanKind } = await import('@opentelemetry/api');
  const stopTelemetry = await startBenchTelemetry();
  const tracer = trace.getTracer('bench');
  const meter = metrics.getMeter('bench');
  const duration = meter.createHistogram('http.client.request.duration', { unit: 's' });
  const attempts = meter.createCounter('inmesh.client.attempts');
  const pools = ports.map((p) => new Pool(`http://127.0.0.1:${p}`));
  let i = 0;
  return {
    async call() {
      const start = performance.now();
      const span = tracer.startSpan('GET', { kind: SpanKind.CLIENT });
      span.setAttribute('http.request.method', 'GET');
      span.setAttribute('server.address', SERVICE);
      span.setAttribute('url.full', URL_);
      span.setAttribute('peer.service', SERVICE);
      span.setAttribute('inmesh.service', SERVICE);
      const ctx = trace.setSpan(context.active(), span);
      const headers = { host: SERVICE };
      propagation.inject(ctx, headers);
      const { statusCode, body } = await context.with(ctx, () => pools[i++ % pools.length].request({ path: '/', method: 'GET', headers }));
      span.setAttribute('inmesh.attempts', 1);
      span.setAttribute('http.response.status_code', statusCode);
      span.end();
      const attrs = { 'http.request.method': 'GET', 'server.address': SERVICE, 'http.response.status_code': statusCode };
      duration.record((performance.now() - start) / 1000, attrs);
      attempts.add(1, attrs);
      await body.text();
      if (statusCode !== 200) throw new Error(`status ${statusCode}`);
    },
    async close() {
      await Promise.all(pools.map((p) => p.close()));
      await stopTelemetry();
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
        { id: 'raw-3pools-traced', label: 'undici.request, 3 Pools, the same telemetry by hand', create: rawThreePoolsTraced },
        { id: 'mesh-fetch', label: 'mesh.fetch, default policy, no SDK', create: meshFetch },
        ...(altLib === undefined
          ? []
          : [{ id: 'mesh-request-alt', label: `mesh.request from ${process.env.BENCH_ALT_DIST}`, create: (ports) => meshRequest(ports, {}, altLib) }]),
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
