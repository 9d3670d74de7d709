/** A MeshRequest for unit tests of single layers (no chain, no network). */
import type { MeshRequest, MeshResponse } from '../../src/core/types.ts';
import type { ResolvedUpstream } from '../../src/policy/types.ts';

export interface FakeRequestInit {
  signal?: AbortSignal | undefined;
  /** Absolute deadline (performance.now() based). @default Infinity */
  deadline?: number;
  /** Per-call total timeout option, ms. */
  timeout?: number;
}

export function fakeRequest(up: ResolvedUpstream, init: FakeRequestInit = {}): MeshRequest {
  return {
    service: up.name,
    upstream: up,
    policy: up,
    method: 'GET',
    path: '/',
    host: up.name,
    hostname: up.name,
    protocol: 'http:',
    endpoint: undefined,
    headers: {},
    body: null,
    signal: init.signal,
    attemptControl: undefined,
    options: init.timeout === undefined ? {} : { timeout: init.timeout },
    deadline: init.deadline ?? Infinity,
    deadlineMs: init.deadline === undefined ? 0 : (init.timeout ?? Math.max(0, init.deadline - performance.now())),
    tried: undefined,
    attempt: 0,
  };
}

/** A 200 response with no body. */
export const okResponse = (): MeshResponse => ({
  statusCode: 200,
  headers: {},
  body: null as never,
  trailers: {},
  endpoint: '127.0.0.1:1',
  attempts: 1,
});
