import type { MeshRequest, MeshResponse } from '../../../src/core/types.ts';

/** A MeshRequest with only what the telemetry layer reads filled in. */
export function fakeRequest(overrides: Partial<MeshRequest> = {}): MeshRequest {
  return {
    service: 'orders',
    upstream: {} as MeshRequest['upstream'],
    policy: {} as MeshRequest['policy'],
    method: 'GET',
    path: '/api/items?x=1',
    host: 'orders',
    hostname: 'orders',
    protocol: 'http:',
    headers: {},
    body: undefined,
    signal: undefined,
    attemptControl: undefined,
    options: {},
    deadline: Infinity,
    deadlineMs: 0,
    tried: undefined,
    attempt: 0,
    endpoint: undefined,
    ...overrides,
  };
}

export function fakeResponse(overrides: Partial<MeshResponse> = {}): MeshResponse {
  return {
    statusCode: 200,
    headers: {},
    body: undefined as unknown as MeshResponse['body'],
    trailers: {},
    endpoint: '127.0.0.1:8081',
    attempts: 1,
    ...overrides,
  };
}
