/**
 * Liveness and readiness endpoints, answered by the inbound chain before
 * anything else (not traced, not counted, never limited): liveness is 200 while
 * the process can answer at all; readiness is 503 from the moment the mesh
 * starts closing. Paths match exactly (query ignored) and never redirect; only
 * GET and HEAD are answered, other methods go to the app.
 */
import { InvalidArgumentError } from '../errors.ts';
import { describeValue } from '../internal/describe.ts';
import type { InboundAnswer } from './answer.ts';

export interface HealthOptions {
  /**
   * Liveness path (`false`: none). Kubernetes' own endpoint names: `/healthz`
   * is deprecated there in favour of `/livez` and `/readyz`. @default '/livez'
   */
  readonly livenessPath?: string | false;
  /** Readiness path (`false`: none); 503 once the mesh is closing. @default '/readyz' */
  readonly readinessPath?: string | false;
}

export const DEFAULT_LIVENESS_PATH = '/livez';
export const DEFAULT_READINESS_PATH = '/readyz';

const HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' } as const;
export const OK: InboundAnswer = { status: 200, headers: HEADERS, body: '{"status":"ok"}' };
export const CLOSING: InboundAnswer = { status: 503, headers: HEADERS, body: '{"status":"closing"}' };

function checkPath(name: string, value: unknown, fallback: string): string | undefined {
  if (value === undefined) return fallback;
  if (value === false) return undefined;
  if (typeof value !== 'string' || !value.startsWith('/') || /[?#\s]/.test(value)) {
    throw new InvalidArgumentError(`health.${name} must be a path starting with "/" (no query, no spaces) or false (got ${describeValue(value)})`);
  }
  return value;
}

export interface HealthPaths {
  readonly liveness: string | undefined;
  readonly readiness: string | undefined;
}

export function healthPaths(options: HealthOptions = {}): HealthPaths {
  return {
    liveness: checkPath('livenessPath', options.livenessPath, DEFAULT_LIVENESS_PATH),
    readiness: checkPath('readinessPath', options.readinessPath, DEFAULT_READINESS_PATH),
  };
}

/** The path of a request target (`/readyz?verbose` → `/readyz`). */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
