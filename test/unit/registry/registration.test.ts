import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../../src/errors.ts';
import { ConsulRegistration, detectAddress } from '../../../src/registry/consul-register.ts';
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
});
