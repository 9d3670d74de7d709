import { describe, expect, it } from 'vitest';
import { canonicalEndpoints, checkAddress, isStrictHostname, labelProblems, parseHostPort, validateEndpoint } from '../../../src/registry/validate.ts';

describe('validateEndpoint', () => {
  it.each([
    ['10.0.0.5', undefined],
    ['2001:db8::1', undefined],
    ['orders.service.consul', undefined],
    ['a-b.example', undefined],
    ['localhost', undefined],
    ['169.254.169.254', /metadata/],
    ['169.254.10.1', /link-local/],
    ['fe80::1', /link-local/],
    ['FE80::abcd', /link-local/],
    ['fd00:ec2::254', /metadata/],
    ['::ffff:169.254.169.254', /metadata.*IPv6/],
    ['metadata.google.internal', /metadata/],
    ['METADATA.GOOGLE.INTERNAL.', /metadata/],
    ['0.0.0.0', /unspecified/],
    ['::', /unspecified/],
    ['10.0.0.5\r\nHost: evil', /characters/],
    ['a b', /characters/],
    ['user@host', /must not carry credentials/],
    ['host/path', /characters/],
    ['fe80::1%eth0', /characters/],
    ['169.254.43518', /neither/],
    ['0xa9.0xfe.0xa9.0xfe', /neither/],
    ['-bad.example', /neither/],
    ['', /missing/],
    [42, /missing/],
  ])('address %j', (address, expected) => {
    const problem = checkAddress(address);
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(expected);
  });

  it('accepts link-local and metadata addresses only with allowLinkLocal', () => {
    expect(checkAddress('169.254.169.254', { allowLinkLocal: true })).toBeUndefined();
    expect(checkAddress('fe80::1', { allowLinkLocal: true })).toBeUndefined();
    expect(checkAddress('0.0.0.0', { allowLinkLocal: true })).toMatch(/unspecified/);
  });

  it.each([0, -1, 70000, 1.5, '80', Number.NaN, null])('refuses port %j', (port) => {
    const r = validateEndpoint({ address: '10.0.0.1', port });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(/port must be an integer 1-65535/);
  });

  it('builds a frozen endpoint with defaults', () => {
    const r = validateEndpoint({ address: '10.0.0.1', port: 80, tags: ['a'], meta: { zone: 'z' }, weight: 0 });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.endpoint).toEqual({ id: '10.0.0.1:80', address: '10.0.0.1', port: 80, tags: ['a'], meta: { zone: 'z' }, weight: 1, zone: 'z' });
    expect(Object.isFrozen(r.endpoint)).toBe(true);
    const v6 = validateEndpoint({ address: '::1', port: 80 });
    expect(v6.ok && v6.endpoint.id).toBe('[::1]:80');
  });

  it('refuses dirty ids, tags and meta, and escapes them in the reason', () => {
    const r = validateEndpoint({ id: 'x\r\ny', address: '10.0.0.1', port: 80 });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).not.toMatch(/[\r\n]/);
    expect(validateEndpoint({ address: '10.0.0.1', port: 80, tags: 'a' }).ok).toBe(false);
    expect(validateEndpoint({ address: '10.0.0.1', port: 80, meta: { a: 1 } }).ok).toBe(false);
  });

  it('tags and meta: one set of rules (labelProblems) that discovery applies to every entry', () => {
    const bad: [unknown, unknown, RegExp][] = [
      [['a\r\nb'], undefined, /^tags\[0\] must not contain control characters .*: "a\\r\\nb"$/],
      [['x'.repeat(10_240)], undefined, /^tags\[0\] must be at most 512 characters, got 10240: "x+\.\.\.$/],
      [undefined, { k: 'nul\u0000' }, /^meta\["k"\] must not contain control characters/],
      [undefined, JSON.parse('{"__proto__":"x"}'), /^meta\["__proto__"\]: the key "__proto__" is refused$/],
      [undefined, Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])), /^meta must have at most 64 keys, got 65$/],
      [undefined, { k: 1 }, /^meta\["k"\] must be a string, got number: 1$/],
    ];
    for (const [tags, meta, reason] of bad) {
      expect(labelProblems(tags, meta)[0]).toMatch(reason);
      const r = validateEndpoint({ address: '10.0.0.1', port: 80, tags, meta });
      expect(r.ok ? 'accepted' : r.reason).toMatch(reason);
    }
    const tags = Array.from({ length: 64 }, (_, i) => `${i}`.padEnd(512, 't'));
    const meta = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, 'v'.repeat(512)]));
    expect(labelProblems(tags, meta)).toEqual([]);
    const ok = validateEndpoint({ address: '10.0.0.1', port: 80, tags, meta });
    expect(ok.ok && ok.endpoint.tags.length).toBe(64);
    expect(ok.ok && ok.tagsCut).toBeUndefined();
  });

  it('more than 64 tags: registration refuses them, discovery keeps the entry with its first 64 and says how many went', () => {
    const tags = Array.from({ length: 70 }, (_, i) => `t${i}`);
    expect(labelProblems(tags, undefined)).toEqual(['tags must be at most 64, got 70']);
    const r = validateEndpoint({ address: '10.0.0.1', port: 80, tags });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.endpoint.tags).toEqual(tags.slice(0, 64));
    expect(r.tagsCut).toBe(6);
    // Only the kept tags are checked: a bad one past the first 64 is never read; one among them still refuses the entry.
    expect(validateEndpoint({ address: '10.0.0.1', port: 80, tags: [...tags.slice(0, 64), 'bad\n'] }).ok).toBe(true);
    const early = validateEndpoint({ address: '10.0.0.1', port: 80, tags: ['bad\n', ...tags] });
    expect(early.ok ? 'accepted' : early.reason).toMatch(/^tags\[0\] must not contain control characters/);
  });

  it('strict host names', () => {
    expect(isStrictHostname('a'.repeat(63) + '.example')).toBe(true);
    expect(isStrictHostname('a'.repeat(64) + '.example')).toBe(false);
    expect(isStrictHostname('under_score.example')).toBe(false);
    expect(isStrictHostname('1.2.3')).toBe(false);
  });
});

describe('parseHostPort', () => {
  it('parses host:port and [v6]:port only', () => {
    expect(parseHostPort('10.0.0.1:80')).toEqual({ address: '10.0.0.1', port: 80 });
    expect(parseHostPort(' [::1]:8080 ')).toEqual({ address: '::1', port: 8080 });
    expect(parseHostPort('::1:80')).toHaveProperty('error');
    expect(parseHostPort('host')).toHaveProperty('error');
    expect(parseHostPort('host:80x')).toHaveProperty('error');
    expect(parseHostPort('host:')).toHaveProperty('error');
  });
});

describe('canonicalEndpoints', () => {
  it('ignores order of endpoints, tags and meta keys', () => {
    const a = validateEndpoint({ id: 'a', address: '10.0.0.1', port: 1, tags: ['x', 'y'], meta: { p: '1', q: '2' } });
    const b = validateEndpoint({ id: 'b', address: '10.0.0.2', port: 2 });
    const a2 = validateEndpoint({ id: 'a', address: '10.0.0.1', port: 1, tags: ['y', 'x'], meta: { q: '2', p: '1' } });
    if (!a.ok || !b.ok || !a2.ok) throw new Error('setup');
    expect(canonicalEndpoints([a.endpoint, b.endpoint])).toBe(canonicalEndpoints([b.endpoint, a2.endpoint]));
    const c = validateEndpoint({ id: 'a', address: '10.0.0.1', port: 1, weight: 2, tags: ['x', 'y'], meta: { p: '1', q: '2' } });
    if (!c.ok) throw new Error('setup');
    expect(canonicalEndpoints([c.endpoint, b.endpoint])).not.toBe(canonicalEndpoints([a.endpoint, b.endpoint]));
  });
});
