// Cost of each client layer alone, without a network: ns per call around a
// handler that returns an already-resolved 200 response. Complements the
// network benchmark (run.mjs), where cache misses and GC make every layer
// look a few times more expensive than here, but where noise hides sub-µs
// differences. Run: npx node test/bench/layer-cost.ts   (N=200000 by default)
import { createLoadBalancer } from '../../src/balancer/balancer.ts';
import { createBalanceLayer } from '../../src/client/balance.ts';
import { assembleChain } from '../../src/client/chain.ts';
import { createAttemptTimeoutLayer, createDeadlineLayer } from '../../src/client/deadline.ts';
import type { Handler, Layer, MeshRequest, MeshResponse } from '../../src/core/types.ts';
import { toMeshRequest, EMPTY_OPTIONS } from '../../src/client/request.ts';
import { defaultUpstream, resolvePolicy } from '../../src/policy/index.ts';
import type { Endpoint } from '../../src/registry/types.ts';
import { createBreakerLayer } from '../../src/resilience/breaker.ts';
import { createLimitLayer } from '../../src/resilience/limits.ts';
import { createRetryLayer } from '../../src/resilience/retry.ts';

const N = Number(process.env.N ?? 200_000);
const upstream = defaultUpstream(resolvePolicy({ apiVersion: 'inmesh/v1' }), 'orders');
const url = new URL('http://orders/api/items');
const response = { statusCode: 200, headers: {}, body: undefined, trailers: {}, endpoint: '127.0.0.1:1', attempts: 1 } as unknown as MeshResponse;
const resolved = Promise.resolve(response);
const transport: Handler = () => resolved;
const request = (): MeshRequest =>
  toMeshRequest(upstream, url, { options: EMPTY_OPTIONS });

const endpoints: Endpoint[] = [1, 2, 3].map((i) => ({
  id: `e${i}`,
  address: '127.0.0.1',
  port: 1000 + i,
  tags: [],
  meta: {},
  weight: 1,
}));
const balancer = createLoadBalancer(upstream.loadBalancer, upstream.outlierDetection);
balancer.update(endpoints);

const deadlineLayer = createDeadlineLayer();
const attemptTimeoutLayer = createAttemptTimeoutLayer();
const layers: Record<string, Layer> = {
  deadline: deadlineLayer,
  breaker: createBreakerLayer(upstream, {})!,
  limit: createLimitLayer(upstream)!,
  retry: createRetryLayer(upstream),
  attemptTimeout: (next) => deadlineLayer(attemptTimeoutLayer(next)),
  balance: createBalanceLayer(upstream, { balancer }),
};

async function measure(name: string, handler: Handler, base = 0): Promise<number> {
  for (let i = 0; i < N / 10; i++) await handler(request()); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await handler(request());
  const ns = Number(process.hrtime.bigint() - t0) / N;
  console.log(`${name.padEnd(36)} ${ns.toFixed(0).padStart(6)} ns/call${base ? `   (+${(ns - base).toFixed(0)} ns)` : ''}`);
  return ns;
}

const base = await measure('no layer (request built, resolved)', transport);
for (const [name, layer] of Object.entries(layers)) await measure(name, layer(transport), base);
const all = assembleChain(upstream, { balancer }, transport);
await measure(`default chain (${all.names.join(' → ')})`, all.handler, base);
await (layers.breaker as unknown as { close(): Promise<void> }).close();
await all.close();
balancer.close();
