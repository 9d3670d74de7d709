/** Pins THE layer order of chain.ts, and that a layer whose policy is off is absent. */
import { afterEach, describe, expect, it } from 'vitest';
import { composeChain, LAYER_ORDER } from '../../../src/client/chain.ts';
import { createTelemetry } from '../../../src/telemetry/layer.ts';
import type { Handler, Layer, MeshRequest } from '../../../src/core/types.ts';
import { UpstreamRuntime } from '../../../src/client/upstream.ts';
import { createLoadBalancer } from '../../../src/balancer/balancer.ts';
import { StaticRegistry } from '../../../src/registry/static.ts';
import { toMeshRequest, EMPTY_OPTIONS } from '../../../src/client/request.ts';
import { closeAll, ok, policyFor, startServer } from './helpers.ts';

afterEach(closeAll);

const instrument = (name: string, log: string[]): Layer => (next: Handler): Handler => async (req) => {
  log.push(`${name}>`);
  try {
    return await next(req);
  } finally {
    log.push(`<${name}`);
  }
};

describe('layer order', () => {
  it('is telemetry → deadline → breaker → rateLimit → limit → retry → attemptTimeout → balance → transport', () => {
    expect(LAYER_ORDER).toEqual(['telemetry', 'deadline', 'breaker', 'rateLimit', 'limit', 'retry', 'attemptTimeout', 'balance']);
  });

  it('composeChain calls the layers in array order, first outermost', async () => {
    const log: string[] = [];
    const layers = Object.fromEntries(LAYER_ORDER.map((n: string) => [n, instrument(n, log)]));
    const chain = composeChain(layers, async () => {
      log.push('transport');
      return { statusCode: 200, headers: {}, body: undefined as never, trailers: {}, endpoint: 'e', attempts: 1 };
    });
    await chain.handler({} as MeshRequest);
    expect(log).toEqual([...LAYER_ORDER.map((n) => `${n}>`), 'transport', ...[...LAYER_ORDER].reverse().map((n: string) => `<${n}`)]);
    expect(chain.names).toEqual(LAYER_ORDER);
  });

  it('the assembled chain of an upstream holds every layer its policy turns on, in LAYER_ORDER', async () => {
    const s = await startServer(ok);
    const policy = policyFor({ orders: { endpoints: [s.address], doc: { rateLimit: { requestsPerSecond: 1000 } } } }, { timeouts: { perTry: '1s' }, circuitBreaker: { enabled: true } });
    const upstream = policy.upstreams.orders!;
    const rt = new UpstreamRuntime(upstream, {
      registry: new StaticRegistry({ services: { orders: [s.address] }, env: false }),
      createBalancer: (u) => createLoadBalancer(u.loadBalancer, u.outlierDetection),
      telemetry: createTelemetry({ enabled: true }),
    });
    try {
      expect(rt.chain.names).toEqual(LAYER_ORDER);
      const res = await rt.call(toMeshRequest(upstream, new URL('http://orders/'), { options: EMPTY_OPTIONS }));
      expect(res.statusCode).toBe(200);
      await res.body.dump();
    } finally {
      await rt.close();
    }
  });

  it('a layer whose policy is off is absent; those a call may turn on stay', async () => {
    const policy = policyFor(
      { orders: { endpoints: ['127.0.0.1:1'] } },
      { timeouts: { request: '0ms', perTry: '0ms' }, retries: { attempts: 0 }, circuitBreaker: { enabled: false }, limits: { enabled: false } },
    );
    const upstream = policy.upstreams.orders!;
    const rt = new UpstreamRuntime(upstream, {
      registry: new StaticRegistry({ services: { orders: ['127.0.0.1:1'] }, env: false }),
      createBalancer: (u) => createLoadBalancer(u.loadBalancer, u.outlierDetection),
    });
    try {
      expect(rt.chain.names).toEqual(['deadline', 'retry', 'attemptTimeout', 'balance']);
    } finally {
      await rt.close();
    }
  });
});
