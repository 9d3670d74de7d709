/**
 * A rate limit shared through Redis by every process that calls a service
 * (docs/resilience.md#ratelimit-the-client-token-bucket).
 *
 * The policy gives the `quotes` upstream a token bucket of 5 calls, refilled at
 * one call per 10 s, with `shared: true`: every process using the same Redis
 * (INMESH_REDIS_URL) draws from one bucket, so two processes started together
 * get 5 calls between them, not 5 each. Over the limit a call fails at once
 * with `RateLimitedError` (INMESH_ERR_RATE_LIMITED) and never leaves the
 * process. `ioredis` is an optional peer dependency: install it beside inmesh.
 *
 * Run redis-server and a `quotes` server, then start this twice:
 *
 *   INMESH_REDIS_URL=redis://127.0.0.1:6379 INMESH_ENDPOINTS_QUOTES=127.0.0.1:8080 \
 *     npx node --experimental-transform-types examples/redis-rate-limit.ts
 *
 * Each run prints how many of its 8 calls were admitted and how many limited.
 * (test/integration/examples.test.ts runs it twice against a real redis-server.)
 */
import { ErrorCodes, createMesh, isInmeshError } from '../src/index.ts';

const mesh = createMesh({
  policy: {
    upstreams: {
      quotes: {
        discovery: { registry: 'static' }, // endpoints from INMESH_ENDPOINTS_QUOTES
        rateLimit: { requestsPerSecond: 0.1, burst: 5, shared: true },
      },
    },
  },
});

let admitted = 0;
let limited = 0;
try {
  for (let i = 0; i < 8; i++) {
    try {
      const res = await mesh.request('http://quotes/api/quote');
      await res.body.dump();
      admitted++;
    } catch (error) {
      if (!isInmeshError(error) || error.code !== ErrorCodes.RATE_LIMITED) throw error;
      limited++;
    }
  }
  console.log(`admitted ${admitted} limited ${limited}`);
} finally {
  await mesh.close();
}
