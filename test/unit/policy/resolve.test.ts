import { inspect } from 'node:util';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { InvalidPolicyError } from '../../../src/errors.ts';
import { POLICY_DEFAULTS } from '../../../src/policy/defaults.ts';
import { formatDuration, parseDuration } from '../../../src/policy/duration.ts';
import {
  defaultUpstream,
  explainPolicy,
  matchRoute,
  parseConsulHost,
  resolvePolicy,
  upstreamFor,
  upstreamOrDefault,
} from '../../../src/policy/index.ts';
import type { PolicyDocument } from '../../../src/policy/schema.ts';
import { policyIssues } from '../../../src/policy/validate.ts';

describe('durations', () => {
  it('parses Go-style strings to ms and formats them back', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('0.1s')).toBe(100);
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('1.5ms')).toBeUndefined();
    expect(parseDuration('10')).toBeUndefined();
    expect(formatDuration(90_000)).toBe('1m30s');
    expect(formatDuration(3_723_004)).toBe('1h2m3s4ms');
    expect(formatDuration(0)).toBe('0s');
  });
});

describe('resolvePolicy', () => {
  it('an empty document resolves to the built-in defaults', () => {
    const policy = resolvePolicy({ apiVersion: 'inmesh/v1' });
    const d = policy.defaults;
    expect(d.timeouts).toEqual({ connect: 5000, request: 15_000, perTry: 0, idle: 60_000 });
    expect(d.retries).toEqual({
      attempts: 2,
      retryOn: ['connect-failure', 'refused-stream', 'reset', 'gateway-error'],
      retriableStatusCodes: [],
      backoff: { base: 25, max: 250 },
      idempotentOnly: true,
      budget: { percent: 20, minConcurrency: 3 },
      maxBodyBytes: 65_536,
      maxRetryAfter: 10_000,
    });
    expect(d.outlierDetection).toEqual({
      consecutive5xx: 5,
      consecutiveGatewayErrors: 0,
      interval: 10_000,
      baseEjectionTime: 30_000,
      maxEjectionTime: 300_000,
      maxEjectionPercent: 10,
      panicThresholdPercent: 50,
    });
    expect(d.limits).toEqual({ maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRequestsPerConnection: 0 });
    expect(d.circuitBreaker).toEqual({ enabled: true, errorThresholdPercent: 50, minimumRequests: 20, window: 10_000, halfOpenAfter: 5000 });
    expect(d.loadBalancer).toEqual({ policy: 'round_robin', choiceCount: 2, hashOn: undefined, minimumRingSize: 1024, ewmaDecay: 10_000, ewmaDefaultRtt: 30 });
    expect(d.discovery).toEqual({ registry: 'consul', service: undefined, datacenter: undefined, tags: [], passingOnly: true, endpoints: [], file: undefined });
    expect(d.rateLimit).toBeUndefined();
    expect(policy.inbound).toEqual({ rateLimit: undefined, maxConcurrent: 0, timeouts: { request: 15_000 } });
    expect(policy.upstreams).toEqual({});
  });

  it('merges built-in ← defaults ← upstream ← route, field by field', () => {
    const policy = resolvePolicy({
      apiVersion: 'inmesh/v1',
      defaults: { timeouts: { connect: '2s', request: '10s' }, retries: { attempts: 3, backoff: { max: '1s' } } },
      upstreams: {
        orders: {
          timeouts: { request: '5s' },
          retries: { backoff: { base: '50ms' }, retryOn: ['5xx'] },
          routes: [{ name: 'slow', match: { pathPrefix: '/report' }, timeouts: { perTry: '1s' }, retries: { attempts: 0 } }],
        },
      },
    });
    const orders = policy.upstreams.orders!;
    expect(orders.timeouts).toEqual({ connect: 2000, request: 5000, perTry: 0, idle: 60_000 });
    expect(orders.retries.attempts).toBe(3);
    expect(orders.retries.backoff).toEqual({ base: 50, max: 1000 });
    expect(orders.retries.retryOn).toEqual(['5xx']); // arrays replace
    const route = orders.routes[0]!;
    expect(route.timeouts).toEqual({ connect: 2000, request: 5000, perTry: 1000, idle: 60_000 });
    expect(route.retries.attempts).toBe(0);
    expect(route.retries.retryOn).toEqual(['5xx']);
    expect(route.retries.backoff).toEqual({ base: 50, max: 1000 });
    expect(route.loadBalancer).toBe(orders.loadBalancer); // not overridden: shared
    expect(policy.defaults.timeouts.request).toBe(10_000);
  });

  it('discovery.service defaults to the upstream key', () => {
    const policy = resolvePolicy({ apiVersion: 'inmesh/v1', upstreams: { orders: {}, users: { discovery: { service: 'users-v2' } } } });
    expect(policy.upstreams.orders!.discovery.service).toBe('orders');
    expect(policy.upstreams.users!.discovery.service).toBe('users-v2');
    expect(policy.upstreams.orders!.name).toBe('orders');
  });

  it('budget and rateLimit: false turns an inherited block off, an object merges', () => {
    const policy = resolvePolicy({
      apiVersion: 'inmesh/v1',
      defaults: { retries: { budget: false }, rateLimit: { requestsPerSecond: 100, burst: 10 } },
      upstreams: {
        a: {},
        b: { retries: { budget: { percent: 50 } }, rateLimit: false },
        c: { rateLimit: { requestsPerSecond: 2.5 } },
      },
    });
    expect(policy.upstreams.a!.retries.budget).toBeUndefined();
    expect(policy.upstreams.a!.rateLimit).toEqual({ requestsPerSecond: 100, burst: 10, shared: false });
    expect(policy.upstreams.b!.retries.budget).toEqual({ percent: 50, minConcurrency: 3 });
    expect(policy.upstreams.b!.rateLimit).toBeUndefined();
    expect(policy.upstreams.c!.rateLimit).toEqual({ requestsPerSecond: 2.5, burst: 10, shared: false });
    const fresh = resolvePolicy({ apiVersion: 'inmesh/v1', upstreams: { d: { rateLimit: { requestsPerSecond: 2.5 } } } });
    expect(fresh.upstreams.d!.rateLimit).toEqual({ requestsPerSecond: 2.5, burst: 3, shared: false });
  });

  it('hashOn replaces as a whole, lower-cases header names, and is dropped when the policy is not ring_hash', () => {
    const policy = resolvePolicy({
      apiVersion: 'inmesh/v1',
      defaults: { loadBalancer: { policy: 'ring_hash', hashOn: { header: 'X-User' } } },
      upstreams: {
        a: { routes: [{ loadBalancer: { hashOn: { cookie: 'sid' } } }] },
        b: { loadBalancer: { policy: 'least_request' } },
      },
    });
    expect(policy.upstreams.a!.loadBalancer.hashOn).toEqual({ header: 'x-user' });
    expect(policy.upstreams.a!.routes[0]!.loadBalancer.hashOn).toEqual({ cookie: 'sid' });
    expect(policy.upstreams.a!.routes[0]!.loadBalancer.policy).toBe('ring_hash');
    expect(policy.upstreams.b!.loadBalancer.hashOn).toBeUndefined();
  });

  it('validates: an invalid document throws InvalidPolicyError naming the source', () => {
    expect(() => resolvePolicy({ apiVersion: 'inmesh/v1', upstreams: { a: { retries: { attempts: 99 } } } }, 'my.yaml')).toThrow(
      InvalidPolicyError,
    );
    expect(() => resolvePolicy({ apiVersion: 'inmesh/v1', upstreams: { a: { retries: { attempts: 99 } } } }, 'my.yaml')).toThrow(
      /^invalid my\.yaml: 1 problem\n {2}- upstreams\.a\.retries\.attempts: expected an integer from 0 to 10 \(got 99\)$/,
    );
  });

  it('is deep-frozen: mutation throws in strict mode', () => {
    const policy = resolvePolicy({ apiVersion: 'inmesh/v1', upstreams: { a: { routes: [{ match: { methods: ['GET'] } }] } } });
    expect(Object.isFrozen(policy)).toBe(true);
    expect(() => {
      (policy.defaults.timeouts as { connect: number }).connect = 1;
    }).toThrow(TypeError);
    expect(() => {
      (policy.upstreams as Record<string, unknown>).b = {};
    }).toThrow(TypeError);
    expect(() => {
      (policy.upstreams.a!.routes[0]!.match.methods as string[]).push('POST');
    }).toThrow(TypeError);
    expect(() => {
      (policy.defaults.retries.retryOn as string[])[0] = '5xx';
    }).toThrow(TypeError);
    expect(Object.isFrozen(POLICY_DEFAULTS.retries.retryOn)).toBe(false); // the source table is not shared with results
    expect(POLICY_DEFAULTS.retries.retryOn).not.toBe(policy.defaults.retries.retryOn);
  });

  it('limits.enabled: false resolves maxRequests and maxPendingRequests to Infinity (no limit layer); pool settings stay', () => {
    const policy = resolvePolicy({
      apiVersion: 'inmesh/v1',
      defaults: { limits: { enabled: false, maxRequests: 10, maxConnections: 8 } },
      upstreams: { orders: {}, users: { limits: { enabled: true } }, pay: { limits: { maxRequests: 5 } } },
    });
    const off = { maxConnections: 8, maxPendingRequests: Infinity, maxRequests: Infinity, maxRequestsPerConnection: 0 };
    expect(policy.defaults.limits).toEqual(off);
    expect(policy.upstreams.orders!.limits).toEqual(off);
    // on again in an upstream: the values written at every level apply again
    expect(policy.upstreams.users!.limits).toEqual({ maxConnections: 8, maxPendingRequests: 1024, maxRequests: 10, maxRequestsPerConnection: 0 });
    // a threshold alone does not turn an inherited `enabled: false` back on
    expect(policy.upstreams.pay!.limits.maxRequests).toBe(Infinity);
    expect(defaultUpstream(policy, 'other').limits).toEqual(off);
  });

  it('is JSON-serialisable and inspectable', () => {
    const doc: PolicyDocument = {
      apiVersion: 'inmesh/v1',
      upstreams: { a: { loadBalancer: { policy: 'ring_hash', hashOn: { header: 'x' } }, routes: [{ match: { headers: [{ name: 'x', regex: 'a+' }] } }] } },
    };
    const policy = resolvePolicy(doc);
    const round = JSON.parse(JSON.stringify(policy));
    expect(round.upstreams.a.routes[0].match.headers).toEqual([{ name: 'x', regex: 'a+' }]);
    expect(round.defaults.timeouts.request).toBe(15_000);
    expect(inspect(policy, { depth: 10 })).toContain("policy: 'ring_hash'");
  });
});

describe('explainPolicy', () => {
  it('renders YAML with durations written back as strings', () => {
    const text = explainPolicy(resolvePolicy({ apiVersion: 'inmesh/v1', upstreams: { orders: { timeouts: { request: '1m30s' } } } }));
    const view = parse(text);
    expect(view.upstreams.orders.timeouts).toEqual({ connect: '5s', request: '1m30s', perTry: '0s', idle: '1m' });
    expect(view.upstreams.orders.retries.backoff).toEqual({ base: '25ms', max: '250ms' });
    expect(view.upstreams.orders.retries.maxBodyBytes).toBe(65_536); // not a duration
    expect(view.defaults.discovery).not.toHaveProperty('service'); // unset fields left out
  });
});

describe('upstreamFor / defaultUpstream', () => {
  const policy = resolvePolicy({
    apiVersion: 'inmesh/v1',
    defaults: { timeouts: { request: '7s' }, discovery: { tags: ['prod'] } },
    upstreams: { orders: { timeouts: { request: '3s' } } },
  });

  it('finds declared upstreams, also by Consul DNS host', () => {
    expect(upstreamFor(policy, 'orders')).toBe(policy.upstreams.orders);
    expect(upstreamFor(policy, 'orders.service.consul')).toBe(policy.upstreams.orders);
    const narrowed = upstreamFor(policy, 'v2.orders.service.dc2.consul')!;
    expect(narrowed.timeouts.request).toBe(3000);
    expect(narrowed.discovery).toMatchObject({ service: 'orders', datacenter: 'dc2', tags: ['prod', 'v2'] });
    expect(upstreamFor(policy, 'v2.orders.service.dc2.consul')).toBe(narrowed); // cached
    expect(upstreamFor(policy, 'users')).toBeUndefined();
    expect(upstreamFor(policy, 'toString')).toBeUndefined();
  });

  it('applies the defaults to an undeclared name', () => {
    const users = defaultUpstream(policy, 'users');
    expect(users.name).toBe('users');
    expect(users.discovery.service).toBe('users');
    expect(users.timeouts.request).toBe(7000);
    expect(users.routes).toEqual([]);
    expect(Object.isFrozen(users.discovery)).toBe(true);
    expect(defaultUpstream(policy, 'users')).toBe(users);
    const consul = defaultUpstream(policy, 'users.service.dc1.consul');
    expect(consul.discovery).toMatchObject({ service: 'users', datacenter: 'dc1', tags: ['prod'] });
    expect(upstreamOrDefault(policy, 'orders')).toBe(policy.upstreams.orders);
    expect(upstreamOrDefault(policy, 'users')).toBe(users);
  });

  it('parses Consul DNS hosts', () => {
    expect(parseConsulHost('orders.service.consul')).toEqual({ tag: undefined, service: 'orders', datacenter: undefined });
    expect(parseConsulHost('v2.orders.service.dc1.consul')).toEqual({ tag: 'v2', service: 'orders', datacenter: 'dc1' });
    expect(parseConsulHost('orders')).toBeUndefined();
    expect(parseConsulHost('orders.example.com')).toBeUndefined();
  });
});

describe('matchRoute', () => {
  const policy = resolvePolicy({
    apiVersion: 'inmesh/v1',
    upstreams: {
      plain: {},
      orders: {
        routes: [
          { name: 'checkout', match: { pathPrefix: '/api/checkout', methods: ['POST'] }, timeouts: { request: '3s' } },
          { name: 'exact', match: { path: '/health' }, retries: { attempts: 0 } },
          { name: 'canary', match: { headers: [{ name: 'X-Canary', exact: 'true' }] }, timeouts: { request: '1s' } },
          { name: 'user', match: { headers: [{ name: 'x-user', regex: 'u[0-9]+' }, { name: 'x-debug', present: false }] }, timeouts: { request: '2s' } },
          { name: 'prefixed', match: { headers: [{ name: 'x-tenant', prefix: 'acme-' }] }, timeouts: { request: '4s' } },
          { name: 'traced', match: { headers: [{ name: 'traceparent', present: true }] }, timeouts: { request: '5s' } },
        ],
      },
    },
  });
  const orders = policy.upstreams.orders!;
  const name = (p: unknown) => (p === orders ? 'upstream' : (p as { name: string }).name);

  it('returns the upstream itself when it has no routes', () => {
    const plain = policy.upstreams.plain!;
    expect(matchRoute(plain, 'GET', '/x', { a: 'b' })).toBe(plain);
  });

  it('matches method (any case) and path prefix; query strings ignored', () => {
    expect(name(matchRoute(orders, 'POST', '/api/checkout/42'))).toBe('checkout');
    expect(name(matchRoute(orders, 'post', '/api/checkout?cart=1'))).toBe('checkout');
    expect(name(matchRoute(orders, 'GET', '/api/checkout'))).toBe('upstream');
    expect(matchRoute(orders, 'POST', '/api/checkout').timeouts.request).toBe(3000);
  });

  it('matches exact paths only exactly', () => {
    expect(name(matchRoute(orders, 'GET', '/health'))).toBe('exact');
    expect(name(matchRoute(orders, 'GET', '/health?full=1'))).toBe('exact');
    expect(name(matchRoute(orders, 'GET', '/healthz'))).toBe('upstream');
  });

  it('matches headers: exact, anchored regex, prefix, present/absent, case-insensitive names, arrays', () => {
    expect(name(matchRoute(orders, 'GET', '/', { 'x-canary': 'true' }))).toBe('canary');
    expect(name(matchRoute(orders, 'GET', '/', { 'X-Canary': 'true' }))).toBe('canary');
    expect(name(matchRoute(orders, 'GET', '/', { 'x-canary': 'yes' }))).toBe('upstream');
    expect(name(matchRoute(orders, 'GET', '/', { 'x-user': 'u42' }))).toBe('user');
    expect(name(matchRoute(orders, 'GET', '/', { 'x-user': 'xu42' }))).toBe('upstream'); // anchored
    expect(name(matchRoute(orders, 'GET', '/', { 'x-user': 'u42', 'x-debug': '1' }))).toBe('upstream'); // must be absent
    expect(name(matchRoute(orders, 'GET', '/', { 'x-tenant': ['other', 'acme-1'] }))).toBe('prefixed');
    expect(name(matchRoute(orders, 'GET', '/', { traceparent: '00-abc' }))).toBe('traced');
    expect(name(matchRoute(orders, 'GET', '/'))).toBe('upstream');
  });

  it('matches a header regex in linear time: (a+)+$ on a 30-character value returns at once', () => {
    const hostile = resolvePolicy({
      apiVersion: 'inmesh/v1',
      upstreams: { h: { routes: [{ name: 'nested', match: { headers: [{ name: 'x-v', regex: '(a+)+$' }] } }] } },
    }).upstreams.h!;
    const started = performance.now();
    // A backtracking engine takes seconds on this value (it doubles per character).
    expect(matchRoute(hostile, 'GET', '/', { 'x-v': `${'a'.repeat(30)}!` })).toBe(hostile);
    expect((matchRoute(hostile, 'GET', '/', { 'x-v': 'a'.repeat(30) }) as unknown as { name: string }).name).toBe('nested');
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('first matching route wins', () => {
    expect(name(matchRoute(orders, 'POST', '/api/checkout', { 'x-canary': 'true' }))).toBe('checkout');
  });

  it('returns the upstream object itself, not a copy, for an upstream without routes (hot loop)', () => {
    const plain = policy.upstreams.plain!;
    let same = 0;
    for (let i = 0; i < 100_000; i++) if (matchRoute(plain, 'GET', '/x') === plain) same++;
    expect(same).toBe(100_000);
  });
});

describe('user-supplied keys', () => {
  it('refuses upstreams.__proto__ at validation (JSON and YAML keep it as a key; a plain object would drop it)', () => {
    const doc = JSON.parse('{"apiVersion":"inmesh/v1","upstreams":{"__proto__":{"timeouts":{"request":"1s"}}}}') as PolicyDocument;
    expect(() => resolvePolicy(doc)).toThrow(InvalidPolicyError);
    expect(policyIssues(doc)).toContainEqual({ path: 'upstreams.__proto__', value: '__proto__', message: 'the key __proto__ is not allowed' });
    expect(policyIssues(parse('apiVersion: inmesh/v1\nupstreams:\n  __proto__: {}\n'))).toHaveLength(1);
  });

  it('an upstream named constructor is an ordinary upstream', () => {
    const policy = resolvePolicy({ apiVersion: 'inmesh/v1', upstreams: { constructor: { timeouts: { request: '1s' } } } });
    expect(upstreamFor(policy, 'constructor')?.timeouts.request).toBe(1_000);
    expect(upstreamFor(policy, 'toString')).toBeUndefined();
  });

  it('a route matching on a header named constructor neither crashes nor matches Object.prototype', () => {
    const up = resolvePolicy({
      apiVersion: 'inmesh/v1',
      upstreams: {
        a: { routes: [{ name: 'has', match: { headers: [{ name: 'constructor', exact: 'x' }] } }, { name: 'absent', match: { headers: [{ name: 'constructor', present: false }] } }] },
      },
    }).upstreams.a!;
    const name = (p: unknown) => (p as { name: string }).name;
    expect(name(matchRoute(up, 'GET', '/', {}))).toBe('absent');
    expect(name(matchRoute(up, 'GET', '/', { constructor: 'x' }))).toBe('has');
    expect(name(matchRoute(up, 'GET', '/', { Constructor: 'x' }))).toBe('has');
  });
});
