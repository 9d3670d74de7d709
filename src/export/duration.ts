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
 * The last two accept the policy model's own shortest form ("1m30s", "250ms",
 * "0s"), so both are `formatDuration`; a value above 99999h would break GEP-2257,
 * and the model caps durations at 24h.
 * Each target's meaning of zero differs (Istio refuses `0s`, Consul reads a zero
 * request timeout as 15 s): that is the exporter's business, not this file's.
 */
import { formatDuration } from '../policy/duration.ts';

export function protoDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  const rest = ms % 1000;
  return rest === 0 ? `${seconds}s` : `${seconds}.${String(rest).padStart(3, '0')}s`;
}

export const goDuration: (ms: number) => string = formatDuration;

export const gatewayDuration: (ms: number) => string = formatDuration;
