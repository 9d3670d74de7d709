import { describe, expect, it } from 'vitest';
import { evaluateCelRule, servedVersions, validateCrdObject } from '../../harness/crd-validate.ts';

const ISTIO = 'test/fixtures/istio-crds/networking.istio.io.yaml';
const GATEWAY = 'test/fixtures/gateway-api-crds/httproutes.yaml';

const destinationRule = (trafficPolicy: unknown) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'DestinationRule',
  metadata: { name: 'orders', namespace: 'default' },
  spec: { host: 'orders.default.svc.cluster.local', trafficPolicy },
});

const virtualService = (http: unknown) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'VirtualService',
  metadata: { name: 'orders', namespace: 'default' },
  spec: { hosts: ['orders'], http },
});

const httpRoute = (rules: unknown) => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name: 'orders', namespace: 'default' },
  spec: { parentRefs: [{ group: '', kind: 'Service', name: 'orders' }], rules },
});

describe('validateCrdObject: openAPIV3Schema, strict', () => {
  it('accepts valid Istio and Gateway API objects', () => {
    expect(validateCrdObject(ISTIO, destinationRule({ connectionPool: { tcp: { maxConnections: 10, connectTimeout: '0.250s' } } }))).toEqual([]);
    expect(validateCrdObject(ISTIO, virtualService([{ timeout: '2s', route: [{ destination: { host: 'orders' } }] }]))).toEqual([]);
    expect(
      validateCrdObject(GATEWAY, httpRoute([{ backendRefs: [{ name: 'orders', port: 80 }], timeouts: { request: '2s' } }])),
    ).toEqual([]);
  });

  it('refuses an unknown field, naming its path', () => {
    const problems = validateCrdObject(ISTIO, destinationRule({ connectionPool: { tcp: { maxConnectionz: 10 } } }));
    expect(problems).toContain('spec.trafficPolicy.connectionPool.tcp.maxConnectionz: unknown field');
  });

  it('refuses an unknown field in metadata and a bad name', () => {
    const obj = { ...destinationRule({}), metadata: { name: 'Orders_1', colour: 'x' } };
    const problems = validateCrdObject(ISTIO, obj);
    expect(problems).toContain('metadata.colour: unknown field');
    expect(problems.some((p) => p.startsWith('metadata.name: pattern'))).toBe(true);
  });

  it('refuses an int32 overflow and accepts its maximum', () => {
    const over = validateCrdObject(ISTIO, destinationRule({ connectionPool: { http: { http1MaxPendingRequests: 2147483648 } } }));
    expect(over.some((p) => p.startsWith('spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests: maximum'))).toBe(true);
    expect(validateCrdObject(ISTIO, destinationRule({ connectionPool: { http: { http1MaxPendingRequests: 2147483647 } } }))).toEqual([]);
  });

  it('refuses a value outside an enum, a missing required field and a oneOf with two members', () => {
    expect(validateCrdObject(ISTIO, destinationRule({ loadBalancer: { simple: 'FASTEST' } })).some((p) => p.includes('simple: must be equal to one of'))).toBe(true);
    const noHost = { ...destinationRule({}), spec: {} };
    expect(validateCrdObject(ISTIO, noHost)).toContain('spec.host: required');
    const both = virtualService([{ match: [{ uri: { exact: '/a', prefix: '/a' } }], route: [{ destination: { host: 'orders' } }] }]);
    expect(validateCrdObject(ISTIO, both).some((p) => p.startsWith('spec.http[0].match[0].uri: oneOf'))).toBe(true);
  });

  it('refuses a duplicate in a list-type map', () => {
    const rules = [{ matches: [{ headers: [{ name: 'x-a', value: '1' }, { name: 'x-a', value: '2' }] }], backendRefs: [{ name: 'orders', port: 80 }] }];
    const problems = validateCrdObject(GATEWAY, httpRoute(rules));
    expect(problems.some((p) => p.startsWith('spec.rules[0].matches[0].headers[1]: duplicate entry'))).toBe(true);
  });

  it('refuses a kind or version the CRD file does not have', () => {
    expect(validateCrdObject(ISTIO, { ...destinationRule({}), apiVersion: 'networking.istio.io/v9' })[0]).toMatch(/not in/);
    expect(servedVersions(ISTIO, 'DestinationRule')).toContain('v1');
  });
});

describe('validateCrdObject: x-kubernetes-validations (CEL)', () => {
  it("refuses Istio's 0s timeout and accepts 1ms", () => {
    const problems = validateCrdObject(ISTIO, virtualService([{ timeout: '0s', route: [{ destination: { host: 'orders' } }] }]));
    expect(problems).toEqual([expect.stringMatching(/^spec\.http\[0\]\.timeout: .*\(rule: duration\(self\) >= duration\('1ms'\)\)$/)]);
    expect(validateCrdObject(ISTIO, virtualService([{ timeout: '0.001s', route: [{ destination: { host: 'orders' } }] }]))).toEqual([]);
    const idle = validateCrdObject(ISTIO, destinationRule({ connectionPool: { http: { idleTimeout: '0s' } } }));
    expect(idle[0]).toMatch(/^spec\.trafficPolicy\.connectionPool\.http\.idleTimeout: /);
  });

  it('refuses Gateway API rules: a backendRequest timeout above the request timeout, a path with //', () => {
    const timeouts = validateCrdObject(GATEWAY, httpRoute([{ backendRefs: [{ name: 'orders', port: 80 }], timeouts: { request: '1s', backendRequest: '2s' } }]));
    expect(timeouts.some((p) => p.startsWith('spec.rules[0].timeouts: backendRequest timeout cannot be longer than request timeout'))).toBe(true);
    const path = validateCrdObject(GATEWAY, httpRoute([{ matches: [{ path: { type: 'PathPrefix', value: '/a//b' } }] }]));
    expect(path.some((p) => p.startsWith('spec.rules[0].matches[0].path: must not contain'))).toBe(true);
  });

  it('applies structural defaults before the rules (a backendRef of kind Service needs a port)', () => {
    const problems = validateCrdObject(GATEWAY, httpRoute([{ backendRefs: [{ name: 'orders' }] }]));
    expect(problems.some((p) => p.startsWith('spec.rules[0].backendRefs[0]: Must have port for Service reference'))).toBe(true);
  });

  it('fails a rule that does not compile instead of passing it', () => {
    expect(evaluateCelRule('self.size( > 1', 'x')).toMatch(/^compile error/);
    expect(evaluateCelRule("true || noSuchFunction(self)", 'x')).toMatch(/undeclared function 'noSuchFunction'/);
    expect(evaluateCelRule('true || other == 1', 'x')).toMatch(/undeclared reference to 'other'/);
    expect(evaluateCelRule('self.size()', 'x')).toMatch(/did not yield a bool/);
    expect(evaluateCelRule("self.all(k, k.startsWith('a'))", ['ab', 'ac'])).toBeUndefined();
    expect(evaluateCelRule("isURL(self)", 'https://example.com/x')).toBeUndefined();
    expect(evaluateCelRule("isURL(self)", 'not a url')).toBe('false');
  });
});
