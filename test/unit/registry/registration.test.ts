import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../../src/errors.ts';
import { checkHttpCheck, checkLabels, ConsulRegistration, detectAddress } from '../../../src/registry/consul-register.ts';
import { createRegistry } from '../../../src/registry/index.ts';

const nic = (address: string, family: 'IPv4' | 'IPv6', internal: boolean): NetworkInterfaceInfo =>
  ({ address, family, internal, netmask: '', mac: '', cidr: null, scopeid: 0 });

describe('detectAddress', () => {
  it('prefers a non-internal IPv4, then IPv6, skips link-local, falls back to loopback', () => {
    expect(detectAddress({ lo: [nic('127.0.0.1', 'IPv4', true)], eth0: [nic('fe80::1', 'IPv6', false), nic('10.1.2.3', 'IPv4', false)] })).toBe('10.1.2.3');
    expect(detectAddress({ eth0: [nic('169.254.3.4', 'IPv4', false), nic('2001:db8::5', 'IPv6', false)] })).toBe('2001:db8::5');
    expect(detectAddress({ lo: [nic('127.0.0.1', 'IPv4', true)] })).toBe('127.0.0.1');
    expect(detectAddress({})).toBe('127.0.0.1');
  });
});

describe('ConsulRegistration options (no traffic)', () => {
  it('builds a default id and validates eagerly', () => {
    const r = new ConsulRegistration({ name: 'orders', port: 8080, address: '127.0.0.1', connection: { port: 1 } });
    expect(r.id).toMatch(/^orders-.+-8080-[0-9a-f]{8}$/);
    expect(r.state).toBe('new');
    r.close();
    const bad = [
      { name: 'bad name', port: 80 },
      { name: 'ok', port: 0 },
      { name: 'ok', port: 80, address: '169.254.169.254' },
      { name: 'ok', port: 80, address: '127.0.0.1', id: 'x\ny' },
      { name: 'ok', port: 80, address: '127.0.0.1', weight: 0 },
      { name: 'ok', port: 80, address: '127.0.0.1', check: { http: 'file:///etc/passwd' } },
      { name: 'ok', port: 80, address: '127.0.0.1', check: { ttlMs: -1 } },
    ];
    for (const options of bad) expect(() => new ConsulRegistration(options)).toThrow(InvalidArgumentError);
  });

  it('createRegistry refuses unknown kinds and a file registry without a path', () => {
    expect(() => createRegistry('nope' as 'static')).toThrow(/unknown registry kind "nope"/);
    expect(() => createRegistry('file', {} as { path: string })).toThrow(/needs options.path/);
  });

  it('checks meta against Consul rules, naming every problem', () => {
    const base = { name: 'orders', port: 8080, address: '127.0.0.1', connection: { port: 1 } };
    const make = (meta: Record<string, string>, extra: Record<string, string> = {}) => () => new ConsulRegistration({ ...base, meta, ...extra });
    expect(make({ 'consul-version': '1' })).toThrow('invalid service meta: meta key "consul-version" uses the reserved prefix "consul-"');
    expect(make({ 'Consul-x': '1' })).toThrow('reserved prefix "consul-"');
    expect(make({ 'has space': '1' })).toThrow(`meta key "has space" must be 1-128 letters, digits, '_' or '-'`);
    expect(make({ ['k'.repeat(129)]: '1' })).toThrow('must be 1-128 letters');
    expect(make({ long: 'v'.repeat(513) })).toThrow('meta["long"] must be at most 512 characters, got 513');
    expect(make({}, { version: 'v'.repeat(600) })).toThrow('meta["version"] must be at most 512 characters, got 600');
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
    expect(make(many)).toThrow('invalid service meta: meta must have at most 64 keys, got 65');
    // Discovery keeps the first 64 tags of a Consul entry with more; registration never sends more.
    expect(() => new ConsulRegistration({ ...base, tags: Array.from({ length: 65 }, (_, i) => `t${i}`) })).toThrow('invalid service tags: tags must be at most 64, got 65');
    expect(() => checkLabels(undefined, { 'consul-a': 'x'.repeat(513), 'b c': '1' })).toThrow(
      `invalid service meta: meta["consul-a"] must be at most 512 characters, got 513: "${'x'.repeat(116)}...; meta key "consul-a" uses the reserved prefix "consul-"; meta key "b c" must be 1-128 letters, digits, '_' or '-'`,
    );
    expect(() => checkLabels(['t'.repeat(512)], { ok_key: 'v'.repeat(512), ['k'.repeat(128)]: '' })).not.toThrow();
    expect(() => checkLabels('v2', undefined)).toThrow('invalid service tags: tags must be a list of strings, got "v2"');
    const fine = new ConsulRegistration({ ...base, meta: Object.fromEntries(Array.from({ length: 62 }, (_, i) => [`k${i}`, 'v'])), version: '1', zone: 'a' });
    fine.close();
  });

  it('HTTP checks: the own address in any spelling the URL parser normalises, or loopback with an agent on loopback; nothing else', () => {
    expect(checkHttpCheck({ http: 'http://10.0.0.5:8080/healthz' }, '10.0.0.5', '127.0.0.1')).toEqual({ url: 'http://10.0.0.5:8080/healthz', method: 'GET' });
    expect(checkHttpCheck({ http: 'https://[2001:DB8:0::5]:8443/h', method: 'HEAD' }, '2001:db8::5', '127.0.0.1')).toEqual({ url: 'https://[2001:db8::5]:8443/h', method: 'HEAD' });
    expect(checkHttpCheck({ http: 'http://Orders.Example:80/h' }, 'orders.example', '127.0.0.1').url).toBe('http://orders.example/h');
    for (const loopback of ['http://127.0.0.1/', 'http://127.1.2.3/', 'http://[::1]/', 'http://localhost/']) expect(checkHttpCheck({ http: loopback }, '10.0.0.5', '127.0.0.1').url).toBe(loopback);
    for (const elsewhere of ['http://10.0.0.6/', 'http://[fe80::1]/', 'http://10.0.0.5.nip.io/', 'http://169.254.169.254/']) {
      expect(() => checkHttpCheck({ http: elsewhere }, '10.0.0.5', '127.0.0.1')).toThrow(/must point at the instance's own address \(10\.0\.0\.5\) or loopback/);
    }
    expect(() => checkHttpCheck({ http: 'http://u:hunter2@10.0.0.5/' }, '10.0.0.5', '127.0.0.1')).toThrow(/^check\.http must not carry credentials \(user:password@\), got "http:\/\/10\.0\.0\.5\/"$/);
    expect(() => checkHttpCheck({ http: 'nope u:hunter2@x' }, '10.0.0.5', '127.0.0.1')).toThrow('got "[userinfo]@x"');
      for (const agent of ['localhost', '::1', '[::1]', '127.0.0.2']) expect(checkHttpCheck({ http: 'http://127.0.0.1:8080/h' }, '10.0.0.5', agent).url).toBe('http://127.0.0.1:8080/h');
  });

  it('HTTP checks with an agent not on loopback: only the own address; loopback would be the agent host\'s own services', () => {
    const agent = 'consul.example';
    expect(checkHttpCheck({ http: 'http://10.0.0.5:8080/healthz' }, '10.0.0.5', agent).url).toBe('http://10.0.0.5:8080/healthz');
    for (const loopback of ['http://127.0.0.1/', 'http://127.1.2.3/', 'http://[::1]/', 'http://localhost/', 'http://LOCALHOST./']) {
      expect(() => checkHttpCheck({ http: loopback }, '10.0.0.5', agent)).toThrow(
        /^check\.http must not point at loopback when the Consul agent is not on loopback \(agent "consul\.example"\), got .*use the instance's own address \(10\.0\.0\.5\)$/,
      );
    }
    // An instance registered with a loopback address: its "own" address is the agent host's loopback too.
    expect(() => checkHttpCheck({ http: 'http://127.0.0.1:8080/h' }, '127.0.0.1', '10.0.0.9')).toThrow(/not on loopback .*\(register a non-loopback address\)$/);
    expect(() => checkHttpCheck({ http: 'http://10.0.0.6/' }, '10.0.0.5', agent)).toThrow(/^check\.http must point at the instance's own address \(10\.0\.0\.5\), got/);
    // Through a registration: the agent from its connection (nothing is sent).
    const base = { name: 'orders', port: 8080, address: '10.0.0.5' };
    expect(() => new ConsulRegistration({ ...base, connection: { host: 'consul.example', port: 1 }, check: { http: 'http://127.0.0.1:8080/h' } })).toThrow(/must not point at loopback/);
    const local = new ConsulRegistration({ ...base, connection: { port: 1 }, check: { http: 'http://127.0.0.1:8080/h' } });
    local.close();
  });

  it('a registration without a check gets the default TTL check; check: false has none', () => {
    const base = { name: 'orders', port: 8080, address: '127.0.0.1', connection: { port: 1 } };
    const r = new ConsulRegistration(base);
    expect(r.checkId).toBe(`service:${r.id}`);
    r.close();
    const none = new ConsulRegistration({ ...base, check: false });
    expect(none.checkId).toBeUndefined();
    none.close();
  });
});
