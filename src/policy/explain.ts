/** explainPolicy(): a resolved policy as readable YAML, what `inmesh explain` prints. */
import { stringify } from 'yaml';
import { formatDuration } from './duration.ts';
import type { ResolvedPolicy } from './types.ts';

const DURATION_KEYS = new Set([
  'connect',
  'request',
  'perTry',
  'idle',
  'maxRetryAfter',
  'interval',
  'baseEjectionTime',
  'maxEjectionTime',
  'window',
  'halfOpenAfter',
  'ewmaDecay',
  'ewmaDefaultRtt',
]);

function explainView(value: unknown, key: string, parent: string): unknown {
  if (typeof value === 'number' && (DURATION_KEYS.has(key) || (parent === 'backoff' && (key === 'base' || key === 'max'))))
    return formatDuration(value);
  if (Array.isArray(value)) return value.map((item: unknown) => explainView(item, '', key));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue;
      out[k] = explainView(v, k, key);
    }
    return out;
  }
  return value;
}

/**
 * A readable YAML rendering of a resolved policy, durations written back as
 * strings ("15s"), fields that are not set left out. What `inmesh explain` prints.
 */
export function explainPolicy(policy: ResolvedPolicy): string {
  return stringify(explainView(policy, '', ''), { lineWidth: 0 });
}
