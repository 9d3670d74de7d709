/**
 * The quickest start: static endpoints from the environment, a small policy in
 * code, and `mesh.fetch` as a drop-in `fetch`. Run servers first, then:
 *
 *   INMESH_ENDPOINTS_ORDERS=127.0.0.1:8080,127.0.0.1:8081 \
 *     npx node --experimental-transform-types examples/basic-fetch.ts
 *
 * In an installed package the import is `inmesh`.
 * (test/integration/examples.test.ts runs it against two loopback servers.)
 */
import { createMesh, isInmeshError } from '../src/index.ts';

// `orders` is a mesh service because INMESH_ENDPOINTS_ORDERS lists its endpoints.
const mesh = createMesh({
  policy: {
    upstreams: {
      orders: {
        timeouts: { request: '2s', perTry: '500ms' },
        retries: { attempts: 2, retryOn: ['connect-failure', 'reset', 'gateway-error'] },
      },
    },
  },
});

try {
  // `orders` is a mesh service: balanced, retried, deadline-bound.
  const res = await mesh.fetch('http://orders/api/items', { headers: { accept: 'application/json' } });
  console.log(res.status, await res.text());

  // The fast path, undici `request` semantics, with per-call overrides.
  const fast = await mesh.request('http://orders/api/items', { timeout: 1_000, retries: 1 });
  console.log(fast.statusCode, fast.endpoint, fast.attempts, await fast.body.text());
} catch (error) {
  // mesh.fetch rejects as fetch does, with a TypeError whose `cause` is the inmesh
  // error (docs/errors.md); mesh.request rejects with the inmesh error itself.
  const meshError = isInmeshError(error) ? error : error instanceof Error && isInmeshError(error.cause) ? error.cause : undefined;
  if (meshError === undefined) throw error;
  console.error(meshError.code, meshError.message);
  process.exitCode = 1;
} finally {
  await mesh.close();
}
