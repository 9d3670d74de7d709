/** Subsets and weighted splits: validation naming field path and value, and resolution. */
import { describe, expect, it } from 'vitest';
import { policyIssues, resolvePolicy } from '../../../src/policy/index.ts';

const discovery = { registry: 'static', endpoints: ['127.0.0.1:1'] };
const subsets = { v1: { tags: ['v1'] }, v2: { meta: { version: '2' } } };
const doc = (upstream: Record<string, unknown>) => ({ apiVersion: 'inmesh/v1', upstreams: { reviews: { discovery, subsets, ...upstream } } });

describe('split validation', () => {
  it('names an unknown subset with its path and the defined ones', () => {
    expect(policyIssues(doc({ split: [{ subset: 'v1', weight: 90 }, { subset: 'v3', weight: 10 }] }))).toEqual([
      { path: 'upstreams.reviews.split[1].subset', value: 'v3', message: "unknown subset 'v3': the subsets of this upstream are v1, v2" },
    ]);
  });

  it('checks a route split against the upstream subsets', () => {
    const issues = policyIssues(doc({ routes: [{ split: [{ subset: 'canary' }] }] }));
    expect(issues).toEqual([
      { path: 'upstreams.reviews.routes[0].split[0].subset', value: 'canary', message: "unknown subset 'canary': the subsets of this upstream are v1, v2" },
    ]);
  });

  it('refuses weights adding up to 0, a subset twice, and bad weights', () => {
    const zero = [{ subset: 'v1', weight: 0 }, { subset: 'v2', weight: 0 }];
    expect(policyIssues(doc({ split: zero }))).toEqual([
      { path: 'upstreams.reviews.split', value: zero, message: 'the weights of a split must add up to more than 0 (every weight here is 0, so no call could be sent)' },
    ]);
    expect(policyIssues(doc({ split: [{ subset: 'v1' }, { subset: 'v1' }] })).map((i) => i.path)).toEqual(['upstreams.reviews.split[1].subset']);
    expect(policyIssues(doc({ split: [{ subset: 'v1', weight: -1 }] }))[0]).toEqual({
      path: 'upstreams.reviews.split[0].weight',
      value: -1,
      message: 'expected an integer from 0 to 1000000',
    });
    expect(policyIssues(doc({ split: [] }))[0]?.message).toBe('expected at least one split entry');
  });

  it('is refused in defaults (subsets belong to one upstream)', () => {
    expect(policyIssues({ apiVersion: 'inmesh/v1', defaults: { split: [{ subset: 'v1' }] } })[0]?.path).toBe('defaults.split');
  });
});

describe('split resolution', () => {
  it('defaults weights to 1, lets a route replace the split and others inherit it', () => {
    const u = resolvePolicy(
      doc({
        split: [{ subset: 'v1', weight: 90 }, { subset: 'v2', weight: 10 }],
        routes: [{ name: 'canary', match: { path: '/c' }, split: [{ subset: 'v2' }] }, { name: 'plain', match: { path: '/p' } }],
      }) as never,
    ).upstreams.reviews!;
    expect(u.subsets.v2).toEqual({ tags: [], meta: { version: '2' } });
    expect(u.split).toEqual([{ subset: 'v1', weight: 90 }, { subset: 'v2', weight: 10 }]);
    expect(u.routes[0]!.split).toEqual([{ subset: 'v2', weight: 1 }]);
    expect(u.routes[1]!.split).toBe(u.split);
  });

  it('no split resolves to undefined', () => {
    expect(resolvePolicy(doc({}) as never).upstreams.reviews!.split).toBeUndefined();
  });
});
