/**
 * Policy regular expressions: RE2 syntax, matched in linear time, as Envoy's
 * `safe_regex`, Istio and Consul's router take them. `re2js` (a pure-JavaScript
 * port of RE2, no native build) instead of `RegExp`: a backtracking engine lets
 * a pattern such as `(a+)+$` block the event loop on a short header value, and
 * it accepts syntax (lookarounds, back-references) the targets refuse.
 */
import { RE2JS, RE2JSException, RE2JSSyntaxException } from 're2js';

/** A compiled policy regex; `matchesWhole` is anchored at both ends. */
export interface PolicyRegex {
  matchesWhole(value: string): boolean;
}

/** Compiles a pattern that validation accepted (throws on one it would refuse). */
export function compilePolicyRegex(pattern: string): PolicyRegex {
  const re = RE2JS.compile(pattern);
  return { matchesWhole: (value) => re.testExact(value) };
}

/**
 * Why RE2 refuses a pattern, with the offending part and its position
 * (0-based, in UTF-16 units), or undefined when it compiles. re2js reports the
 * part's text, not its offset: the position is given only when that text
 * occurs once in the pattern (in `((a{100}){100}){100}` the `{100}` RE2 refuses
 * is the outer one, while the first occurrence is a valid inner repeat).
 */
export function regexProblem(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (error) {
    if (!(error instanceof RE2JSException)) throw error;
    const syntax = error instanceof RE2JSSyntaxException;
    const description = syntax ? error.getDescription() : error.message;
    const fragment = syntax ? error.getPattern() : null;
    if (fragment === null || fragment === '') return `not a valid RE2 regular expression: ${description}`;
    const at = pattern.indexOf(fragment);
    const once = at !== -1 && pattern.indexOf(fragment, at + 1) === -1;
    const where = once ? ` at position ${at} (\`${fragment}\`)` : ` (\`${fragment}\`)`;
    return `not a valid RE2 regular expression: ${description}${where}`;
  }
}
