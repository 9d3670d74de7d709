import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { explainPolicy, parsePolicy, resolvePolicy } from '../../../src/policy/index.ts';

function roundTrip(doc: unknown) {
  const resolved = resolvePolicy(parsePolicy(doc, 'test policy'), 'test policy');
  const explained = explainPolicy(resolved);
  const again = resolvePolicy(parsePolicy(parse(explained), 'explained policy'), 'explained policy');
  return { resolved, again, explained };
}

describe('explainPolicy', () => {
  it('prints a document that validates and resolves to the same policy (defaults only)', () => {
    const { resolved, again } = roundTrip({ apiVersion: 'inmesh/v1' });
    expect(again).toEqual(resolved);
  });

  it('round-trips resources: classification lists, limits off, no budget, a shared rate limit', () => {
    const { resolved, again, explained } = roundTrip({
      apiVersion: 'inmesh/v1',
      resources: {
        cache: { timeouts: { perTry: '100ms' }, retries: { retryOn: ['READONLY'], neverRetry: ['WRONGTYPE'], idempotent: true, budget: false } },
        queue: { limits: { enabled: false }, rateLimit: { requestsPerSecond: 50, shared: true }, circuitBreaker: { enabled: false } },
      },
    });
    expect(again).toEqual(resolved);
    expect(explained).toContain('neverRetry:');
  });

  it('round-trips routes, header matches, hashing, limits off, no budget and rate limits', () => {
    const { resolved, again, explained } = roundTrip({
      apiVersion: 'inmesh/v1',
      defaults: { retries: { budget: false }, limits: { enabled: false } },
      upstreams: {
        orders: {
          discovery: { registry: 'consul', service: 'orders-v2', tags: ['v2'], datacenter: 'dc2' },
          loadBalancer: { policy: 'ring_hash', hashOn: { header: 'x-user' }, minimumRingSize: 64 },
          timeouts: { request: '3s', perTry: '500ms' },
          retries: { attempts: 1, retryOn: ['retriable-status-codes'], retriableStatusCodes: [409, 503] },
          rateLimit: { requestsPerSecond: 50, burst: 10 },
          routes: [
            {
              name: 'checkout',
              match: {
                pathPrefix: '/api/checkout',
                methods: ['POST'],
                headers: [
                  { name: 'x-canary', present: false },
                  { name: 'x-tenant', regex: 'a[0-9]+' },
                ],
              },
              timeouts: { request: '1s' },
              loadBalancer: { hashOn: { cookie: 'session' } },
            },
            { match: { path: '/health' }, retries: { attempts: 0 } },
          ],
        },
        payments: { discovery: { registry: 'static', endpoints: ['127.0.0.1:8443'] }, circuitBreaker: { enabled: false } },
      },
      inbound: { maxConcurrent: 64, rateLimit: { requestsPerSecond: 100 }, timeouts: { request: '2s' } },
    });
    expect(again).toEqual(resolved);
    // The document form, not the resolved one: no `name` on upstreams, ewma as its block, limits off as enabled: false.
    const doc = parse(explained) as { upstreams: Record<string, Record<string, unknown>>; defaults: Record<string, Record<string, unknown>> };
    expect(doc.upstreams.orders).not.toHaveProperty('name');
    expect(doc.defaults.loadBalancer).toHaveProperty('ewma');
    expect(doc.defaults.limits).toEqual(expect.objectContaining({ enabled: false }));
  });
});
