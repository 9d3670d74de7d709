// One inbound benchmark server: the upstream.mjs handler in its own process,
// plain or wrapped by mesh.server() (dist/), started by inbound.mjs with
// child_process.fork(). It reports its port over IPC, then measures its own
// CPU (process.cpuUsage) between the parent's 'start' and 'stop' messages.
//
//   node inbound-server.mjs plain | mesh | mesh-traced
import { createServer } from 'node:http';

const variant = process.argv[2] ?? 'plain';

const body = Buffer.from(JSON.stringify({ ok: true, from: process.pid, pad: 'x'.repeat(32) }));
const headers = { 'content-type': 'application/json', 'content-length': String(body.length) };
const handler = (req, res) => {
  req.resume();
  res.writeHead(200, headers);
  res.end(body);
};

/** Inbound policy on, with limits the load never reaches: every request is admitted and counted. */
export const benchInbound = {
  maxConcurrent: 1024,
  rateLimit: { requestsPerSecond: 1_000_000, burst: 1_000_000 },
  timeouts: { request: '15s' },
};

let listener = handler;
let stopTelemetry = async () => {};
let mesh;
if (variant !== 'plain') {
  if (variant === 'mesh-traced') {
    // The same SDK set-up as the traced client cells (batching, no-op exporters), before the mesh is built.
    const { startBenchTelemetry } = await import('./mesh-clients.mjs');
    stopTelemetry = await startBenchTelemetry();
  }
  const { createMesh } = await import('../../dist/index.js');
  mesh = createMesh({ policy: { apiVersion: 'inmesh/v1', inbound: benchInbound }, env: {} });
  listener = mesh.server(handler);
}

const server = createServer(listener);
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
server.maxRequestsPerSocket = 0;

let cpu0;
process.on('message', (m) => {
  if (m?.cmd === 'start') {
    globalThis.gc?.();
    cpu0 = process.cpuUsage();
    process.send({ started: true });
  } else if (m?.cmd === 'stop') {
    const cpu = process.cpuUsage(cpu0);
    process.send({ cpuUs: cpu.user + cpu.system, userUs: cpu.user, systemUs: cpu.system });
  }
});

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
});

process.on('disconnect', () => {
  server.closeAllConnections();
  server.close(async () => {
    await mesh?.close();
    await stopTelemetry();
    process.exit(0);
  });
  setTimeout(() => process.exit(0), 1000).unref();
});
