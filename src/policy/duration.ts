/**
 * The one duration rule of the policy model: Go-style duration strings in the
 * document ("250ms", "10s", "1m30s", "0s"; units h, m, s, ms), numbers of
 * milliseconds once resolved. The targets' own duration formats differ from
 * this one and from each other (Gateway API refuses "1.5s" and a bare "0",
 * Istio refuses "0s", Envoy JSON writes "0.250s"): export rebuilds each from
 * the milliseconds per target, never copying the string.
 */
/** Pattern of a duration string (also published in the JSON Schema). */
export const DURATION_PATTERN = '^(0|([0-9]+(\\.[0-9]+)?(h|m|s|ms))+)$';

const DURATION_RE = new RegExp(DURATION_PATTERN);
const PART_RE = /([0-9]+(?:\.[0-9]+)?)(h|ms|m|s)/g;
const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };

/** Largest duration accepted anywhere (safe for setTimeout, which caps at ~24.8 days). */
export const MAX_DURATION_MS = 86_400_000;

/**
 * Parses a duration string into milliseconds, or returns undefined when it is
 * not one. Sub-millisecond results ("1.5ms") are not whole milliseconds and
 * also return undefined.
 */
export function parseDuration(text: string): number | undefined {
  if (!DURATION_RE.test(text)) return undefined;
  if (text === '0') return 0;
  let total = 0;
  for (const match of text.matchAll(PART_RE)) {
    const [, amount, unit] = match;
    total += Number(amount) * (UNIT_MS[unit ?? ''] ?? Number.NaN);
  }
  // 0.1s + 0.2s style float noise: round at the microsecond, then demand whole ms.
  const rounded = Math.round(total * 1000) / 1000;
  return Number.isInteger(rounded) ? rounded : undefined;
}

/** Formats milliseconds as the shortest duration string: 90000 → "1m30s", 250 → "250ms", 0 → "0s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
  ] as const) {
    if (rest >= size) {
      const n = Math.floor(rest / size);
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  if (rest > 0) out += `${rest}ms`;
  return out;
}
