import { replaceControlCharacters } from './control-characters.ts';

/** The longest rendering of a value in a message: longer ones are cut (a 10 KB header must not become a 10 KB log line). */
const MAX_SHOWN = 120;

/**
 * A value as error messages show it: JSON for plain data, the class for other
 * objects, control characters escaped, at most MAX_SHOWN characters.
 */
export function describeValue(value: unknown): string {
  let s: string;
  // JSON has no NaN or Infinity (it writes null): they are shown as themselves.
  if (value === undefined || typeof value === 'symbol' || typeof value === 'bigint' || (typeof value === 'number' && !Number.isFinite(value))) s = String(value);
  else if (typeof value === 'function') s = 'a function';
  else if (typeof value === 'object' && value !== null && !Array.isArray(value) && !isPlain(value)) {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
    s = typeof name === 'string' && name !== '' ? `a ${name}` : 'an object';
  } else {
    try {
      s = JSON.stringify(value);
    } catch {
      s = typeof value;
    }
  }
  s = replaceControlCharacters(s, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return s.length > MAX_SHOWN ? `${s.slice(0, MAX_SHOWN - 3)}...` : s;
}

function isPlain(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === null || proto === Object.prototype;
}
