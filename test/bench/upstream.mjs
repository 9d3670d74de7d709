// One benchmark upstream: a plain node:http server on 127.0.0.1, started by
// run.mjs with child_process.fork(). It answers every request with a small
// JSON body and reports its port over IPC; it exits when the parent goes away.
import { createServer } from 'node:http';

const body = Buffer.from(JSON.stringify({ ok: true, from: process.pid, pad: 'x'.repeat(32) }));
const headers = { 'content-type': 'application/json', 'content-length': String(body.length) };

const server = createServer((req, res) => {
  // Drain the request (GETs have no body, but be correct), then answer.
  req.resume();
  res.writeHead(200, headers);
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
server.maxRequestsPerSocket = 0;

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
});

process.on('disconnect', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
});
