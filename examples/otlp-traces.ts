/**
 * Traces to an OTLP endpoint (docs/telemetry.md).
 *
 * `startTelemetry()` starts the OpenTelemetry Node SDK, configured by the
 * standard OTEL_* variables (OTLP over HTTP when OTEL_TRACES_EXPORTER is
 * unset). Started before `createMesh()`, it receives the mesh's spans: a
 * SERVER span for each request the wrapped server takes, an INTERNAL span per
 * mesh call and a CLIENT span per attempt, all in one trace.
 *
 * The script starts a `backend` on loopback and a `frontend` wrapped by
 * `mesh.server()` that calls it through the mesh, sends the frontend one
 * request, then flushes the spans and exits.
 *
 *   # An OTLP/HTTP receiver on 4318: an OpenTelemetry Collector, Jaeger, ...
 *   OTEL_SERVICE_NAME=frontend \
 *   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:4318/v1/traces \
 *   OTEL_METRICS_EXPORTER=none \
 *     npx node --experimental-transform-types examples/otlp-traces.ts
 *
 * In an installed package the imports are `inmesh` and `inmesh/telemetry`, and
 * `@opentelemetry/sdk-node` is installed beside inmesh (an optional peer
 * dependency, needed by `inmesh/telemetry` only).
 * (test/integration/examples.test.ts runs it against a loopback OTLP receiver.)
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMesh, requestSignal } from '../src/index.ts';
import { startTelemetry } from '../src/telemetry/index.ts';

// First: a mesh built before a MeterProvider exists records no metrics.
const telemetry = startTelemetry();

const backend = createServer((_req, res) => res.end('stock: 3'));
backend.listen(0, '127.0.0.1');
await once(backend, 'listening');

const mesh = createMesh({
  registry: { static: { backend: [`127.0.0.1:${String((backend.address() as AddressInfo).port)}`] } },
});
const frontend = createServer(
  mesh.server(async (req, res) => {
    // Runs inside the SERVER span: the mesh call continues its trace.
    const out = await mesh.request('http://backend/stock', { signal: requestSignal(req) });
    res.end(`frontend got "${await out.body.text()}"`);
  }),
);
frontend.listen(0, '127.0.0.1');
await once(frontend, 'listening');

try {
  const res = await fetch(`http://127.0.0.1:${String((frontend.address() as AddressInfo).port)}/orders/42`);
  console.log(res.status, await res.text());
} finally {
  frontend.close();
  frontend.closeAllConnections(); // fetch's kept-alive socket would hold the process
  backend.close();
  await mesh.close();
  // Flushes the spans still in the batch processor to the OTLP endpoint.
  await telemetry.shutdown();
}
