/**
 * A Fastify service behind the inbound chain that calls another service
 * through the mesh.
 *
 * - `app.register(inmeshFastify, { mesh })` runs the inbound chain on every
 *   request (health probes, deadline, inbound limits, a SERVER span named
 *   after the route) and runs the handler inside the request's deadline.
 * - The handler calls `inventory` with `mesh.request()`, passing
 *   `requestSignal(request)`: the call stops when the caller goes away or the
 *   inbound deadline passes, and never outlives it.
 * - `mesh.handleSignals()` drains the server on SIGTERM / SIGINT and exits 0.
 *
 * Run an `inventory` server (any HTTP server), then:
 *
 *   INMESH_ENDPOINTS_INVENTORY=127.0.0.1:9090 PORT=3000 \
 *     npx node --experimental-transform-types examples/fastify-service.ts
 *
 *   curl http://127.0.0.1:3000/stock/42
 *
 * In an installed package the imports are `inmesh` and `inmesh/fastify`.
 * (test/integration/examples.test.ts runs it against a loopback server.)
 */
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { createMesh, isInmeshError, requestSignal } from '../src/index.ts';
import { inmeshFastify } from '../src/server/fastify.ts';

const mesh = createMesh({
  policy: {
    inbound: { timeouts: { request: '5s' }, maxConcurrent: 64 },
    upstreams: {
      // Endpoints from INMESH_ENDPOINTS_INVENTORY (the static registry).
      inventory: {
        discovery: { registry: 'static' },
        timeouts: { request: '2s', perTry: '500ms' },
        retries: { attempts: 2 },
      },
    },
  },
});

const app = Fastify();
await app.register(inmeshFastify, { mesh }); // before the routes

app.get<{ Params: { sku: string } }>('/stock/:sku', async (request, reply) => {
  try {
    const res = await mesh.request(`http://inventory/items/${encodeURIComponent(request.params.sku)}`, {
      signal: requestSignal(request),
    });
    return await reply.code(res.statusCode).type('application/json').send(await res.body.text());
  } catch (error) {
    // The mesh could not get an answer (no endpoint, timeout, breaker open, ...): 502 with its code.
    if (!isInmeshError(error)) throw error;
    return await reply.code(502).send({ error: error.code, message: error.message });
  }
});

await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' });
// No registry watches this instance here, so no propagation delay; behind a load
// balancer or Consul, keep the default (SHUTDOWN_DEFAULTS.propagationDelayMs).
mesh.handleSignals({ servers: [app.server], propagationDelayMs: 0 });
console.log(`listening on http://127.0.0.1:${String((app.server.address() as AddressInfo).port)}`);
