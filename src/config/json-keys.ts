/**
 * Duplicate keys in a JSON text. JSON.parse keeps the last of two equal keys
 * without a word, which in a policy drops the first upstream's settings; the
 * YAML parser refuses them ("Map keys must be unique"), and so does this scan,
 * in linear time: one pass over the text, one Set of keys per open object.
 *
 * Written here rather than with jsonc-parser's `visit`, which can do the same:
 * this pass is a few times faster on a large policy (docs/benchmarks.md) and
 * needs no runtime dependency. The text has already passed JSON.parse, so the
 * scan only tracks strings, brackets and commas.
 */

export interface DuplicateKey {
  /** Path of the repeated key: `[ 'upstreams', 'orders' ]`. */
  readonly path: readonly (string | number)[];
  /** Offset of the second occurrence's opening quote in the text. */
  readonly offset: number;
}

type Frame = { kind: 'object'; keys: Set<string>; key: string | undefined; expectKey: boolean } | { kind: 'array'; index: number };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * The first key repeated within one object, or undefined. `text` must be
 * valid JSON (call after JSON.parse accepted it). Keys are compared decoded,
 * so `"a"` and `"\u0061"` are the same key, as JSON.parse sees them.
 */
export function findDuplicateKey(text: string): DuplicateKey | undefined {
  const stack: Frame[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const start = i;
      for (i++; text.charCodeAt(i) !== QUOTE; i++) if (text.charCodeAt(i) === BACKSLASH) i++;
      const top = stack.at(-1);
      if (top?.kind !== 'object' || !top.expectKey) continue;
      const token = text.slice(start, i + 1);
      const key = token.includes('\\') ? (JSON.parse(token) as string) : token.slice(1, -1);
      top.key = key;
      top.expectKey = false;
      if (top.keys.has(key)) return { path: pathOf(stack), offset: start };
      top.keys.add(key);
    } else if (c === 0x7b /* { */) stack.push({ kind: 'object', keys: new Set(), key: undefined, expectKey: true });
    else if (c === 0x5b /* [ */) stack.push({ kind: 'array', index: 0 });
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) stack.pop();
    else if (c === 0x2c /* , */) {
      const top = stack.at(-1);
      if (top?.kind === 'object') top.expectKey = true;
      else if (top !== undefined) top.index++;
    }
  }
  return undefined;
}

function pathOf(stack: readonly Frame[]): (string | number)[] {
  return stack.map((frame) => (frame.kind === 'object' ? (frame.key ?? '') : frame.index));
}
