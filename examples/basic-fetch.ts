/**
 * The quickest start: a static registry, the built-in default policy, and
 * `mesh.fetch` as a drop-in `fetch`. Run a server on 127.0.0.1:8080 (and 8081)
 * first, then: `npx node --experimental-strip-types examples/basic-fetch.ts`.
 */
import { createMesh, isInmeshError } from '../src/index.ts';

const mesh = createMesh({
  registry: { static: { orders: ['127.0.0.1:8080', '127.0.0.1:8081'] } },
  policy: {
    apiVersion: 'inmesh/v1',
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
  if (isInmeshError(error)) console.error(error.code, error.message);
  else throw error;
} finally {
  await mesh.close();
}
