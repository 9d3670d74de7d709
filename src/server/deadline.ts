/**
 * Deadlines across hops, inbound half: the time a caller gives this request,
 * read from the headers that carry one.
 *
 * - `x-inmesh-deadline-ms`: whole ms left of the caller's total deadline when it
 *   sent the request (what inmesh sends downstream); `0` = already expired.
 * - `x-envoy-expected-rq-timeout-ms`: the route timeout an Envoy in front of
 *   this process applies, ms; `0` is ignored (Envoy's "no timeout").
 * - `grpc-timeout`: gRPC's `<1-8 digits><unit>` with unit H, M, S, m, u or n;
 *   `0<unit>` = already expired.
 *
 * Every valid header present bounds the request and **the smallest bound
 * wins**, together with the policy's `inbound.timeouts.request`: no header
 * outranks another, so a hop can only shorten a deadline, never lengthen it. A
 * value that does not parse is ignored (the policy's bound still holds).
 */

import { DEADLINE_HEADER } from '../core/deadline-context.ts';

export const ENVOY_TIMEOUT_HEADER = 'x-envoy-expected-rq-timeout-ms';
export const GRPC_TIMEOUT_HEADER = 'grpc-timeout';

/** Up to 15 digits: whole ms fit a double exactly, and anything that long never binds. */
const WHOLE_MS = /^\d{1,15}$/;
const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const GRPC_UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };

/** `grpc-timeout` in ms, or undefined when the value is not valid. */
export function parseGrpcTimeout(value: string): number | undefined {
  const m = GRPC_TIMEOUT.exec(value);
  if (m === null) return undefined;
  return Number(m[1]) * (GRPC_UNIT_MS[m[2] as string] as number);
}

function header(headers: Readonly<Record<string, string | string[] | undefined>>, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : undefined;
}

/**
 * The time the caller gives this request, ms: the smallest of the deadline
 * headers present (see above), or undefined when none is. `0` (or less than a
 * ms by grpc-timeout) means the deadline has already passed.
 */
export function callerBudgetMs(headers: Readonly<Record<string, string | string[] | undefined>>): number | undefined {
  let budget: number | undefined;
  const inmesh = header(headers, DEADLINE_HEADER);
  if (inmesh !== undefined && WHOLE_MS.test(inmesh)) budget = Number(inmesh);
  const envoy = header(headers, ENVOY_TIMEOUT_HEADER);
  if (envoy !== undefined && WHOLE_MS.test(envoy)) {
    const ms = Number(envoy);
    if (ms > 0 && (budget === undefined || ms < budget)) budget = ms;
  }
  const grpc = header(headers, GRPC_TIMEOUT_HEADER);
  if (grpc !== undefined) {
    const ms = parseGrpcTimeout(grpc);
    if (ms !== undefined && (budget === undefined || ms < budget)) budget = ms;
  }
  return budget;
}
