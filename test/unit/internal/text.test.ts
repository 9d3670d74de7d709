import { describe, expect, it } from 'vitest';
import { hasControlCharacter, replaceControlCharacters } from '../../../src/internal/control-characters.ts';
import { hideUserinfo } from '../../../src/internal/userinfo.ts';
import { describeValue } from '../../../src/internal/describe.ts';

describe('hideUserinfo', () => {
  it.each([
    ['https://admin:hunter2@consul.internal:8501', 'https://[userinfo]@consul.internal:8501'],
    ['redis://:hunter2@127.0.0.1:6379/0', 'redis://[userinfo]@127.0.0.1:6379/0'],
    ['admin:hunter2@consul:8500', '[userinfo]@consul:8500'],
    // Careless values: a password with `/`, `@` or a space is hidden whole, as is anything before it.
    ['http://u:pa/ss@host', 'http://[userinfo]@host'],
    ['http://u:p@ss@host', 'http://[userinfo]@host'],
    ['nope u:hun ter2@x', '[userinfo]@x'],
    ['@host', '[userinfo]@host'],
    ['consul.internal:8500', 'consul.internal:8500'],
    ['https://consul.internal/', 'https://consul.internal/'],
  ])('%s -> %s', (text, shown) => {
    expect(hideUserinfo(text)).toBe(shown);
    expect(hideUserinfo(text)).not.toMatch(/hunter2|pa\/ss|p@ss|hun ter2/);
  });
});

describe('control characters', () => {
  it('C0 and DEL are control characters; space, tab-free text and non-ASCII are not', () => {
    for (const c of ['\u0000', '\t', '\n', '\r', '\u001b', '\u001f', '\u007f']) expect(hasControlCharacter(`a${c}b`)).toBe(true);
    for (const text of ['', 'a b', '~', 'é', '\u0080', 'token-123']) expect(hasControlCharacter(text)).toBe(false);
  });

  it('replaces every one, by a string or per character', () => {
    expect(replaceControlCharacters('a\r\nb\u007f', ' ')).toBe('a  b ');
    expect(replaceControlCharacters('a\nb\n', (c) => `<${c.charCodeAt(0)}>`)).toBe('a<10>b<10>');
  });
});

describe('describeValue', () => {
  it('shows NaN and Infinity as themselves (JSON would write null), plain data as JSON', () => {
    expect(describeValue(Number.NaN)).toBe('NaN');
    expect(describeValue(Infinity)).toBe('Infinity');
    expect(describeValue(-Infinity)).toBe('-Infinity');
    expect(describeValue(null)).toBe('null');
    expect(describeValue({ a: 1 })).toBe('{"a":1}');
  });
});
