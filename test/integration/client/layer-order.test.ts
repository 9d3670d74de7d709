/** Pins THE layer order of compose.ts, and that a layer whose policy is off is absent. */
import { afterEach, describe, expect, it } from 'vitest';
import { composeChain, LAYER_ORDER, type LayerName } from '../../../src/client/compose.ts';
import type { Handler, Layer, MeshRequest } from '../../../src/client/types.ts';
import { UpstreamRuntime } from '../../../src/client/upstream.ts';
import { createLoadBalancer } from '../../../src/balancer/balancer.ts';
import { StaticRegistry } from '../../../src/registry/static.ts';
import { buildMeshRequest, EMPTY_OPTIONS } from '../../../src/client/request.ts';
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
    const layers = Object.fromEntries(LAYER_ORDER.map((n) => [n, instrument(n, log)]));
    const chain = composeChain(layers, async () => {
      log.push('transport');
      return { statusCode: 200, headers: {}, body: undefined as never, trailers: {}, endpoint: 'e', attempts: 1 };
    });
    await chain.handler({} as MeshRequest);
    expect(log).toEqual([...LAYER_ORDER.map((n) => `${n}>`), 'transport', ...[...LAYER_ORDER].reverse().map((n) => `<${n}`)]);
    expect(chain.names).toEqual(LAYER_ORDER);
  });

  it('the real chain of an upstream runs the external layers at their places around the built-in ones', async () => {
    const s = await startServer(ok);
    const policy = policyFor({ orders: { endpoints: [s.address] } }, { timeouts: { perTry: '1s' } });
    const upstream = policy.upstreams.orders!;
    const log: string[] = [];
    // a layer that records which built-in layers already ran (deadline fixed, endpoint picked)
    const probe = (name: string): Layer => (next) => async (req) => {
      log.push(`${name}:deadline=${req.deadline !== Infinity}:endpoint=${req.endpoint !== undefined}`);
      return next(req);
    };
    const rt = new UpstreamRuntime(upstream, {
      registry: new StaticRegistry({ services: { orders: [s.address] }, env: false }),
      createBalancer: (u) => createLoadBalancer(u.loadBalancer, u.outlierDetection),
      layers: { telemetry: probe('telemetry'), breaker: probe('breaker'), rateLimit: probe('rateLimit'), limit: probe('limit') },
    });
    try {
      const req = buildMeshRequest(upstream, new URL('http://orders/'), { method: 'GET', headers: {}, body: null, signal: undefined, options: EMPTY_OPTIONS });
      const res = await rt.call(req);
      await res.body.dump();
      expect(log).toEqual([
        'telemetry:deadline=false:endpoint=false',
        'breaker:deadline=true:endpoint=false',
        'rateLimit:deadline=true:endpoint=false',
        'limit:deadline=true:endpoint=false',
      ]);
      const names: readonly LayerName[] = rt.chain(7).names;
      expect(names).toEqual(LAYER_ORDER);
    } finally {
      await rt.close();
    }
  });

  it('a layer whose policy is off is absent', async () => {
    const policy = policyFor({ orders: { endpoints: ['127.0.0.1:1'] } }, { timeouts: { request: '0ms', perTry: '0ms' }, retries: { attempts: 0 } });
    const upstream = policy.upstreams.orders!;
    const rt = new UpstreamRuntime(upstream, {
      registry: new StaticRegistry({ services: { orders: ['127.0.0.1:1'] }, env: false }),
      createBalancer: (u) => createLoadBalancer(u.loadBalancer, u.outlierDetection),
      layers: {},
    });
    try {
      expect(rt.chain(0).names).toEqual(['balance']);
      expect(rt.chain(2).names).toEqual(['retry', 'balance']);
      expect(rt.chain(4).names).toEqual(['attemptTimeout', 'balance']);
      expect(rt.chain(5).names).toEqual(['deadline', 'attemptTimeout', 'balance']);
      expect(rt.chain(0)).toBe(rt.chain(0)); // built once
    } finally {
      await rt.close();
    }
  });
});
