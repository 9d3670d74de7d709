import { describe, expect, it } from 'vitest';
import { RetryBudget } from '../../../src/resilience/budget.ts';

describe('RetryBudget (Envoy retry_budget)', () => {
  it('allows max(minConcurrency, floor(percent% of active)) retries in flight', () => {
    const b = new RetryBudget({ percent: 20, minConcurrency: 3 });
    b.active = 10; // 20 % of 10 = 2 < 3
    expect(b.limit).toBe(3);
    expect([b.tryAcquire(), b.tryAcquire(), b.tryAcquire(), b.tryAcquire()]).toEqual([true, true, true, false]);
    b.release();
    expect(b.tryAcquire()).toBe(true);
    b.active = 100; // 20 % of 100 = 20
    expect(b.limit).toBe(20);
    let granted = 0;
    for (let i = 0; i < 50; i++) if (b.tryAcquire()) granted++;
    expect(b.retries).toBe(20);
    expect(granted).toBe(17);
  });

  it('truncates like Envoy and never goes below zero on release', () => {
    const b = new RetryBudget({ percent: 25, minConcurrency: 0 });
    b.active = 7; // 1.75 → 1
    expect(b.limit).toBe(1);
    b.release();
    expect(b.retries).toBe(0);
  });
});
