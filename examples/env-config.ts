/**
 * Configuration by environment variables only: `createMesh()` with no
 * options. Every setting comes from the process environment (the table in
 * docs/configuration.md#environment-variables); a bad variable fails here at
 * once, naming the variable and its value.
 *
 * It prints which source set each setting it reads, then calls the `catalog`
 * service once through the mesh.
 *
 *   INMESH_ENDPOINTS_CATALOG=127.0.0.1:8080,127.0.0.1:8081 \
 *   INMESH_REGISTRY=static \
 *   INMESH_LB_POLICY=least_request \
 *   INMESH_TIMEOUT_REQUEST=3s INMESH_TIMEOUT_PER_TRY=1s \
 *   INMESH_RETRY_ATTEMPTS=2 \
 *   INMESH_TRACING=false \
 *     npx node --experimental-transform-types examples/env-config.ts
 *
 * With CONSUL_HTTP_ADDR instead of INMESH_ENDPOINTS_* and INMESH_REGISTRY=consul
 * the same code discovers `catalog` in Consul. INMESH_POLICY_FILE adds a policy
 * file under the variables (variables beat the file's `defaults`).
 * (test/integration/examples.test.ts runs it against loopback servers.)
 */
import { createMesh, isInmeshError, type Mesh } from '../src/index.ts';

let mesh: Mesh;
try {
  mesh = createMesh();
} catch (error) {
  // InvalidPolicyError (INMESH_ERR_INVALID_CONFIG): every bad variable, its value and what was expected.
  if (!isInmeshError(error)) throw error;
  console.error(error.message);
  process.exit(1);
}

// Where each setting came from: 'env:NAME', 'file:/path', 'code' or 'default'.
for (const key of [
  'policy.defaults.discovery.registry',
  'policy.defaults.loadBalancer.policy',
  'policy.defaults.timeouts.request',
  'policy.defaults.timeouts.perTry',
  'policy.defaults.retries.attempts',
  'telemetry.enabled',
]) {
  console.log(`${key} = ${mesh.config.sources[key] ?? 'default'}`);
}

try {
  const res = await mesh.request('http://catalog/api/products');
  console.log(`${res.statusCode} from ${res.endpoint} after ${res.attempts} attempt(s): ${await res.body.text()}`);
} catch (error) {
  if (!isInmeshError(error)) throw error;
  console.error(error.code, error.message);
  process.exitCode = 1;
} finally {
  await mesh.close();
}
