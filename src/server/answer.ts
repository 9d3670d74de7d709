/**
 * What inbound policy answers instead of the app: a status, a few headers and
 * a small JSON body naming the reason, written to the raw response (or handed
 * to a framework's own reply by its adapter).
 */
import type { ServerResponse } from 'node:http';
import type { InmeshError } from '../errors.ts';

/** An answer given by the inbound chain itself (a refusal or a health probe's). */
export interface InboundAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** JSON text. */
  readonly body: string;
}

/** Writes an answer; adapters whose framework owns the response pass their own (Fastify: `reply.code().send()`). */
export type Respond = (answer: InboundAnswer) => void;

/** Why inbound policy answered instead of the app (`inmesh.inbound.refusal`, the JSON body's `reason`). */
export type RefusalReason = 'load_shed' | 'rate_limited' | 'deadline_expired' | 'timeout';

const STATUS: Readonly<Record<RefusalReason, number>> = {
  load_shed: 503,
  rate_limited: 429,
  deadline_expired: 504,
  timeout: 504,
};

/** `{"error":{"reason","code","message"}}` with the refusal's status (and Retry-After when given, in seconds). */
export function refusalAnswer(reason: RefusalReason, error: InmeshError, retryAfterSeconds?: number): InboundAnswer {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds);
  return {
    status: STATUS[reason],
    headers,
    body: JSON.stringify({ error: { reason, code: error.code, message: error.message } }),
  };
}

/** Writes `answer` to the raw response; a response whose headers already went out is cut instead (it cannot change status). */
export function writeAnswer(res: ServerResponse, answer: InboundAnswer): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(answer.status, { ...answer.headers, 'content-length': String(Buffer.byteLength(answer.body)) }).end(answer.body);
}

function ignore(): void {
  // A write the app makes after inbound policy answered has nowhere to go.
}

/**
 * After a timeout answer the app may still be writing: its writes become no-ops
 * (instead of ERR_HTTP_HEADERS_SENT thrown into the app, or a write-after-end
 * error event), so a late app cannot crash the process or cut the socket.
 */
export function dropLateWrites(res: ServerResponse): void {
  res.on('error', ignore);
  const r = res as unknown as Record<string, unknown>;
  for (const name of ['writeHead', 'setHeader', 'appendHeader', 'removeHeader', 'flushHeaders']) r[name] = () => res;
  r.write = () => true;
  r.end = () => res;
}
