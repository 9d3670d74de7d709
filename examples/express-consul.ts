/**
 * An Express service that registers in Consul and leaves it gracefully.
 *
 * - `inmeshExpress(mesh)` puts the inbound chain in front of the routes
 *   (health probes `/livez` and `/readyz`, the request's deadline, inbound
 *   limits, a SERVER span).
 * - `mesh.register()` adds this instance to the Consul catalogue, with
 *   `/readyz` as its HTTP check, so it leaves Consul's healthy set as soon as
 *   the shutdown starts.
 * - `mesh.handleSignals()` runs `mesh.shutdown()` on SIGTERM / SIGINT:
 *   maintenance mode, a propagation delay, drain, deregistration, close; then
 *   the process exits 0 (docs/server.md#shutdown).
 *
 * Run a Consul agent (`consul agent -dev`), then:
 *
 *   CONSUL_HTTP_ADDR=127.0.0.1:8500 INMESH_SERVICE_NAME=greeter PORT=8080 \
 *     npx node --experimental-transform-types examples/express-consul.ts
 *
 *   curl http://127.0.0.1:8080/hello/ada
 *   curl http://127.0.0.1:8500/v1/catalog/service/greeter
 *   # Ctrl-C: the instance goes to maintenance, drains and leaves the catalogue.
 *
 * In an installed package the imports are `inmesh` and `inmesh/express`.
 * (test/integration/examples.test.ts runs it against a real Consul agent.)
 */
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createMesh } from '../src/index.ts';
import { inmeshExpress } from '../src/server/express.ts';

// Consul's address comes from CONSUL_HTTP_ADDR, the service name from INMESH_SERVICE_NAME.
const mesh = createMesh();
const name = mesh.config.service?.name ?? 'greeter';

const app = express();
app.use(inmeshExpress(mesh)); // first, before the routes
app.get('/hello/:who', (req, res) => {
  res.json({ greeting: `hello ${req.params.who}`, from: name });
});

const server = app.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => {
  const port = (server.address() as AddressInfo).port;
  // Consul's agent runs the check, so it points at this instance on loopback
  // (the agent runs on this host in this example).
  mesh
    .register({
      name,
      port,
      address: '127.0.0.1',
      check: { http: `http://127.0.0.1:${port}/readyz`, intervalMs: 5_000, timeoutMs: 2_000 },
    })
    .then((registration) => {
      // The server of `app.listen()` is not known to the mesh: name it, so that it is drained.
      // The defaults (SHUTDOWN_DEFAULTS): 5 s of propagation delay, longer than the callers'
      // Consul watch interval, then up to 20 s of drain.
      mesh.handleSignals({ servers: [server] });
      console.log(`listening on http://127.0.0.1:${port}, registered in Consul as ${name} (${registration.id})`);
    })
    .catch((error: unknown) => {
      console.error(`could not register in Consul: ${error instanceof Error ? error.message : String(error)}`);
      server.close();
      void mesh.close().finally(() => (process.exitCode = 1));
    });
});
