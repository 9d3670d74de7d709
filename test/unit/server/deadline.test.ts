import { describe, expect, it } from 'vitest';
import { callerBudgetMs, parseGrpcTimeout } from '../../../src/server/deadline.ts';

describe('parseGrpcTimeout', () => {
  it.each([
    ['1H', 3_600_000],
    ['2M', 120_000],
    ['3S', 3_000],
    ['250m', 250],
    ['1500u', 1.5],
    ['2000000n', 2],
    ['0m', 0],
  ])('%s is %d ms', (value, ms) => expect(parseGrpcTimeout(value)).toBe(ms));

  it.each(['', '1', 'S', '1s', '123456789S', '-1S', '1.5S', ' 1S'])('%j is not a grpc-timeout', (value) => {
    expect(parseGrpcTimeout(value)).toBeUndefined();
  });
});

describe('callerBudgetMs', () => {
  it('is undefined without a deadline header', () => {
    expect(callerBudgetMs({ 'content-type': 'text/plain' })).toBeUndefined();
  });

  it('takes the smallest valid bound, whichever header carries it', () => {
    expect(callerBudgetMs({ 'x-inmesh-deadline-ms': '300', 'x-envoy-expected-rq-timeout-ms': '200', 'grpc-timeout': '1S' })).toBe(200);
    expect(callerBudgetMs({ 'x-inmesh-deadline-ms': '100', 'x-envoy-expected-rq-timeout-ms': '200', 'grpc-timeout': '1S' })).toBe(100);
    expect(callerBudgetMs({ 'x-inmesh-deadline-ms': '300', 'x-envoy-expected-rq-timeout-ms': '200', 'grpc-timeout': '50m' })).toBe(50);
  });

  it('0 from inmesh or gRPC is an expired deadline; Envoy\'s 0 is no bound', () => {
    expect(callerBudgetMs({ 'x-inmesh-deadline-ms': '0' })).toBe(0);
    expect(callerBudgetMs({ 'grpc-timeout': '0S', 'x-inmesh-deadline-ms': '500' })).toBe(0);
    expect(callerBudgetMs({ 'x-envoy-expected-rq-timeout-ms': '0' })).toBeUndefined();
    expect(callerBudgetMs({ 'x-envoy-expected-rq-timeout-ms': '0', 'x-inmesh-deadline-ms': '40' })).toBe(40);
  });

  it('ignores values that do not parse (lists, signs, fractions, words, arrays)', () => {
    expect(callerBudgetMs({ 'x-inmesh-deadline-ms': '100, 200' })).toBeUndefined();
    expect(callerBudgetMs({ 'x-inmesh-deadline-ms': '-5' })).toBeUndefined();
    expect(callerBudgetMs({ 'x-envoy-expected-rq-timeout-ms': '1.5' })).toBeUndefined();
    expect(callerBudgetMs({ 'grpc-timeout': 'soon', 'x-inmesh-deadline-ms': '70' })).toBe(70);
    expect(callerBudgetMs({ 'x-inmesh-deadline-ms': ['10', '20'] })).toBeUndefined();
    expect(callerBudgetMs({ 'x-inmesh-deadline-ms': '1'.repeat(16) })).toBeUndefined();
  });
});
