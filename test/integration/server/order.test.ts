// The inbound chain's one order (INBOUND_ORDER), pinned by name and by what each
// neighbouring pair of stages does to the other.
import { createServer } from 'node:http';
import { SpanKind } from '@opentelemetry/api';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createMesh, type Mesh } from '../../../src/mesh/mesh.ts';
import type { PolicyDocument } from '../../../src/policy/index.ts';
import { INBOUND_ORDER } from '../../../src/server/inbound.ts';
import { registerOtel, type OtelHarness } from '../../unit/telemetry/otel-harness.ts';
import { Holds, client, close, listen } from './helpers.ts';

let otel: OtelHarness;
beforeAll(() => {
  otel = registerOtel();
});
afterAll(() => otel.shutdown());

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  otel.reset();
});

async function serve(inbound: PolicyDocument['inbound'], holds: Holds): Promise<{ base: string; mesh: Mesh }> {
  const mesh = createMesh({ policy: { apiVersion: 'inmesh/v1', inbound }, env: {} });
  const server = createServer(
    mesh.server(async (req, res) => {
      if (req.url === '/hold') await holds.hold();
      res.end('app');
    }),
  );
  const base = await listen(server);
  const c = client();
  cleanup.push(() => mesh.close(), () => close(server), () => c.close());
  return { base, mesh };
}

it('is health → telemetry → deadline → rateLimit → concurrency → timeout', () => {
  expect(INBOUND_ORDER).toEqual(['health', 'telemetry', 'deadline', 'rateLimit', 'concurrency', 'timeout']);
});

it('health first: probes are answered with every slot taken and the bucket empty, and are not traced', async () => {
  const holds = new Holds();
  const { base } = await serve({ maxConcurrent: 1, rateLimit: { requestsPerSecond: 0.1, burst: 1 } }, holds);
  const c = client();
  cleanup.push(() => c.close());
  const held = c.get(`${base}/hold`);
  await holds.arrived(1);
  expect((await c.get(`${base}/x`)).status).toBe(429);
  expect((await c.get(`${base}/readyz`)).status).toBe(200);
  expect((await c.get(`${base}/livez`)).status).toBe(200);
  holds.release();
  await held;
  const spans = (await otel.spansWhen((s) => s.filter((x) => x.kind === SpanKind.SERVER).length >= 2)).filter((x) => x.kind === SpanKind.SERVER);
  expect(spans.map((s) => s.attributes['url.path']).sort()).toEqual(['/hold', '/x']);
});

it('telemetry before deadline: an expired request is answered and traced as deadline_expired', async () => {
  const { base } = await serve({}, new Holds());
  const c = client();
  cleanup.push(() => c.close());
  expect((await c.get(`${base}/x`, { 'x-inmesh-deadline-ms': '0' })).status).toBe(504);
  const [span] = (await otel.spansWhen((s) => s.some((x) => x.kind === SpanKind.SERVER))).filter((x) => x.kind === SpanKind.SERVER);
  expect(span?.attributes).toMatchObject({ 'inmesh.inbound.refusal': 'deadline_expired', 'error.type': 'INMESH_ERR_TIMEOUT', 'http.response.status_code': 504 });
});

it('deadline before rateLimit: an expired request spends no token', async () => {
  const { base } = await serve({ rateLimit: { requestsPerSecond: 0.1, burst: 1 } }, new Holds());
  const c = client();
  cleanup.push(() => c.close());
  expect((await c.get(`${base}/x`, { 'grpc-timeout': '0S' })).status).toBe(504);
  expect((await c.get(`${base}/x`)).status).toBe(200); // the one token was still there
  expect((await c.get(`${base}/x`)).status).toBe(429);
});

it('rateLimit before concurrency: over both limits the answer is 429, and a refused request holds no slot', async () => {
  const holds = new Holds();
  const { base } = await serve({ maxConcurrent: 1, rateLimit: { requestsPerSecond: 0.1, burst: 2 } }, holds);
  const c = client();
  cleanup.push(() => c.close());
  const held = c.get(`${base}/hold`);
  await holds.arrived(1);
  expect((await c.get(`${base}/x`)).status).toBe(503); // a token, but no slot
  expect((await c.get(`${base}/x`)).status).toBe(429); // neither: the rate limit answers first
  holds.release();
  await held;
});

it('concurrency before timeout: a shed request is answered at once, not at its timeout', async () => {
  const holds = new Holds();
  const { base } = await serve({ maxConcurrent: 1, timeouts: { request: '10s' } }, holds);
  const c = client();
  cleanup.push(() => c.close());
  const held = c.get(`${base}/hold`);
  await holds.arrived(1);
  const started = performance.now();
  expect((await c.get(`${base}/x`)).status).toBe(503);
  expect(performance.now() - started).toBeLessThan(5_000);
  holds.release();
  expect((await held).status).toBe(200);
});
