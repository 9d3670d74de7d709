import { describe, expect, it } from 'vitest';
import { AbortedError, LoadShedError, NoEndpointsError, RateLimitedError, TimeoutError, UpstreamError } from '../../../src/errors.ts';
import type { RetryOn } from '../../../src/policy/types.ts';
import { classify, type AttemptResult } from '../../../src/resilience/classify.ts';

const sys = (code: string): Error => Object.assign(new Error(code), { code });
const wrapped = (code: string): UpstreamError =>
  new UpstreamError('orders', [{ endpoint: '127.0.0.1:1', error: code }], { cause: sys(code) });
const res = (statusCode: number): AttemptResult => ({ response: { statusCode } });
const limited = (statusCode: number, value = 'true'): AttemptResult => ({ response: { statusCode, headers: { 'x-envoy-ratelimited': value } } });
const err = (error: unknown): AttemptResult => ({ error });

const ALL: RetryOn[] = ['connect-failure', 'refused-stream', 'reset', '5xx', 'gateway-error', 'retriable-4xx', 'retriable-status-codes'];

// [name, result, retryOn, retriable status codes, outcome, retryable, beforeSend]
const table: [string, AttemptResult, RetryOn[], number[], string, boolean, boolean][] = [
  ['200', res(200), ALL, [], 'success', false, false],
  ['404', res(404), ALL, [], 'success', false, false],
  ['409 retriable-4xx', res(409), ['retriable-4xx'], [], 'success', true, false],
  ['409 without retriable-4xx', res(409), ['5xx'], [], 'success', false, false],
  ['429 listed', res(429), ['retriable-status-codes'], [429], 'success', true, false],
  ['429 not listed', res(429), ['retriable-status-codes'], [503], 'success', false, false],
  ['429 listed but condition absent', res(429), ['5xx'], [429], 'success', false, false],
  ['500 5xx', res(500), ['5xx'], [], 'server-error', true, false],
  ['500 gateway-error', res(500), ['gateway-error'], [], 'server-error', false, false],
  ['502 gateway-error', res(502), ['gateway-error'], [], 'gateway-error', true, false],
  ['503 gateway-error', res(503), ['gateway-error'], [], 'gateway-error', true, false],
  ['504 5xx', res(504), ['5xx'], [], 'gateway-error', true, false],
  ['503 connect-failure only', res(503), ['connect-failure'], [], 'gateway-error', false, false],
  ['501 listed status', res(501), ['retriable-status-codes'], [501], 'server-error', true, false],
  ['429 listed, x-envoy-ratelimited', limited(429), ALL, [429], 'success', false, false],
  ['503 x-envoy-ratelimited', limited(503), ALL, [503], 'gateway-error', false, false],
  ['500 x-envoy-ratelimited, empty value', limited(500, ''), ALL, [], 'server-error', false, false],
  ['ECONNREFUSED', err(wrapped('ECONNREFUSED')), ['connect-failure'], [], 'gateway-error', true, true],
  ['raw ECONNREFUSED', err(sys('ECONNREFUSED')), ['connect-failure'], [], 'gateway-error', true, true],
  ['connect timeout', err(wrapped('UND_ERR_CONNECT_TIMEOUT')), ['gateway-error'], [], 'gateway-error', true, true],
  ['connect failure, reset only', err(wrapped('ECONNREFUSED')), ['reset'], [], 'gateway-error', false, true],
  ['UND_ERR_SOCKET reset', err(wrapped('UND_ERR_SOCKET')), ['reset'], [], 'gateway-error', true, false],
  ['ECONNRESET 5xx', err(wrapped('ECONNRESET')), ['5xx'], [], 'gateway-error', true, false],
  ['ECONNRESET connect-failure only', err(wrapped('ECONNRESET')), ['connect-failure'], [], 'gateway-error', false, false],
  ['pool closed under us', err(wrapped('UND_ERR_CLOSED')), ['connect-failure'], [], 'ignored', true, true],
  ['refused stream', err(wrapped('NGHTTP2_REFUSED_STREAM')), ['refused-stream'], [], 'gateway-error', true, true],
  ['per-try timeout', err(new TimeoutError('attempt', 100)), ['gateway-error'], [], 'gateway-error', true, false],
  ['per-try timeout, connect-failure only', err(new TimeoutError('attempt', 100)), ['connect-failure'], [], 'gateway-error', false, false],
  ['total timeout', err(new TimeoutError('total', 100)), ALL, [], 'gateway-error', false, false],
  ['caller abort', err(new AbortedError()), ALL, [], 'ignored', false, false],
  ['load shed', err(new LoadShedError('orders', 'maxRequests')), ALL, [], 'ignored', false, false],
  ['rate limited', err(new RateLimitedError('orders')), ALL, [], 'ignored', false, false],
  ['no endpoints', err(new NoEndpointsError('orders')), ALL, [], 'ignored', false, false],
  ['unknown error', err(new Error('boom')), ALL, [], 'gateway-error', false, false],
  ['parser error', err(wrapped('HPE_INVALID_CONSTANT')), ['reset'], [], 'gateway-error', true, false],
];

describe('classify(): one function over {error} | {response}', () => {
  it.each(table)('%s', (_name, result, retryOn, codes, outcome, retryable, beforeSend) => {
    const c = classify(result, { retryOn, retriableStatusCodes: codes });
    expect(c).toEqual({ outcome, retryable, beforeSend });
  });

  it('with retries off only the outcome is given', () => {
    expect(classify(res(503), undefined)).toEqual({ outcome: 'gateway-error', retryable: false, beforeSend: false });
  });
});
