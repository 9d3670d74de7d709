/**
 * Parsing the endpoint entries of the static and file registries: `"host:port"`
 * strings or `{ address, port, id?, tags?, meta?, weight?, zone? }` objects.
 * Every problem is collected with the place it came from (a variable, a file and
 * the entry's index) so that one error names all of them.
 */
import type { PolicyIssue } from '../errors.ts';
import type { Endpoint } from './types.ts';
import { describeValue } from '../internal/describe.ts';
import { hideUserinfo } from '../internal/userinfo.ts';
import { labelProblems, parseHostPort, validateEndpoint, type ValidateOptions } from './validate.ts';

/** One endpoint as written in code or a file. */
export type EndpointEntry =
  | string
  | {
      readonly address: string;
      readonly port: number;
      readonly id?: string;
      readonly tags?: readonly string[];
      readonly meta?: Readonly<Record<string, string>>;
      readonly weight?: number;
      readonly zone?: string;
    };

const ENTRY_KEYS = new Set(['address', 'port', 'id', 'tags', 'meta', 'weight', 'zone']);

/** The entry as an issue shows it: credentials (`user:password@`) in a string or an address replaced. */
function shown(entry: unknown): unknown {
  if (typeof entry === 'string') return hideUserinfo(entry);
  if (typeof entry === 'object' && entry !== null && !Array.isArray(entry)) {
    const address = (entry as { address?: unknown }).address;
    if (typeof address === 'string' && address.includes('@')) return { ...entry, address: hideUserinfo(address) };
  }
  return entry;
}

/** Parses a list of entries; bad entries become issues at `${path}[i]`. Duplicate ids keep the first. */
export function parseEntries(list: unknown, path: string, issues: PolicyIssue[], options: ValidateOptions): Endpoint[] {
  if (!Array.isArray(list)) {
    issues.push({ path, value: shown(list), message: 'must be a list of "host:port" strings or {address, port} objects' });
    return [];
  }
  const out: Endpoint[] = [];
  const seen = new Set<string>();
  list.forEach((entry: unknown, i) => {
    const at = `${path}[${i}]`;
    const value = shown(entry);
    let raw: Record<string, unknown>;
    if (typeof entry === 'string') {
      const hp = parseHostPort(entry);
      if ('error' in hp) {
        issues.push({ path: at, value, message: hp.error });
        return;
      }
      raw = hp;
    } else if (typeof entry === 'object' && entry !== null && !Array.isArray(entry)) {
      raw = entry as Record<string, unknown>;
      const unknown = Object.keys(raw).filter((k) => !ENTRY_KEYS.has(k));
      if (unknown.length > 0) {
        issues.push({ path: at, value, message: `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => describeValue(k)).join(', ')}` });
        return;
      }
    } else {
      issues.push({ path: at, value, message: 'must be a "host:port" string or an {address, port} object' });
      return;
    }
    const result = validateEndpoint(
      { id: raw.id, address: raw.address, port: raw.port, tags: raw.tags, meta: raw.meta, weight: raw.weight, zone: raw.zone },
      options,
    );
    if (!result.ok) {
      issues.push({ path: at, value, message: result.reason });
      return;
    }
    // Written for inmesh: more than MAX_TAGS tags is the author's to fix, not cut silently (Consul entries keep the first ones).
    if (result.tagsCut !== undefined) {
      issues.push({ path: at, value, message: labelProblems(raw.tags, undefined).join('; ') });
      return;
    }
    if (raw.weight !== undefined && raw.weight !== result.endpoint.weight) {
      issues.push({ path: `${at}.weight`, value: raw.weight, message: 'weight must be an integer 1-1000000' });
      return;
    }
    if (seen.has(result.endpoint.id)) return;
    seen.add(result.endpoint.id);
    out.push(result.endpoint);
  });
  return out;
}
