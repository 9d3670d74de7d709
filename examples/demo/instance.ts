/**
 * One instance of `orders` or `inventory`, a child process of the demo. Its
 * server is wrapped by inmesh (mesh.server()); with CONSUL_HTTP_ADDR set it
 * registers in Consul under a fixed id (`<name>-<port>`), so a restarted
 * instance on the same port replaces its old entry.
 *
 * Env: SERVICE_NAME, PORT (0 = a free port), CONSUL_HTTP_ADDR (optional).
 * Sends `{ ready: port }` over IPC once it serves.
 * IPC from the demo: `{ fault: 'none' | '503' | 'slow' }` sets the fault;
 * `{ stats: true }` is answered with `{ stats: { served, failed, slow } }`.
 * It exits when the demo goes away (the IPC channel closes) or on SIGTERM/SIGINT.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMesh } from '../../src/mesh/mesh.ts';
import { leaveOnStop } from './child.ts';

type Fault = 'none' | '503' | 'slow';
/** How long a slow instance takes to answer (ms): above both clients' per-call deadlines in the demo. */
const SLOW_MS = 1_500;

const name = process.env.SERVICE_NAME ?? 'unnamed';
const consulAddr = process.env.CONSUL_HTTP_ADDR ?? '';
const mesh = createMesh({ policy: { apiVersion: 'inmesh/v1' }, env: { CONSUL_HTTP_ADDR: consulAddr, INMESH_TRACING: 'false' } });
let fault: Fault = 'none';
const stats = { served: 0, failed: 0, slow: 0 };

const server = mesh.server(
  createServer((req, res) => {
    stats.served++;
    if (fault === '503') {
      stats.failed++;
      res.writeHead(503, { 'content-type': 'text/plain' }).end('injected 503\n');
      return;
    }
    const answer = (): void => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ service: name, pid: process.pid, path: req.url }));
    };
    if (fault === 'slow') {
      stats.slow++;
      const timer = setTimeout(answer, SLOW_MS);
      res.once('close', () => clearTimeout(timer));
    } else answer();
  }),
);
server.keepAliveTimeout = 5_000;

const leaving = leaveOnStop(server, () => mesh);
process.on('message', (msg: { fault?: Fault; stats?: true }) => {
  if (msg.fault !== undefined) fault = msg.fault;
  if (msg.stats === true) process.send?.({ stats });
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const port = (server.address() as AddressInfo).port;
  process.send?.({ ready: port });
  if (consulAddr === '') return;
  // Registration runs in the background: an instance restarted while the agent is away
  // serves at once and registers when the agent is back (the registration retries).
  // The default TTL check (15 s): a killed instance stays listed while it is away, which is
  // what callers meet in production between a crash and the check turning critical.
  // The agent forgetting the instance is checked every second.
  void registerUntilDone(port);
});

async function registerUntilDone(port: number): Promise<void> {
  for (let attempt = 0; attempt < 120 && !leaving(); attempt++) {
    try {
      await mesh.register({ name, id: `${name}-${port}`, address: '127.0.0.1', port, verifyIntervalMs: 1_000 });
      return;
    } catch (err) {
      process.stderr.write(`registration failed (attempt ${attempt + 1}): ${String(err)}\n`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
