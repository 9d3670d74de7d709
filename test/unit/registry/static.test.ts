import { describe, expect, it } from 'vitest';
import { ErrorCodes, InvalidPolicyError } from '../../../src/errors.ts';
import { createRegistry, envVariableFor, StaticRegistry } from '../../../src/registry/index.ts';
import { EndpointRecorder, ids } from '../../harness/registry-helpers.ts';

describe('StaticRegistry', () => {
  it('serves lists from code, with tags filtering', async () => {
    const r = new StaticRegistry({
      env: false,
      services: { orders: ['127.0.0.1:8080', { address: '127.0.0.1', port: 8081, tags: ['v2'], id: 'o2' }, '127.0.0.1:8080'] },
    });
    expect(ids(await r.resolve({ service: 'orders' }))).toEqual(['127.0.0.1:8080', 'o2']);
    expect(ids(await r.resolve({ service: 'orders', tags: ['v2'] }))).toEqual(['o2']);
    expect(await r.resolve({ service: 'unknown' })).toEqual([]);
    expect(r.has('orders')).toBe(true);
    await r.close();
  });

  it('reads INMESH_ENDPOINTS_<SERVICE>; code wins', async () => {
    expect(envVariableFor('payment-api.v1')).toBe('INMESH_ENDPOINTS_PAYMENT_API_V1');
    const r = createRegistry('static', {
      env: { INMESH_ENDPOINTS_PAYMENT_API: '127.0.0.1:9000, [::1]:9001', INMESH_ENDPOINTS_ORDERS: '127.0.0.1:1' },
      services: { orders: ['127.0.0.1:2'] },
    });
    expect(ids(await r.resolve({ service: 'payment-api' }))).toEqual(['127.0.0.1:9000', '[::1]:9001']);
    expect(ids(await r.resolve({ service: 'orders' }))).toEqual(['127.0.0.1:2']);
  });

  it('names the variable and the bad entry, for every problem at once', () => {
    let error: unknown;
    try {
      new StaticRegistry({
        env: { INMESH_ENDPOINTS_ORDERS: '127.0.0.1:8080,169.254.169.254:80,nohost', INMESH_ENDPOINTS_X: '10.0.0.1:70000' },
        services: { users: ['10.0.0.1:80', { address: '10.0.0.1\r\n', port: 1 }] },
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidPolicyError);
    const e = error as InvalidPolicyError;
    expect(e.code).toBe(ErrorCodes.INVALID_CONFIG);
    expect(e.issues.map((i) => i.path)).toEqual(['services.users[1]', 'INMESH_ENDPOINTS_ORDERS[1]', 'INMESH_ENDPOINTS_ORDERS[2]', 'INMESH_ENDPOINTS_X[0]']);
    expect(e.message).toContain('INMESH_ENDPOINTS_ORDERS[1]: a cloud metadata address (169.254.169.254)');
    expect(e.message).toContain('"169.254.169.254:80"');
    expect(e.message).toContain('INMESH_ENDPOINTS_ORDERS[2]: expected host:port (got "nohost")');
    expect(e.message).toContain('INMESH_ENDPOINTS_X[0]: port must be an integer 1-65535');
  });

  it('an entry written for inmesh with more than 64 tags is refused (only Consul entries keep their first 64)', () => {
    const tags = Array.from({ length: 65 }, (_, i) => `t${i}`);
    let error: unknown;
    try {
      new StaticRegistry({ env: false, services: { users: [{ address: '10.0.0.1', port: 80, tags }] } });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidPolicyError);
    expect((error as InvalidPolicyError).issues.map((i) => [i.path, i.message])).toEqual([['services.users[0]', 'tags must be at most 64, got 65']]);
  });

  it('refuses an endpoint with user:password@ without repeating the password anywhere', () => {
    let error: unknown;
    try {
      new StaticRegistry({
        env: { INMESH_ENDPOINTS_ORDERS: 'user:hunter2@10.0.0.1:80' },
        services: { users: [{ address: 'admin:hunter2@10.0.0.2', port: 80 }, 'p@ss:hunter2@[::1]:80'], other: 'x:hunter2@10.0.0.3:80' as unknown as string[] },
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidPolicyError);
    const e = error as InvalidPolicyError;
    expect(e.issues.map((i) => i.path)).toEqual(['services.users[0]', 'services.users[1]', 'services.other', 'INMESH_ENDPOINTS_ORDERS[0]']);
    expect(e.message).toContain(
      'INMESH_ENDPOINTS_ORDERS[0]: an endpoint must not carry credentials (user:password@): write host:port (got "[userinfo]@10.0.0.1:80")',
    );
    expect(e.message).toContain('services.users[0]: address must not carry credentials (user:password@): "[userinfo]@10.0.0.2"');
    expect(e.message).toContain('services.users[1]: an endpoint must not carry credentials');
    for (const text of [e.message, JSON.stringify(e.issues), String(e.stack)]) expect(text).not.toContain('hunter2');
  });

  it('calls a listener with the initial set after subscribe() returns, and shares one watch per query', async () => {
    const r = new StaticRegistry({ env: false, services: { a: ['127.0.0.1:1'] } });
    const rec = new EndpointRecorder();
    let returned = false;
    const sub = r.subscribe({ service: 'a' }, (e) => {
      expect(returned).toBe(true);
      rec.listener(e);
    });
    returned = true;
    await rec.until((e) => e.length === 1);
    expect(sub.staleness()).toBe(0);
    await sub.ready();
    // A second subscriber to the same query (tags in another order, duplicated) joins the same watch:
    // both see the one frozen set that watch holds. Another query has a watch of its own.
    const tagged = new StaticRegistry({ env: false, services: { a: [{ address: '127.0.0.1', port: 1, tags: ['x', 'y'] }] } });
    const first = tagged.subscribe({ service: 'a', tags: ['x', 'y'] }, () => undefined);
    const second = tagged.subscribe({ service: 'a', tags: ['y', 'x', 'y'] }, () => undefined);
    const other = tagged.subscribe({ service: 'a', tags: ['x'] }, () => undefined);
    await Promise.all([first.ready(), second.ready(), other.ready()]);
    expect(first.endpoints).toHaveLength(1);
    expect(second.endpoints).toBe(first.endpoints);
    expect(other.endpoints).toEqual(first.endpoints);
    expect(other.endpoints).not.toBe(first.endpoints);
    // The shared watch outlives one of its subscribers, and a new subscriber joins it.
    first.close();
    const third = tagged.subscribe({ service: 'a', tags: ['x', 'y'] }, () => undefined);
    expect(third.endpoints).toBe(second.endpoints);
    for (const s of [second, third, other]) s.close();
    await tagged.close();
    sub.close();
    await r.close();
    expect(() => r.subscribe({ service: 'a' }, () => undefined)).toThrow(/closed/);
  });
});
