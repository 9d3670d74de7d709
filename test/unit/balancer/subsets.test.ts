import { describe, expect, it } from 'vitest';
import { createLoadBalancer } from '../../../src/balancer/balancer.ts';
import { inSubset, SubsetBalancers } from '../../../src/balancer/subsets.ts';
import { chooseSubset } from '../../../src/client/balance.ts';
import type { Endpoint } from '../../../src/core/types.ts';
import { resolvePolicy } from '../../../src/policy/index.ts';

function ep(port: number, tags: string[], meta: Record<string, string> = {}): Endpoint {
  return { id: `127.0.0.1:${port}`, address: '127.0.0.1', port, tags, meta, weight: 1 };
}

describe('inSubset', () => {
  it('needs every tag and every meta pair', () => {
    const e = ep(1, ['v1', 'eu'], { version: '1', zone: 'a' });
    expect(inSubset(e, { tags: ['v1'], meta: {} })).toBe(true);
    expect(inSubset(e, { tags: ['v1', 'eu'], meta: { zone: 'a' } })).toBe(true);
    expect(inSubset(e, { tags: ['v1', 'us'], meta: {} })).toBe(false);
    expect(inSubset(e, { tags: [], meta: { version: '1', zone: 'b' } })).toBe(false);
    expect(inSubset(e, { tags: [], meta: { missing: '' } })).toBe(false);
    expect(inSubset(e, { tags: [], meta: {} })).toBe(true);
  });
});

describe('chooseSubset', () => {
  const split = [
    { subset: 'a', weight: 90 },
    { subset: 'off', weight: 0 },
    { subset: 'b', weight: 10 },
  ];
  it('maps the random value onto the weights, never to a weight of 0', () => {
    expect(chooseSubset(split, () => 0)).toBe('a');
    expect(chooseSubset(split, () => 0.8999)).toBe('a');
    expect(chooseSubset(split, () => 0.9)).toBe('b');
    expect(chooseSubset(split, () => 0.99999999)).toBe('b');
    expect(chooseSubset([{ subset: 'off', weight: 0 }, { subset: 'only', weight: 3 }], () => 0)).toBe('only');
  });
});

describe('SubsetBalancers', () => {
  it('feeds each subset with its own endpoints and follows updates', () => {
    const u = resolvePolicy({
      apiVersion: 'inmesh/v1',
      upstreams: { r: { discovery: { registry: 'static', endpoints: ['127.0.0.1:1'] }, subsets: { one: { tags: ['v1'] }, two: { meta: { version: '2' } } } } },
    } as never).upstreams['r']!;
    const sb = new SubsetBalancers(u.subsets, () => createLoadBalancer(u.loadBalancer, u.outlierDetection));
    sb.update([ep(1, ['v1']), ep(2, ['v1']), ep(3, ['v2'], { version: '2' })]);
    expect(sb.get('one')?.endpoints.map((e) => e.port)).toEqual([1, 2]);
    expect(sb.get('two')?.endpoints.map((e) => e.port)).toEqual([3]);
    expect(sb.get('three')).toBeUndefined();
    sb.update([ep(1, ['v1'])]);
    expect(sb.get('two')?.endpoints).toEqual([]);
    expect(sb.get('two')?.pick()).toBeUndefined();
    sb.close();
  });
});
