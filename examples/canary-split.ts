/**
 * A policy file with a canary split and per-route overrides
 * (examples/canary-split.yaml; docs/load-balancing.md#subsets-and-splits-canary).
 *
 * The script starts three `reviews` instances on loopback (two tagged v1, one
 * v2), loads the policy file and shows each part of it at work:
 *
 * - the split: about 10 % of 200 calls reach the v2 canary;
 * - the `testers` route: a request with `x-canary` always reaches the canary;
 * - the `reports` route: its 250 ms deadline and no retries, where the
 *   upstream allows 2 s and 2 retries.
 *
 *   npx node --experimental-transform-types examples/canary-split.ts
 *
 * Validate the file as CI does:
 *
 *   npx node --experimental-transform-types src/cli/main.ts validate examples/canary-split.yaml
 *
 * (test/integration/examples.test.ts runs both.)
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createMesh, isInmeshError, StaticRegistry, type EndpointEntry } from '../src/index.ts';

/** One `reviews` instance: answers its version; reports take 1 s. */
async function instance(version: string): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/api/reports') === true) setTimeout(() => res.end(version), 1_000).unref();
    else res.end(version);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

const instances = [
  { tags: ['v1'], ...(await instance('v1')) },
  { tags: ['v1'], ...(await instance('v1')) },
  { tags: ['v2'], ...(await instance('v2')) },
];
const endpoints: EndpointEntry[] = instances.map((i) => ({ address: '127.0.0.1', port: i.port, tags: i.tags }));

const mesh = createMesh({
  policyFile: fileURLToPath(new URL('canary-split.yaml', import.meta.url)),
  registry: new StaticRegistry({ services: { reviews: endpoints }, env: false }),
  telemetry: { enabled: false },
});

try {
  // The split: each call picks a subset by weight, then an endpoint in it.
  const seen = { v1: 0, v2: 0 };
  for (let i = 0; i < 200; i++) {
    const res = await mesh.request('http://reviews/api/reviews/1');
    seen[(await res.body.text()) as keyof typeof seen]++;
  }
  console.log(`split: 200 calls, v1 ${seen.v1}, v2 ${seen.v2}`);

  // The testers route replaces the split: canary only.
  let canary = 0;
  for (let i = 0; i < 20; i++) {
    const res = await mesh.request('http://reviews/api/reviews/1', { headers: { 'x-canary': '1' } });
    if ((await res.body.text()) === 'v2') canary++;
  }
  console.log(`testers: 20 calls with x-canary, v2 ${canary}`);

  // The reports route: 250 ms and no retry, although the instances take 1 s.
  const started = performance.now();
  try {
    const res = await mesh.request('http://reviews/api/reports/daily');
    console.log(`reports: answered ${res.statusCode}`);
  } catch (error) {
    if (!isInmeshError(error)) throw error;
    console.log(`reports: ${error.code} after ${String(Math.round((performance.now() - started) / 50) * 50)} ms (rounded to 50 ms)`);
  }
} finally {
  await mesh.close();
  for (const i of instances) {
    i.server.closeAllConnections();
    i.server.close();
  }
}
