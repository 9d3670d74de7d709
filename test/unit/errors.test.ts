import { describe, expect, it } from 'vitest';
import {
  CircuitOpenError,
  ErrorCodes,
  InmeshError,
  InvalidPolicyError,
  LoadShedError,
  TimeoutError,
  UpstreamError,
  isInmeshError,
} from '../../src/errors.ts';

describe('errors', () => {
  it('carry stable codes and work with instanceof', () => {
    const e = new CircuitOpenError('orders');
    expect(e).toBeInstanceOf(InmeshError);
    expect(e).toBeInstanceOf(CircuitOpenError);
    expect(e).not.toBeInstanceOf(LoadShedError);
    expect(e.code).toBe('INMESH_ERR_CIRCUIT_OPEN');
    expect(e.message).toBe('orders: circuit breaker is open, failing fast');
    expect(isInmeshError(e)).toBe(true);
    expect(isInmeshError(new Error('x'))).toBe(false);
  });

  it('are recognised across copies of the package through the Symbol.for brand', () => {
    const foreign = Object.assign(new Error('x'), { name: 'TimeoutError', code: ErrorCodes.TIMEOUT });
    Object.defineProperty(foreign, Symbol.for('inmesh.error'), { value: true });
    expect(foreign).toBeInstanceOf(InmeshError);
    expect(foreign).toBeInstanceOf(TimeoutError);
    expect(foreign).not.toBeInstanceOf(CircuitOpenError);
  });

  it('timeouts name their phase', () => {
    const e = new TimeoutError('attempt', 250, { service: 'orders' });
    expect(e.phase).toBe('attempt');
    expect(e.message).toBe('orders: attempt timeout of 250 ms exceeded');
  });

  it('invalid policy lists every issue with path, value and expectation', () => {
    const e = new InvalidPolicyError('policy file ./p.yaml', [
      { path: 'defaults.retries.attempts', value: -1, message: 'expected an integer >= 0' },
      { path: 'upstreams.orders.loadBalancer.policy', value: 'rr', message: 'expected one of round_robin, random' },
    ]);
    expect(e.code).toBe('INMESH_ERR_INVALID_POLICY');
    expect(e.message).toContain('invalid policy file ./p.yaml: 2 problems');
    expect(e.message).toContain('defaults.retries.attempts: expected an integer >= 0 (got -1)');
    expect(e.message).toContain('upstreams.orders.loadBalancer.policy: expected one of round_robin, random (got "rr")');
    expect(Object.isFrozen(e.issues)).toBe(true);
  });

  it('upstream errors summarise the attempts', () => {
    const e = new UpstreamError('orders', [
      { endpoint: '127.0.0.1:1', error: 'ECONNREFUSED' },
      { endpoint: '127.0.0.1:2', status: 503 },
    ]);
    expect(e.message).toBe('orders: request failed after 2 attempts (last: status 503 from 127.0.0.1:2)');
  });
});
