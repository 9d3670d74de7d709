/**
 * Endpoint validation. Registry data is untrusted: whatever Consul, a file or an
 * environment variable says, only entries that pass here become `Endpoint`s, and
 * nothing else ever reaches a socket.
 *
 * - address: an IP literal (no zone id) or a strict host name (RFC 1123 labels,
 *   at most 253 characters, a last label that is not numeric so that inet_aton
 *   forms such as `169.254.43518` or `0xa9.0xfe.0xa9.0xfe` cannot sneak an IP
 *   past the checks). No spaces, CR/LF, `/`, `@`, `:` outside IPv6, `%`.
 * - refused unless `allowLinkLocal`: link-local 169.254.0.0/16 and fe80::/10
 *   (also inside IPv4-mapped IPv6), cloud metadata endpoints (169.254.169.254,
 *   fd00:ec2::254, metadata.google.internal, metadata, instance-data).
 * - always refused: the unspecified addresses 0.0.0.0 and ::.
 * - port: an integer 1-65535 (strings only in `parseHostPort`, digits only).
 * - tags and meta: `labelProblems`, the one set of rules that discovery applies
 *   to every entry and registration applies before anything is sent, so that an
 *   instance inmesh registers is always one inmesh can find. One exception, on
 *   the discovery side only: an entry with more than 64 tags keeps its first 64
 *   (`tagsCut` says how many went), because Consul sets no limit on the tag count
 *   and other tools register such instances; registration still refuses them.
 * - weight: an integer >= 1 (anything else becomes 1).
 */
import { isIP } from 'node:net';
import type { Endpoint } from './types.ts';
import { describeValue } from '../internal/describe.ts';
import { hasControlCharacter } from '../internal/control-characters.ts';
import { hideUserinfo } from '../internal/userinfo.ts';

export interface ValidateOptions {
  /** Accept link-local and cloud metadata addresses. Default false. */
  readonly allowLinkLocal?: boolean;
}

/** Candidate data for an endpoint, as read from a registry (every field unchecked). */
export interface RawEndpoint {
  id?: unknown;
  address: unknown;
  port: unknown;
  tags?: unknown;
  meta?: unknown;
  weight?: unknown;
  datacenter?: unknown;
  zone?: unknown;
}

/**
 * A checked endpoint, or the reason it was refused. `tagsCut`: how many tags past
 * the first 64 were cut off (absent when none were).
 */
export type ValidationResult = { ok: true; endpoint: Endpoint; tagsCut?: number } | { ok: false; reason: string };

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const NUMERIC_LABEL = /^(?:\d+|0x[0-9a-f]*)$/i;
const METADATA_HOSTS = new Set(['metadata.google.internal', 'metadata', 'metadata.goog', 'instance-data', 'instance-data.ec2.internal']);
/** The most tags an instance may have (registration refuses more; discovery keeps the first ones). */
export const MAX_TAGS = 64;
const MAX_META = 64;
const MAX_STRING = 512;

/** True for a strict RFC 1123 host name (not an IP, not an inet_aton form). */
export function isStrictHostname(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = (name.endsWith('.') ? name.slice(0, -1) : name).split('.');
  if (!labels.every((l) => LABEL.test(l))) return false;
  const last = labels.at(-1) ?? '';
  return !NUMERIC_LABEL.test(last);
}

/** Parses an IPv4 literal into its four octets. */
function ipv4Octets(address: string): number[] {
  return address.split('.').map((p) => Number.parseInt(p, 10));
}

/** Expands a valid IPv6 literal into eight 16-bit groups (handles `::` and an embedded IPv4 tail). */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase();
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = ipv4Octets(last);
    tail = [(a << 8) | b, (c << 8) | d];
    text = text.slice(0, lastColon + 1);
    if (!text.endsWith('::')) text = text.slice(0, -1);
  }
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)));
  const gap = text.indexOf('::');
  if (gap < 0) return [...parse(text), ...tail];
  const head = parse(text.slice(0, gap));
  const rest = parse(text.slice(gap + 2));
  const fill = Math.max(8 - head.length - rest.length - tail.length, 0);
  return [...head, ...Array<number>(fill).fill(0), ...rest, ...tail];
}

/** Why an IP literal must not be used, or undefined when it may (also used by the transport on resolved addresses). */
export function refuseIp(address: string, family: number, allowLinkLocal: boolean): string | undefined {
  if (family === 4) {
    const [a, b, c, d] = ipv4Octets(address);
    if (a === 0 && b === 0 && c === 0 && d === 0) return 'the unspecified address 0.0.0.0';
    if (a === 169 && b === 254 && !allowLinkLocal) {
      return c === 169 && d === 254 ? 'a cloud metadata address (169.254.169.254)' : 'a link-local address (169.254.0.0/16)';
    }
    return undefined;
  }
  const g = ipv6Groups(address);
  if (g.every((x) => x === 0)) return 'the unspecified address ::';
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible forms carry an IPv4 address.
  if (g.slice(0, 5).every((x) => x === 0) && (g[5] === 0xffff || g[5] === 0)) {
    const v4 = `${(g[6] ?? 0) >> 8}.${(g[6] ?? 0) & 255}.${(g[7] ?? 0) >> 8}.${(g[7] ?? 0) & 255}`;
    const inner = refuseIp(v4, 4, allowLinkLocal);
    if (inner) return `${inner} inside an IPv6 address`;
  }
  if (!allowLinkLocal) {
    if (((g[0] ?? 0) & 0xffc0) === 0xfe80) return 'a link-local address (fe80::/10)';
    if (g[0] === 0xfd00 && g[1] === 0x0ec2 && g.slice(2, 7).every((x) => x === 0) && g[7] === 0x254) {
      return 'a cloud metadata address (fd00:ec2::254)';
    }
  }
  return undefined;
}

/** Why `address` must not be used, or undefined when it is acceptable. */
export function checkAddress(address: unknown, options: ValidateOptions = {}): string | undefined {
  if (typeof address !== 'string' || address.length === 0) return 'address is missing or not a string';
  if (address.includes('@')) return 'address must not carry credentials (user:password@)';
  if (address.length > 253 || hasControlCharacter(address) || /[\s/@\\%#?[\]]/.test(address)) {
    return 'address contains characters no host name or IP literal has';
  }
  const family = isIP(address);
  const allow = options.allowLinkLocal === true;
  if (family !== 0) return refuseIp(address, family, allow);
  if (!isStrictHostname(address)) return 'address is neither an IP literal nor a valid host name';
  const lower = address.toLowerCase().replace(/\.$/, '');
  if (!allow && METADATA_HOSTS.has(lower)) return `a cloud metadata host name (${lower})`;
  return undefined;
}

/** Why `port` must not be used, or undefined when it is an integer 1-65535. */
export function checkPort(port: unknown): string | undefined {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return 'port must be an integer 1-65535';
  return undefined;
}

function cleanString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length <= MAX_STRING && !hasControlCharacter(value) ? value : undefined;
}


/** Why a tag or meta string is not clean, or undefined when it is. */
function stringProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `must be a string, got ${value === null ? 'null' : typeof value}`;
  if (value.length > MAX_STRING) return `must be at most ${MAX_STRING} characters, got ${value.length}`;
  if (hasControlCharacter(value)) return 'must not contain control characters (CR, LF, NUL, ...)';
  return undefined;
}

/**
 * The rules for an instance's tags and meta, one function for both directions:
 * discovery drops an entry that breaks them, registration refuses to send one.
 * Tags: a list of at most 64 strings. Meta: a map of at most 64 pairs. Every tag,
 * key and value a string of at most 512 characters without control characters;
 * no meta key `__proto__` (it does not survive a plain object). Each problem names
 * the field (`tags[2]`, `meta.zone`) and the value, shortened and escaped.
 */
export function labelProblems(tags: unknown, meta: unknown): string[] {
  const problems: string[] = [];
  if (tags !== undefined && tags !== null) {
    if (!Array.isArray(tags)) {
      problems.push(`tags must be a list of strings, got ${describeValue(tags)}`);
    } else {
      if (tags.length > MAX_TAGS) problems.push(`tags must be at most ${MAX_TAGS}, got ${tags.length}`);
      (tags as unknown[]).forEach((tag, i) => {
        const problem = stringProblem(tag);
        if (problem) problems.push(`tags[${i}] ${problem}: ${describeValue(tag)}`);
      });
    }
  }
  if (meta !== undefined && meta !== null) {
    if (typeof meta !== 'object' || Array.isArray(meta)) {
      problems.push(`meta must be a map of strings, got ${describeValue(meta)}`);
    } else {
      const entries = Object.entries(meta as Record<string, unknown>);
      if (entries.length > MAX_META) problems.push(`meta must have at most ${MAX_META} keys, got ${entries.length}`);
      for (const [key, value] of entries) {
        const field = `meta[${describeValue(key)}]`;
        if (key === '__proto__') problems.push(`${field}: the key "__proto__" is refused`);
        const keyProblem = stringProblem(key);
        if (keyProblem) problems.push(`${field} key ${keyProblem}`);
        const valueProblem = stringProblem(value);
        if (valueProblem) problems.push(`${field} ${valueProblem}: ${describeValue(value)}`);
      }
    }
  }
  return problems;
}

/** Checks one candidate endpoint; returns a frozen `Endpoint` or the reason it was refused. */
export function validateEndpoint(raw: RawEndpoint, options: ValidateOptions = {}): ValidationResult {
  const addressProblem = checkAddress(raw.address, options);
  if (addressProblem) {
    const shown = typeof raw.address === 'string' ? hideUserinfo(raw.address) : raw.address;
    return { ok: false, reason: `${addressProblem}: ${describeValue(shown)}` };
  }
  const portProblem = checkPort(raw.port);
  if (portProblem) return { ok: false, reason: `${portProblem}: ${describeValue(raw.port)}` };
  const address = raw.address as string;
  const port = raw.port as number;

  let id = `${isIP(address) === 6 ? `[${address}]` : address}:${port}`;
  if (raw.id !== undefined && raw.id !== null && raw.id !== '') {
    const given = cleanString(raw.id);
    if (given === undefined) return { ok: false, reason: `id is not a clean string: ${describeValue(raw.id)}` };
    id = given;
  }

  // More than 64 tags: the first 64 are kept and checked, the rest never read.
  const tagsCut = Array.isArray(raw.tags) && raw.tags.length > MAX_TAGS ? raw.tags.length - MAX_TAGS : 0;
  const rawTags: unknown = tagsCut > 0 ? (raw.tags as unknown[]).slice(0, MAX_TAGS) : raw.tags;
  const labelProblem = labelProblems(rawTags, raw.meta)[0];
  if (labelProblem !== undefined) return { ok: false, reason: labelProblem };
  const tags = Array.isArray(rawTags) ? (rawTags as string[]) : [];
  const meta: Record<string, string> = { ...(raw.meta as Record<string, string> | null | undefined) };

  const weight = typeof raw.weight === 'number' && Number.isInteger(raw.weight) && raw.weight >= 1 && raw.weight <= 1_000_000 ? raw.weight : 1;
  const datacenter = cleanString(raw.datacenter);
  const zone = cleanString(raw.zone) ?? meta.zone;
  const endpoint: Endpoint = Object.freeze({
    id,
    address,
    port,
    tags: Object.freeze([...tags]),
    meta: Object.freeze(meta),
    weight,
    ...(datacenter ? { datacenter } : {}),
    ...(zone ? { zone } : {}),
  });
  return tagsCut > 0 ? { ok: true, endpoint, tagsCut } : { ok: true, endpoint };
}

/**
 * Parses `host:port`, `[v6]:port` (and nothing looser: no scheme, no path, no
 * `user:password@`). Returns the parts or a reason (which never repeats the
 * entry); the parts still have to pass `validateEndpoint`.
 */
export function parseHostPort(entry: string): { address: string; port: number } | { error: string } {
  const text = entry.trim();
  if (text.includes('@')) return { error: 'an endpoint must not carry credentials (user:password@): write host:port' };
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0 || text[end + 1] !== ':') return { error: 'expected [ipv6]:port' };
    host = text.slice(1, end);
    portText = text.slice(end + 2);
    if (isIP(host) !== 6) return { error: 'the part in brackets is not an IPv6 address' };
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return { error: 'expected host:port' };
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return { error: 'an IPv6 address must be written [addr]:port' };
  }
  if (!/^\d{1,5}$/.test(portText)) return { error: 'port must be an integer 1-65535' };
  return { address: host, port: Number(portText) };
}

/** A canonical string of an endpoint set, equal for sets that differ only in order. */
export function canonicalEndpoints(endpoints: readonly Endpoint[]): string {
  const rows = endpoints.map((e) =>
    JSON.stringify([
      e.id,
      e.address,
      e.port,
      e.weight,
      [...e.tags].sort(),
      Object.entries(e.meta).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      e.datacenter ?? '',
      e.zone ?? '',
    ]),
  );
  return rows.sort().join('\n');
}
