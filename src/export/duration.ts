/**
 * Durations as each target writes them, rebuilt from the resolved milliseconds
 * (never copied from the policy's string). One function per format:
 *
 * - `protoDuration`: google.protobuf.Duration in JSON/YAML, as Envoy and Istio
 *   read it: seconds with 0 or 3 fractional digits and an `s` ("10s", "0.250s").
 * - `goDuration`: Go's time.ParseDuration, as Consul and Dapr read it.
 * - `gatewayDuration`: Gateway API's GEP-2257 format, `^([0-9]{1,5}(h|m|s|ms)){1,4}$`:
 *   no fractions, no bare `0`.
 *
 * `goDuration` and `gatewayDuration` accept the policy model's own shortest form ("1m30s", "250ms",
 * "0s"), so both are `formatDuration`; a value above 99999h would break GEP-2257,
 * and the model caps durations at 24h.
 * Each target's meaning of zero differs (Istio refuses `0s`, Consul reads a zero
 * request timeout as 15 s): that is the exporter's business, not this file's.
 * `parseGoDuration` reads Go's format back (Consul answers with it), for import.
 */
import { ExportError } from '../errors.ts';
import { formatDuration } from '../policy/duration.ts';

export function protoDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  const rest = ms % 1000;
  return rest === 0 ? `${seconds}s` : `${seconds}.${String(rest).padStart(3, '0')}s`;
}

export const goDuration: (ms: number) => string = formatDuration;

export const gatewayDuration: (ms: number) => string = formatDuration;

const GO_UNITS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000_001 };

/** Go's time.Duration text ("1.5s", "2m0s", "1s500ms") or Consul's nanosecond number, in ms. */
export function parseGoDuration(value: unknown, where: string): number {
  if (typeof value === 'number') return value / 1_000_000;
  if (typeof value !== 'string' || !/^(\d+(\.\d+)?(h|m|s|ms|us|µs|ns))+$/.test(value)) {
    if (value === '0' || value === '') return 0;
    throw new ExportError(`${where}: ${JSON.stringify(value)} is not a Go duration`);
  }
  let ms = 0;
  for (const [, n, unit] of value.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) ms += Number(n) * (GO_UNITS[unit as string] as number);
  return Math.round(ms);
}
