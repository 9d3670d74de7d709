import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, InvalidPolicyError, type PolicyIssue } from '../../../src/errors.ts';
import { buildJsonSchema } from '../../../src/policy/schema.ts';
import { parsePolicy, policyIssues } from '../../../src/policy/validate.ts';

/** `inbound.…`, `resources.…`, `$schema` and `apiVersion` are written at the top of the document; anything else under `upstreams.orders`. */
function isDocumentLevel(path: string): boolean {
  return /^(inbound|resources|\$schema|apiVersion)(\.|$)/.test(path);
}

/** The full issue path of a table path. */
function fullPath(path: string): string {
  return isDocumentLevel(path) ? path : `upstreams.orders.${path}`;
}

/**
 * Sets `value` at a dotted path (`routes[0].match.headers[0].name`: a `[n]`
 * builds a list) below `root`, creating objects and lists on the way and
 * keeping whatever is already there, so siblings can be filled in first.
 */
function setAt(root: Record<string, unknown>, path: string, value: unknown): void {
  const keys: (string | number)[] = [];
  for (const segment of path.split('.')) {
    const [, name, indices] = /^([^[]+)((?:\[\d+\])*)$/.exec(segment)!;
    keys.push(name!, ...[...indices!.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1])));
  }
  let node: any = root;
  keys.slice(0, -1).forEach((key, i) => {
    node[key] ??= typeof keys[i + 1] === 'number' ? [] : {};
    node = node[key];
  });
  node[keys.at(-1)!] = value;
}

/**
 * Siblings a field needs to be valid at all (cross-field rules), filled in
 * before the value under test is set: [path pattern, sibling path, value].
 */
const SIBLINGS: [RegExp, string, unknown][] = [
  [/^rateLimit\.(burst|shared)$/, 'rateLimit.requestsPerSecond', 10],
  [/^inbound\.rateLimit\.burst$/, 'inbound.rateLimit.requestsPerSecond', 10],
  [/^resources\.cache\.rateLimit\.(burst|shared)$/, 'resources.cache.rateLimit.requestsPerSecond', 10],
  [/^loadBalancer\.hashOn\./, 'loadBalancer.policy', 'ring_hash'],
  [/^retries\.retriableStatusCodes$/, 'retries.retryOn', ['retriable-status-codes']],
  [/^discovery\.endpoints$/, 'discovery.registry', 'static'],
  [/^discovery\.file$/, 'discovery.registry', 'file'],
  [/^routes\[0\]\.match\.headers\[0\]\.(exact|prefix|regex|present)$/, 'routes[0].match.headers[0].name', 'x-user'],
  [/^routes\[0\]\.match\.headers\[0\]\.name$/, 'routes[0].match.headers[0].exact', 'a'],
];

/** A document with `value` at `path` (see isDocumentLevel) and the siblings that path needs. */
function docWith(path: string, value: unknown): Record<string, unknown> {
  const upstream: Record<string, unknown> = {};
  const doc: Record<string, unknown> = { apiVersion: 'inmesh/v1', upstreams: { orders: upstream } };
  const at = (p: string, v: unknown) => setAt(isDocumentLevel(p) ? doc : upstream, p, v);
  for (const [pattern, sibling, siblingValue] of SIBLINGS) if (pattern.test(path)) at(sibling, siblingValue);
  at(path, value);
  return doc;
}

function issuesAt(path: string, value: unknown): PolicyIssue[] {
  const full = fullPath(path);
  return policyIssues(docWith(path, value)).filter((i) => i.path === full || i.path.startsWith(`${full}[`));
}

const INT_0_10 = 'expected an integer from 0 to 10';
const PERCENT = 'expected a percentage from 0 to 100';
const DURATION = 'expected a duration such as "250ms", "10s" or "1m30s" (units h, m, s, ms)';
const BOOL = 'expected true or false';

// field path, good values, [bad value, exact message] pairs
const FIELDS: [string, unknown[], [unknown, string][]][] = [
  ['discovery.registry', ['consul'], [['etcd', 'expected one of consul, static, file']]],
  ['discovery.service', ['orders-v2'], [['', 'expected a service name'], [3, 'expected a service name']]],
  ['discovery.datacenter', ['dc1'], [['', 'expected a datacenter name']]],
  ['discovery.tags', [['v2', 'canary'], []], [['v2', 'expected a list of tags'], [[''], 'expected a tag']]],
  ['discovery.passingOnly', [true, false], [['yes', BOOL]]],
  ['discovery.endpoints', [['10.0.0.1:80', '[::1]:9000']], [['10.0.0.1:80', 'expected a list of "host:port" entries'], [['10.0.0.1'], 'expected "host:port"'], [['h:0'], 'expected "host:port" with a port from 1 to 65535']]],
  ['discovery.file', ['endpoints.yaml'], [['', 'expected a file path'], [7, 'expected a file path']]],
  ['loadBalancer.policy', ['round_robin', 'random', 'least_request', 'peak_ewma'], [['roundrobin', 'expected one of round_robin, random, least_request, ring_hash, peak_ewma']]],
  ['loadBalancer.choiceCount', [2, 100], [[1, 'expected an integer from 2 to 100'], [2.5, 'expected an integer from 2 to 100']]],
  ['loadBalancer.hashOn.header', ['x-user-id'], [['', 'expected a header name'], [3, 'expected a header name']]],
  ['loadBalancer.hashOn.cookie', ['sid'], [['', 'expected a cookie name'], [true, 'expected a cookie name']]],
  ['loadBalancer.hashOn.queryParameter', ['user'], [['', 'expected a query parameter name'], [['user'], 'expected a query parameter name']]],
  ['loadBalancer.minimumRingSize', [1, 8_388_608], [[0, 'expected an integer from 1 to 8388608']]],
  ['loadBalancer.ewma.decay', ['10s', '1ms'], [['0s', 'expected a duration from 1ms to 24h']]],
  ['loadBalancer.ewma.defaultRtt', ['0s', '1m'], [['61s', 'expected a duration from 0s to 1m']]],
  ['timeouts.connect', ['250ms', '1m30s', '1.5s'], [['0s', 'expected a duration from 1ms to 24h'], ['5', DURATION], ['25h', 'expected a duration from 1ms to 24h']]],
  ['timeouts.request', ['0s', '0', '10s'], [[10, 'numbers are not durations: write a string such as "10ms" (10 milliseconds) or "10s"'], [-1, 'numbers are not durations: write a string, and a duration must be at least "0s" (it cannot be negative)'], [1e308, 'numbers are not durations: write a string; the maximum here is "24h"'], [Infinity, 'numbers are not durations: write a string; the maximum here is "24h"'], ['10 s', DURATION], ['10sec', DURATION]]],
  ['timeouts.perTry', ['0s', '2s'], [['-1s', DURATION], ['1.5ms', 'expected a whole number of milliseconds']]],
  ['timeouts.idle', ['60s'], [['0s', 'expected a duration from 1ms to 24h'], ['1us', DURATION]]],
  ['retries.attempts', [0, 10], [[11, INT_0_10], [-1, INT_0_10], [1.5, INT_0_10], ['2', INT_0_10]]],
  ['retries.retryOn', [['5xx', 'reset'], []], [[['5xx', 'unavailable'], 'expected one of connect-failure, refused-stream, reset, 5xx, gateway-error, retriable-4xx, retriable-status-codes'], ['5xx', 'expected a list of retry conditions']]],
  ['retries.retriableStatusCodes', [[503], [400, 599]], [[503, 'expected a list of HTTP status codes'], [[600], 'expected an integer from 400 to 599'], [[399], 'expected an integer from 400 to 599'], [[200], 'expected an integer from 400 to 599'], [['503'], 'expected an integer from 400 to 599'], [[503.5], 'expected an integer from 400 to 599']]],
  ['retries.backoff.base', ['25ms', '250ms'], [['0s', 'expected a duration from 1ms to 1m'], [25, 'numbers are not durations: write a string such as "25ms" (25 milliseconds) or "10s"'], [0, 'numbers are not durations: write a string such as "1ms" (1 millisecond) or "10s"'], [-5, 'numbers are not durations: write a string, and a duration must be at least "1ms" (it cannot be negative)'], [3_600_000, 'numbers are not durations: write a string; the maximum here is "1m"']]],
  ['retries.backoff.max', ['5m'], [['6m', 'expected a duration from 1ms to 5m']]],
  ['retries.idempotentOnly', [false], [['false', BOOL]]],
  ['retries.budget', [false, {}, { percent: 20.5, minConcurrency: 0 }], [[true, 'expected false (to turn it off) or an object with percent, minConcurrency']]],
  ['retries.budget.percent', [0, 100], [[101, PERCENT], [-1, PERCENT]]],
  ['retries.budget.minConcurrency', [0], [[-1, 'expected an integer from 0 to 1000000']]],
  ['retries.maxBodyBytes', [0, 1_048_576], [[-5, 'expected an integer from 0 to 1073741824']]],
  ['retries.maxRetryAfter', ['0s', '30s'], [['forever', DURATION]]],
  ['outlierDetection.consecutive5xx', [0, 5], [[0.5, 'expected an integer from 0 to 1000000']]],
  ['outlierDetection.consecutiveGatewayErrors', [3], [[-1, 'expected an integer from 0 to 1000000']]],
  ['outlierDetection.interval', ['10s'], [['0s', 'expected a duration from 1ms to 24h']]],
  ['outlierDetection.baseEjectionTime', ['30s'], [[30, 'numbers are not durations: write a string such as "30ms" (30 milliseconds) or "10s"']]],
  ['outlierDetection.maxEjectionTime', ['5m'], [['', DURATION]]],
  ['outlierDetection.maxEjectionPercent', [0, 100], [[150, PERCENT]]],
  ['outlierDetection.panicThresholdPercent', [0, 50], [['50%', PERCENT]]],
  ['limits.enabled', [false, true], [['off', BOOL], [0, BOOL]]],
  ['limits.maxConnections', [1, 4_294_967_295], [[0, 'expected an integer from 1 to 4294967295']]],
  ['limits.maxPendingRequests', [0], [[-1, 'expected an integer from 0 to 4294967295']]],
  ['limits.maxRequests', [1], [[0, 'expected an integer from 1 to 4294967295']]],
  ['limits.maxRequestsPerConnection', [0, 100], [[1.1, 'expected an integer from 0 to 4294967295']]],
  ['circuitBreaker.enabled', [false], [[1, BOOL]]],
  ['circuitBreaker.errorThresholdPercent', [50], [[101, PERCENT]]],
  ['circuitBreaker.minimumRequests', [1], [[0, 'expected an integer from 1 to 1000000']]],
  ['circuitBreaker.window', ['10s'], [['50ms', 'expected a duration from 100ms to 1h']]],
  ['circuitBreaker.halfOpenAfter', ['5s'], [['0s', 'expected a duration from 1ms to 24h']]],
  ['rateLimit', [false, { requestsPerSecond: 0.5 }], [['fast', 'expected false (to turn it off) or an object with requestsPerSecond, burst, shared']]],
  ['rateLimit.requestsPerSecond', [100, 0.5], [[0, 'expected a number greater than 0 and at most 1000000'], [1_000_001, 'expected a number greater than 0 and at most 1000000'], ['100', 'expected a number greater than 0 and at most 1000000']]],
  ['rateLimit.burst', [1, 1_000_000], [[0, 'expected an integer from 1 to 1000000'], [2.5, 'expected an integer from 1 to 1000000']]],
  ['rateLimit.shared', [true, false], [['yes', BOOL]]],
  ['routes', [[], [{}]], [[{}, 'expected a list of routes'], [['checkout'], 'expected an object with name, match, timeouts, retries, loadBalancer, split']]],
  // Good values of these need a defined subset: the cross-field tests below cover them.
  ['subsets.v1.tags', [['v1'], []], [['v1', 'expected a list of tags'], [[''], 'expected a tag']]],
  ['subsets.v1.meta', [{ version: '2' }], [[['a'], 'expected a map of meta key to string value']]],
  ['split[0].subset', [], [[5, 'expected a subset name'], ['V1', 'expected a subset name: lower-case letters, digits and "-", at most 63 characters, starting and ending with a letter or digit']]],
  ['split[0].weight', [], [[-1, 'expected an integer from 0 to 1000000'], [1.5, 'expected an integer from 0 to 1000000'], [1_000_001, 'expected an integer from 0 to 1000000']]],
  ['routes[0].name', ['checkout'], [['', 'expected a route name'], [1, 'expected a route name']]],
  ['routes[0].match.methods', [['GET', 'POST'], ['M-SEARCH']], [['GET', 'expected a list of HTTP methods'], [['get'], 'expected an HTTP method in upper case, such as GET'], [[1], 'expected an HTTP method in upper case, such as GET']]],
  ['routes[0].match.path', ['/api/orders'], [['api', 'expected a path starting with /'], [5, 'expected a path starting with /']]],
  ['routes[0].match.pathPrefix', ['/api', '/'], [['api', 'expected a path starting with /'], ['', 'expected a path starting with /'], [5, 'expected a path starting with /']]],
  ['routes[0].match.headers', [[]], [[{ name: 'x', exact: 'a' }, 'expected a list of header matches']]],
  ['routes[0].match.headers[0].name', ['x-user', 'X-User'], [['', 'expected a header name'], [5, 'expected a header name']]],
  ['routes[0].match.headers[0].exact', ['a', ''], [[5, 'expected a string'], [null, 'expected a string']]],
  ['routes[0].match.headers[0].prefix', ['Bearer '], [['', 'expected a non-empty prefix'], [5, 'expected a non-empty prefix']]],
  ['routes[0].match.headers[0].regex', ['^v[0-9]+$'], [['', 'expected a regular expression'], [5, 'expected a regular expression']]],
  ['routes[0].match.headers[0].present', [true, false], [['true', BOOL], [1, BOOL]]],
  ['inbound.rateLimit.requestsPerSecond', [1000, 0.5], [[0, 'expected a number greater than 0 and at most 1000000'], ['fast', 'expected a number greater than 0 and at most 1000000']]],
  ['inbound.rateLimit.burst', [200], [[0, 'expected an integer from 1 to 1000000'], [1.5, 'expected an integer from 1 to 1000000']]],
  ['inbound.maxConcurrent', [0, 256], [[-1, 'expected an integer from 0 to 1000000'], [1_000_001, 'expected an integer from 0 to 1000000'], ['256', 'expected an integer from 0 to 1000000']]],
  ['inbound.timeouts.request', ['0s', '15s'], [[15, 'numbers are not durations: write a string such as "15ms" (15 milliseconds) or "10s"'], ['25h', 'expected a duration from 0s to 24h']]],
  ['resources.cache.timeouts.request', ['0s', '500ms'], [[500, 'numbers are not durations: write a string such as "500ms" (500 milliseconds) or "10s"']]],
  ['resources.cache.timeouts.perTry', ['0s', '100ms'], [['-1s', DURATION]]],
  ['resources.cache.retries.attempts', [0, 10], [[11, INT_0_10]]],
  ['resources.cache.retries.retryOn', [['ECONNRESET', 'READONLY', 'ETIMEDOUT'], []], [['ECONNRESET', 'expected a list of error codes or names'], [['no spaces'], 'expected an error code or name such as "ECONNRESET": letters, digits, "_", ".", ":", "-", at most 64 characters']]],
  ['resources.cache.retries.neverRetry', [['WRONGTYPE', '23505']], [[[7], 'expected an error code or name such as "ECONNRESET"']]],
  ['resources.cache.retries.idempotent', [true], [['yes', BOOL]]],
  ['resources.cache.retries.backoff.base', ['25ms'], [['0s', 'expected a duration from 1ms to 1m']]],
  ['resources.cache.retries.backoff.max', ['5m'], [['6m', 'expected a duration from 1ms to 5m']]],
  ['resources.cache.retries.budget', [false, {}], [[true, 'expected false (to turn it off) or an object with percent, minConcurrency']]],
  ['resources.cache.retries.budget.percent', [20], [[101, PERCENT]]],
  ['resources.cache.retries.budget.minConcurrency', [0], [[-1, 'expected an integer from 0 to 1000000']]],
  ['resources.cache.limits.enabled', [false], [['off', BOOL]]],
  ['resources.cache.limits.maxRequests', [1, 64], [[0, 'expected an integer from 1 to 4294967295']]],
  ['resources.cache.limits.maxPendingRequests', [0], [[-1, 'expected an integer from 0 to 4294967295']]],
  ['resources.cache.circuitBreaker.enabled', [true], [['on', BOOL]]],
  ['resources.cache.circuitBreaker.errorThresholdPercent', [50], [[150, PERCENT]]],
  ['resources.cache.circuitBreaker.minimumRequests', [5], [[0, 'expected an integer from 1 to 1000000']]],
  ['resources.cache.circuitBreaker.window', ['1s'], [['10ms', 'expected a duration from 100ms to 1h']]],
  ['resources.cache.circuitBreaker.halfOpenAfter', ['1s'], [['0s', 'expected a duration from 1ms to 24h']]],
  ['resources.cache.rateLimit', [false, { requestsPerSecond: 5 }], [[true, 'expected false (to turn it off) or an object with requestsPerSecond, burst, shared']]],
  ['resources.cache.rateLimit.requestsPerSecond', [100], [[0, 'expected a number greater than 0 and at most 1000000']]],
  ['resources.cache.rateLimit.burst', [10], [[0, 'expected an integer from 1 to 1000000']]],
  ['resources.cache.rateLimit.shared', [true], [['yes', BOOL]]],
  ['$schema', ['./node_modules/inmesh/dist/policy.schema.json'], [[1, 'expected a string']]],
  ['apiVersion', ['inmesh/v1'], [['inmesh/v2', 'expected "inmesh/v1"'], [1, 'expected "inmesh/v1"']]],
];

describe('parsePolicy: every field, good and bad values', () => {
  for (const [path, good, bad] of FIELDS) {
    for (const value of good) {
      it(`${path} accepts ${JSON.stringify(value)}`, () => {
        expect(policyIssues(docWith(path, value))).toEqual([]);
      });
    }
    for (const [value, message] of bad) {
      it(`${path} rejects ${JSON.stringify(value)}: ${message}`, () => {
        const issues = issuesAt(path, value);
        expect(issues.map((i) => i.message)).toContain(message);
        const issue = issues.find((i) => i.message === message)!;
        if (issue.path === fullPath(path)) expect(issue.value).toEqual(value);
        else expect(issue.value).toEqual((value as unknown[])[Number(/\[(\d+)\]$/.exec(issue.path)![1])]);
      });
    }
  }

  it('discovery.endpoints: host:port entries, with registry static', () => {
    const ok = { apiVersion: 'inmesh/v1', upstreams: { a: { discovery: { registry: 'static', endpoints: ['10.0.0.1:80', 'orders.internal:8080', '[::1]:9000'] } } } };
    expect(policyIssues(ok)).toEqual([]);
    const bad = { apiVersion: 'inmesh/v1', upstreams: { a: { discovery: { registry: 'static', endpoints: ['10.0.0.1', 'h:70000', 'h:80'] } } } };
    expect(policyIssues(bad)).toEqual([
      { path: 'upstreams.a.discovery.endpoints[0]', value: '10.0.0.1', message: 'expected "host:port"' },
      { path: 'upstreams.a.discovery.endpoints[1]', value: 'h:70000', message: 'expected "host:port" with a port from 1 to 65535' },
    ]);
  });

  it('loadBalancer.hashOn: exactly one of header, cookie, queryParameter', () => {
    const base = (hashOn: unknown) => ({ apiVersion: 'inmesh/v1', upstreams: { a: { loadBalancer: { policy: 'ring_hash', hashOn } } } });
    expect(policyIssues(base({ header: 'x-user' }))).toEqual([]);
    expect(policyIssues(base({ cookie: 'sid' }))).toEqual([]);
    expect(policyIssues(base({ queryParameter: 'user' }))).toEqual([]);
    for (const bad of [{}, { header: 'a', cookie: 'b' }]) {
      expect(policyIssues(base(bad))).toEqual([
        { path: 'upstreams.a.loadBalancer.hashOn', value: bad, message: 'expected exactly one of header, cookie, queryParameter' },
      ]);
    }
  });

  it('rateLimit.burst and shared', () => {
    const doc = { apiVersion: 'inmesh/v1', upstreams: { a: { rateLimit: { requestsPerSecond: 5, burst: 0, shared: 'yes' } } } };
    expect(policyIssues(doc)).toEqual([
      { path: 'upstreams.a.rateLimit.burst', value: 0, message: 'expected an integer from 1 to 1000000' },
      { path: 'upstreams.a.rateLimit.shared', value: 'yes', message: BOOL },
    ]);
  });

  it('routes: match fields', () => {
    const doc = {
      apiVersion: 'inmesh/v1',
      upstreams: {
        a: {
          routes: [
            { match: { methods: ['get'], path: 'api', headers: [{ name: 'x', exact: 'a', prefix: 'b' }, { name: 'y' }] } },
            { name: '', match: { pathPrefix: '/a', path: '/b' } },
          ],
        },
      },
    };
    expect(policyIssues(doc)).toEqual([
      { path: 'upstreams.a.routes[0].match.methods[0]', value: 'get', message: 'expected an HTTP method in upper case, such as GET' },
      { path: 'upstreams.a.routes[0].match.path', value: 'api', message: 'expected a path starting with /' },
      { path: 'upstreams.a.routes[0].match.headers[0]', value: { name: 'x', exact: 'a', prefix: 'b' }, message: 'expected exactly one of exact, prefix, regex, present' },
      { path: 'upstreams.a.routes[0].match.headers[1]', value: { name: 'y' }, message: 'expected exactly one of exact, prefix, regex, present' },
      { path: 'upstreams.a.routes[1].name', value: '', message: 'expected a route name' },
      { path: 'upstreams.a.routes[1].match', value: { pathPrefix: '/a', path: '/b' }, message: 'expected at most one of path, pathPrefix' },
    ]);
  });

  it('a route may only set hashOn in loadBalancer', () => {
    const doc = { apiVersion: 'inmesh/v1', upstreams: { a: { routes: [{ loadBalancer: { policy: 'random' } }] } } };
    expect(policyIssues(doc)).toEqual([
      { path: 'upstreams.a.routes[0].loadBalancer.policy', value: 'random', message: "unknown field 'policy'; expected one of hashOn" },
    ]);
  });

  it('inbound', () => {
    expect(policyIssues({ apiVersion: 'inmesh/v1', inbound: { rateLimit: { requestsPerSecond: 100, burst: 20 }, maxConcurrent: 256, timeouts: { request: '15s' } } })).toEqual([]);
    expect(policyIssues({ apiVersion: 'inmesh/v1', inbound: { rateLimit: { requestsPerSecond: 100, shared: true }, maxConcurrent: -1, timeouts: { request: 15 } } })).toEqual([
      { path: 'inbound.rateLimit.shared', value: true, message: "unknown field 'shared'; expected one of requestsPerSecond, burst" },
      { path: 'inbound.maxConcurrent', value: -1, message: 'expected an integer from 0 to 1000000' },
      { path: 'inbound.timeouts.request', value: 15, message: 'numbers are not durations: write a string such as "15ms" (15 milliseconds) or "10s"' },
    ]);
  });

  it('document level: apiVersion required, upstream names, top-level type', () => {
    expect(policyIssues({})).toEqual([{ path: 'apiVersion', value: undefined, message: 'expected "inmesh/v1"' }]);
    expect(policyIssues('apiVersion: inmesh/v1')).toEqual([
      { path: '', value: 'apiVersion: inmesh/v1', message: 'expected an object with apiVersion, defaults, upstreams, inbound, resources' },
    ]);
    expect(policyIssues({ apiVersion: 'inmesh/v1', upstreams: { 'orders api': {} } })).toEqual([
      { path: 'upstreams["orders api"]', value: 'orders api', message: 'expected an upstream name of letters, digits, ".", "_" and "-" (the host name callers use)' },
    ]);
    expect(policyIssues({ apiVersion: 'inmesh/v1', upstreams: [] })).toEqual([
      { path: 'upstreams', value: [], message: 'expected a map of upstream name to policy' },
    ]);
  });
});

type Json = Record<string, any>;

/**
 * Every node of the published JSON Schema by path (`upstreams.<name>.routes[].name`),
 * and its leaves: the fields carrying `x-inmesh-maps` (as mapping.test.ts
 * collects them) and every other node with nothing below it (`apiVersion`,
 * `$schema`, the `false` of a `false | {…}` block).
 */
function schemaPaths(schema: Json): { nodes: Map<string, Json>; leaves: Map<string, Json> } {
  const defs: Json = schema.$defs ?? {};
  const deref = (n: Json): Json => (typeof n.$ref === 'string' ? { ...defs[n.$ref.replace('#/$defs/', '')], ...n } : n);
  const nodes = new Map<string, Json>();
  const leaves = new Map<string, Json>();
  const walk = (raw: Json, path: string): void => {
    const n = deref(raw);
    if (!nodes.has(path)) nodes.set(path, n);
    const hasChildren =
      n.properties !== undefined || n.anyOf !== undefined || n.items !== undefined || typeof n.additionalProperties === 'object';
    if (n['x-inmesh-maps'] !== undefined || !hasChildren) {
      if (path !== '') leaves.set(path, n);
      return;
    }
    for (const branch of n.anyOf ?? []) walk(branch, path);
    if (n.items) walk(n.items, `${path}[]`);
    if (typeof n.additionalProperties === 'object') walk(n.additionalProperties, `${path}.<name>`);
    for (const [key, child] of Object.entries<Json>(n.properties ?? {})) walk(child, path === '' ? key : `${path}.${key}`);
  };
  walk(schema, '');
  return { nodes, leaves };
}

/**
 * The FIELDS path a schema path is tested under. `upstreams.<name>.` goes (FIELDS
 * paths are relative to an upstream); `defaults.` and a route's `routes[].`
 * go too, but only where the schema below them is identical to the upstream's
 * own (the same zod block), so a field that exists only there needs its own row.
 */
function rowKey(path: string, nodes: ReadonlyMap<string, Json>): string {
  const upstream = /^upstreams\.<name>\.(.*)$/.exec(path)?.[1];
  if (upstream !== undefined) {
    const route = /^routes\[\]\.(.*)$/.exec(upstream)?.[1];
    if (route !== undefined && isDeepStrictEqual(nodes.get(path), nodes.get(`upstreams.<name>.${route}`))) return route;
    return upstream;
  }
  const defaults = /^defaults\.(.*)$/.exec(path)?.[1];
  if (defaults !== undefined && isDeepStrictEqual(nodes.get(path), nodes.get(`upstreams.<name>.${defaults}`))) return defaults;
  return path;
}

/** Schema leaves with no FIELDS row that has a bad value. */
function untested(leafKeys: ReadonlySet<string>, rows: typeof FIELDS): string[] {
  // A subset's name is a map key: `subsets.v1.tags` tests `subsets.<name>.tags`.
  const tested = new Set(
    rows.filter(([, , bad]) => bad.length > 0).map(([path]) => path.replace(/\[\d+\]/g, '[]').replace(/^subsets\.[^.]+\./, 'subsets.<name>.').replace(/^resources\.[^.]+\./, 'resources.<name>.')),
  );
  return [...leafKeys].filter((key) => !tested.has(key)).sort();
}

describe('every leaf of the JSON Schema has bad-value rows', () => {
  const { nodes, leaves } = schemaPaths(buildJsonSchema());
  const leafKeys = new Set([...leaves.keys()].map((path) => rowKey(path, nodes)));
  const nodeKeys = new Set([...nodes.keys()].map((path) => rowKey(path, nodes)));

  it('the walk finds the leaves of upstreams, routes, header matches, inbound and the document', () => {
    expect(leaves.size).toBeGreaterThan(100);
    for (const key of [
      'retries.attempts',
      'loadBalancer.hashOn.cookie',
      'retries.budget', // the `false` of `false | {…}`
      'routes[].match.pathPrefix',
      'routes[].match.headers[].present',
      'inbound.rateLimit.burst',
      'apiVersion',
      '$schema',
    ])
      expect(leafKeys, key).toContain(key);
    // A route's retries are the upstream's block, so they collapse onto its rows…
    expect(leaves.has('upstreams.<name>.routes[].retries.attempts')).toBe(true);
    expect(leafKeys).not.toContain('routes[].retries.attempts');
    // …but a route's loadBalancer is its own block (hashOn only): its leaves collapse only because they are equal.
    expect(leafKeys).not.toContain('routes[].loadBalancer.hashOn.header');
  });

  it('every leaf has a FIELDS row with at least one bad value (a new field without one fails here)', () => {
    expect(untested(leafKeys, FIELDS)).toEqual([]);
  });

  it('every FIELDS row names a path of the schema', () => {
    const unknown = FIELDS.map(([path]) => path.replace(/\[\d+\]/g, '[]').replace(/^subsets\.[^.]+\./, 'subsets.<name>.').replace(/^resources\.[^.]+\./, 'resources.<name>.')).filter((key) => !nodeKeys.has(key));
    expect(unknown).toEqual([]);
  });

  it('the check can fail: dropping a row, or its bad values, is reported', () => {
    expect(untested(leafKeys, FIELDS.filter(([path]) => path !== 'routes[0].match.headers[0].exact'))).toEqual(['routes[].match.headers[].exact']);
    expect(untested(leafKeys, FIELDS.map(([path, good, bad]) => [path, good, path === 'retries.maxBodyBytes' ? [] : bad]))).toEqual(['retries.maxBodyBytes']);
    // a route-only field would need its own row: a route leaf differing from the upstream's is not collapsed
    const changed = new Map(nodes);
    changed.set('upstreams.<name>.routes[].timeouts.request', { ...nodes.get('upstreams.<name>.routes[].timeouts.request'), minLength: 3 });
    expect(rowKey('upstreams.<name>.routes[].timeouts.request', changed)).toBe('routes[].timeouts.request');
  });
});

describe('resources', () => {
  it('resolve with the defaults table, a breaker and a budget as an upstream\'s, and no discovery', async () => {
    const { resolvePolicy } = await import('../../../src/policy/resolve.ts');
    const { POLICY_DEFAULTS: D } = await import('../../../src/policy/defaults.ts');
    const p = resolvePolicy({ apiVersion: 'inmesh/v1', resources: { cache: { timeouts: { perTry: '100ms' }, retries: { retryOn: ['READONLY'], neverRetry: ['WRONGTYPE'] }, limits: { maxRequests: 8, maxPendingRequests: 0 } }, db: { limits: { enabled: false }, rateLimit: { requestsPerSecond: 5 } } } });
    expect(p.resources.cache).toEqual({
      name: 'cache',
      timeouts: { request: D.resources.request, perTry: 100 },
      retries: { attempts: D.resources.attempts, retryOn: ['READONLY'], neverRetry: ['WRONGTYPE'], backoff: { base: D.retries.backoffBase, max: D.retries.backoffMax }, idempotent: false, budget: { percent: D.retries.budgetPercent, minConcurrency: D.retries.budgetMinConcurrency } },
      limits: { maxRequests: 8, maxPendingRequests: 0 },
      circuitBreaker: { enabled: true, errorThresholdPercent: D.circuitBreaker.errorThresholdPercent, minimumRequests: D.circuitBreaker.minimumRequests, window: D.circuitBreaker.window, halfOpenAfter: D.circuitBreaker.halfOpenAfter },
      rateLimit: undefined,
    });
    expect(p.resources.db?.limits).toEqual({ maxRequests: Infinity, maxPendingRequests: Infinity });
    expect(p.resources.db?.rateLimit).toEqual({ requestsPerSecond: 5, burst: 5, shared: false });
    expect(Object.isFrozen(p.resources.cache?.retries.retryOn)).toBe(true);
  });

  it('bad input names the field and the value', () => {
    expect(policyIssues({ apiVersion: 'inmesh/v1', resources: { cache: { timeouts: { request: '100ms', perTry: '1s' }, rateLimit: { burst: 3 }, discovery: {} } } })).toEqual([
      { path: 'resources.cache.discovery', value: {}, message: "unknown field 'discovery'; expected one of timeouts, retries, limits, circuitBreaker, rateLimit" },
      { path: 'resources.cache.timeouts.perTry', value: '1s', message: 'timeouts.perTry (1000 ms) must not exceed timeouts.request (100 ms), which covers every try' },
      { path: 'resources.cache.rateLimit.requestsPerSecond', value: undefined, message: 'required: a rateLimit block needs requestsPerSecond' },
    ]);
    expect(policyIssues({ apiVersion: 'inmesh/v1', resources: { 'bad name': {} } })[0]).toMatchObject({ path: 'resources["bad name"]', value: 'bad name' });
  });
});

describe('parsePolicy: unknown fields', () => {
  it('suggests the closest known field', () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ retries: { atempts: 3 } }, 'upstreams.a.retries.atempts', "unknown field 'atempts'; did you mean 'attempts'?"],
      [{ timeouts: { per_try: '1s' } }, 'upstreams.a.timeouts.per_try', "unknown field 'per_try'; did you mean 'perTry'?"],
      [{ outlierDetection: { consecutive5xxErrors: 5 } }, 'upstreams.a.outlierDetection.consecutive5xxErrors', "unknown field 'consecutive5xxErrors'; did you mean 'consecutive5xx'?"],
      [{ loadbalancer: {} }, 'upstreams.a.loadbalancer', "unknown field 'loadbalancer'; did you mean 'loadBalancer'?"],
      [{ zzz: 1 }, 'upstreams.a.zzz', "unknown field 'zzz'; expected one of discovery, loadBalancer, timeouts, retries, outlierDetection, limits, circuitBreaker, rateLimit, subsets, split, routes"],
    ];
    for (const [upstream, path, message] of cases) {
      expect(policyIssues({ apiVersion: 'inmesh/v1', upstreams: { a: upstream } })).toEqual([
        { path, value: Object.values(upstream)[0] !== undefined ? (path.split('.').reduce<any>((n, k) => n?.[k], { upstreams: { a: upstream } })) : undefined, message },
      ]);
    }
  });

  it('reports unknown fields inside a `false | object` block', () => {
    expect(policyIssues({ apiVersion: 'inmesh/v1', defaults: { retries: { budget: { percnt: 10 } } } })).toEqual([
      { path: 'defaults.retries.budget.percnt', value: 10, message: "unknown field 'percnt'; did you mean 'percent'?" },
    ]);
  });

  it('at the top level too', () => {
    expect(policyIssues({ apiVersion: 'inmesh/v1', upstream: {} })).toEqual([
      { path: 'upstream', value: {}, message: "unknown field 'upstream'; did you mean 'upstreams'?" },
    ]);
  });
});

describe('parsePolicy: all problems at once', () => {
  const doc = {
    apiVersion: 'inmesh/v1',
    defaults: { timeouts: { connect: 5000 } },
    upstreams: {
      orders: { retries: { attempts: 11, atempts: 2 }, loadBalancer: { policy: 'fastest' } },
      users: { outlierDetection: { maxEjectionPercent: 120 } },
    },
  };

  it('throws one InvalidPolicyError listing every problem, with the source named', () => {
    let error: unknown;
    try {
      parsePolicy(doc, 'policy.yaml');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidPolicyError);
    const e = error as InvalidPolicyError;
    expect(e.code).toBe(ErrorCodes.INVALID_POLICY);
    expect(e.source).toBe('policy.yaml');
    expect(e.issues.map((i) => i.path).sort()).toEqual([
      'defaults.timeouts.connect',
      'upstreams.orders.loadBalancer.policy',
      'upstreams.orders.retries.atempts',
      'upstreams.orders.retries.attempts',
      'upstreams.users.outlierDetection.maxEjectionPercent',
    ]);
    expect(e.message).toContain('invalid policy.yaml: 5 problems');
    expect(e.message).toContain('  - upstreams.orders.retries.attempts: expected an integer from 0 to 10 (got 11)');
    expect(e.message).toContain('  - defaults.timeouts.connect: numbers are not durations: write a string such as "5s" (5000 milliseconds) or "10s" (got 5000)');
  });

  it('returns a validated copy of a good document', () => {
    const good = { apiVersion: 'inmesh/v1', upstreams: { a: { timeouts: { request: '2s' } } } } as const;
    const parsed = parsePolicy(good);
    expect(parsed).toEqual(good);
    expect(parsed).not.toBe(good);
  });
});

describe('parsePolicy: cross-field rules', () => {
  const up = (upstream: Record<string, unknown>, defaults?: Record<string, unknown>) => ({
    apiVersion: 'inmesh/v1',
    ...(defaults === undefined ? {} : { defaults }),
    upstreams: { a: upstream },
  });

  it('backoff.base <= backoff.max, also across levels', () => {
    expect(policyIssues(up({ retries: { backoff: { base: '1s', max: '500ms' } } }))).toEqual([
      { path: 'upstreams.a.retries.backoff.base', value: '1s', message: 'backoff.base (1000 ms) must not exceed backoff.max (500 ms)' },
    ]);
    // base from the upstream against the built-in max of 250ms
    expect(policyIssues(up({ retries: { backoff: { base: '300ms' } } }))[0]?.message).toBe(
      'backoff.base (300 ms) must not exceed backoff.max (250 ms)',
    );
    // max lowered in defaults (fine against the built-in base of 25ms), base raised in the
    // upstream: reported once, where the conflict is written
    expect(policyIssues(up({ retries: { backoff: { base: '100ms' } } }, { retries: { backoff: { max: '50ms' } } }))).toEqual([
      { path: 'upstreams.a.retries.backoff.base', value: '100ms', message: 'backoff.base (100 ms) must not exceed backoff.max (50 ms)' },
    ]);
  });

  it('baseEjectionTime <= maxEjectionTime', () => {
    expect(policyIssues(up({ outlierDetection: { baseEjectionTime: '10m' } }))).toEqual([
      { path: 'upstreams.a.outlierDetection.baseEjectionTime', value: '10m', message: 'outlierDetection.baseEjectionTime (600000 ms) must not exceed maxEjectionTime (300000 ms)' },
    ]);
  });

  it('perTry <= request when both are on', () => {
    expect(policyIssues(up({ timeouts: { perTry: '20s' } }))[0]?.message).toBe(
      'timeouts.perTry (20000 ms) must not exceed timeouts.request (15000 ms), which covers every attempt',
    );
    expect(policyIssues(up({ timeouts: { perTry: '20s', request: '0s' } }))).toEqual([]);
  });

  it('hashOn only with ring_hash, for upstreams and routes', () => {
    expect(policyIssues(up({ loadBalancer: { hashOn: { header: 'x' } } }))).toEqual([
      { path: 'upstreams.a.loadBalancer.hashOn', value: { header: 'x' }, message: 'hashOn is used only with loadBalancer.policy ring_hash (the policy here is round_robin)' },
    ]);
    expect(policyIssues(up({ loadBalancer: { policy: 'least_request' }, routes: [{ loadBalancer: { hashOn: { cookie: 'c' } } }] }))).toEqual([
      { path: 'upstreams.a.routes[0].loadBalancer.hashOn', value: { cookie: 'c' }, message: 'hashOn is used only with loadBalancer.policy ring_hash (the policy here is least_request)' },
    ]);
    expect(policyIssues(up({ loadBalancer: { policy: 'ring_hash' }, routes: [{ loadBalancer: { hashOn: { cookie: 'c' } } }] }))).toEqual([]);
  });

  it('retriable-status-codes needs codes; codes need retriable-status-codes', () => {
    expect(policyIssues(up({ retries: { retryOn: ['retriable-status-codes'] } }))).toEqual([
      { path: 'upstreams.a.retries.retriableStatusCodes', value: undefined, message: 'retryOn has retriable-status-codes, so retriableStatusCodes must list at least one status code' },
    ]);
    expect(policyIssues(up({ retries: { retriableStatusCodes: [503] } }))).toEqual([
      { path: 'upstreams.a.retries.retriableStatusCodes', value: [503], message: 'retriableStatusCodes is used only when retryOn includes retriable-status-codes' },
    ]);
    expect(policyIssues(up({ retries: { retryOn: ['retriable-status-codes'], retriableStatusCodes: [503, 429] } }))).toEqual([]);
    expect(policyIssues(up({ retries: { retriableStatusCodes: [302] } }))[0]).toEqual({
      path: 'upstreams.a.retries.retriableStatusCodes[0]', value: 302, message: 'expected an integer from 400 to 599',
    });
  });

  it('static registry needs endpoints (unless given outside the document); endpoints need static', () => {
    expect(policyIssues(up({ discovery: { registry: 'static' } }))).toEqual([
      { path: 'upstreams.a.discovery.endpoints', value: undefined, message: 'registry static needs at least one "host:port" endpoint (in the policy or in INMESH_ENDPOINTS_A)' },
    ]);
    expect(policyIssues(up({}, { discovery: { registry: 'static' } })).map((i) => i.path)).toEqual(['upstreams.a.discovery.endpoints']);
    expect(policyIssues(up({ discovery: { registry: 'static' } }), { externalEndpoints: (name) => name === 'a' })).toEqual([]);
    expect(policyIssues(up({ discovery: { endpoints: ['h:1'] } }))).toEqual([
      { path: 'upstreams.a.discovery.endpoints', value: ['h:1'], message: 'endpoints is used only with registry static (the registry here is consul)' },
    ]);
  });

  it('file registry needs a file; file needs the file registry', () => {
    expect(policyIssues(up({ discovery: { registry: 'file' } }))[0]?.message).toBe('registry file needs the path of the endpoints file');
    expect(policyIssues(up({ discovery: { file: 'x.yaml' } }))[0]?.message).toBe('file is used only with registry file (the registry here is consul)');
    expect(policyIssues(up({ discovery: { registry: 'file', file: 'x.yaml' } }))).toEqual([]);
  });

  it('discovery.service cannot be set in defaults', () => {
    expect(policyIssues({ apiVersion: 'inmesh/v1', defaults: { discovery: { service: 'x' } } })).toEqual([
      { path: 'defaults.discovery.service', value: 'x', message: "service cannot be set in defaults: it defaults to each upstream's own name" },
    ]);
  });

  it('rateLimit needs requestsPerSecond here or inherited; false stops inheritance', () => {
    expect(policyIssues(up({ rateLimit: { burst: 5 } }))[0]).toEqual({
      path: 'upstreams.a.rateLimit.requestsPerSecond', value: undefined, message: 'required: a rateLimit block needs requestsPerSecond (here or inherited from defaults)',
    });
    expect(policyIssues(up({ rateLimit: { burst: 5 } }, { rateLimit: { requestsPerSecond: 10 } }))).toEqual([]);
  });

  it('inbound.rateLimit needs requestsPerSecond: nothing to inherit it from on the server side', () => {
    expect(policyIssues({ apiVersion: 'inmesh/v1', inbound: { rateLimit: { burst: 5 } } })).toEqual([
      { path: 'inbound.rateLimit.requestsPerSecond', value: undefined, message: 'required: an inbound rateLimit block needs requestsPerSecond' },
    ]);
    expect(policyIssues({ apiVersion: 'inmesh/v1', inbound: { rateLimit: { requestsPerSecond: 5 } } })).toEqual([]);
  });

  it('route names are unique and header regexes compile', () => {
    expect(
      policyIssues(up({ routes: [{ name: 'r' }, { name: 'r', match: { headers: [{ name: 'x', regex: '([a-z' }] } }] })),
    ).toEqual([
      { path: 'upstreams.a.routes[1].name', value: 'r', message: "route names must be unique within an upstream; 'r' is used twice" },
      {
        path: 'upstreams.a.routes[1].match.headers[0].regex',
        value: '([a-z',
        message: 'not a valid RE2 regular expression: missing closing ] at position 1 (`[a-z`)',
      },
    ]);
  });

  it.each([
    ['(?<=a)b', 'invalid named capture at position 0 (`(?<=a)b`)'], // lookbehind: JavaScript has it, RE2 and Envoy do not
    ['(a)\\1', 'invalid escape sequence at position 3 (`\\1`)'], // back-reference
    ['a++', 'invalid nested repetition operator at position 1 (`++`)'], // possessive
    ['x{1001}', 'invalid repeat count at position 1 (`{1001}`)'], // RE2's repeat limit
    // The offending part occurs more than once: which one RE2 means is unknown, so no position is given.
    ['((a{100}){100}){100}', 'invalid repeat count (`{100}`)'],
    ['(?P<n>a)(?P<n>b)', 'duplicate capture group name (`n`)'],
  ])('a header regex RE2 refuses (%s) is refused with the field path and the position when it is certain', (regex, why) => {
    expect(policyIssues(up({ routes: [{ match: { headers: [{ name: 'x', regex }] } }] }))).toEqual([
      { path: 'upstreams.a.routes[0].match.headers[0].regex', value: regex, message: `not a valid RE2 regular expression: ${why}` },
    ]);
  });
});
