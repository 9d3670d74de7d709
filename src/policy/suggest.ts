/** "did you mean" for unknown fields: a small Levenshtein over normalised names. */

/** Edit distance (insert, delete, substitute), two rows of memory. */
export function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

// `max_connections`, `MaxConnections` and `maxconnections` all mean maxConnections.
const normalise = (name: string): string => name.toLowerCase().replace(/[-_\s]/g, '');

/** The known name closest to `name`, if it is close enough to be a likely typo. */
export function suggest(name: string, known: readonly string[]): string | undefined {
  const wanted = normalise(name);
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const distance = levenshtein(wanted, normalise(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const allowed = Math.max(1, Math.floor(wanted.length / 3));
  return bestDistance <= allowed ? best : undefined;
}

export function unknownFieldMessage(name: string, known: readonly string[]): string {
  const guess = suggest(name, known);
  return guess === undefined
    ? `unknown field '${name}'; expected one of ${known.join(', ')}`
    : `unknown field '${name}'; did you mean '${guess}'?`;
}
