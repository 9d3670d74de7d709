/**
 * The fields of a resolved policy, as the export report names them: every leaf
 * by its dotted path (`upstreams.orders.retries.attempts`,
 * `upstreams.orders.routes.0.match.path`). An array of plain values (retryOn,
 * methods, tags) is one field; an array of objects is indexed; a field whose
 * value is undefined, or an empty list, is not set and not listed.
 */
import type { ResolvedPolicy } from '../policy/types.ts';

/** Every set leaf of the policy, by path, in document order. */
export function policyFields(policy: ResolvedPolicy): Map<string, unknown> {
  const out = new Map<string, unknown>();
  walk(policy, '', out);
  out.delete('apiVersion');
  return out;
}

function walk(value: unknown, path: string, out: Map<string, unknown>): void {
  if (value === undefined) return;
  if (Array.isArray(value)) {
    if (value.length === 0) return;
    if (value.every((v) => v === null || typeof v !== 'object')) out.set(path, value);
    else value.forEach((v, i) => walk(v, join(path, String(i)), out));
    return;
  }
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    // An empty object (no subsets, no meta) has no leaf to report.
    for (const key of keys) walk((value as Record<string, unknown>)[key], join(path, key), out);
    return;
  }
  out.set(path, value);
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}
