/** The attempt deadline queue: one FIFO and one timer per duration, O(1) add and cancel. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { armDeadline, deadlineFifoCount } from '../../../src/client/deadline-queue.ts';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('deadline queue', () => {
  it('entries of one duration fire in order, each at its own time, with one timer for all', () => {
    const fired: string[] = [];
    armDeadline(performance.now(), 100, () => fired.push('a'));
    vi.advanceTimersByTime(10);
    armDeadline(performance.now(), 100, () => fired.push('b'));
    vi.advanceTimersByTime(10);
    armDeadline(performance.now(), 100, () => fired.push('c'));
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(79);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(['a']);
    vi.advanceTimersByTime(10);
    expect(fired).toEqual(['a', 'b']);
    vi.advanceTimersByTime(10);
    expect(fired).toEqual(['a', 'b', 'c']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a cancelled entry never fires, also when it was the head the timer was armed for', () => {
    const fired: string[] = [];
    const a = armDeadline(performance.now(), 100, () => fired.push('a'));
    vi.advanceTimersByTime(50);
    const b = armDeadline(performance.now(), 100, () => fired.push('b'));
    armDeadline(performance.now(), 100, () => fired.push('c'));
    a.cancel();
    b.cancel();
    b.cancel(); // idempotent
    vi.advanceTimersByTime(50); // a's time: the timer wakes, finds nothing due, re-arms for c
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(49);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(['c']);
  });

  it('an entry due before its FIFO tail (a retry under an older total deadline) gets its own timer and fires on time', () => {
    const fired: string[] = [];
    const callStart = performance.now();
    vi.advanceTimersByTime(40);
    armDeadline(performance.now(), 100, () => fired.push('new call')); // due at 140
    armDeadline(callStart, 100, () => fired.push('old call retry')); // due at 100, before the tail
    expect(vi.getTimerCount()).toBe(2);
    vi.advanceTimersByTime(60);
    expect(fired).toEqual(['old call retry']);
    vi.advanceTimersByTime(40);
    expect(fired).toEqual(['old call retry', 'new call']);
  });

  it('a fire() that arms the next deadline of the same duration leaves one timer, due at the right time', () => {
    const fired: number[] = [];
    let n = 0;
    const next = (): void => {
      fired.push(performance.now());
      if (++n < 3) armDeadline(performance.now(), 100, next);
    };
    armDeadline(performance.now(), 100, next);
    armDeadline(performance.now(), 100, () => fired.push(-1)); // due at the same time as the first
    vi.advanceTimersByTime(100);
    expect(fired).toEqual([100, -1]);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(200);
    expect(fired).toEqual([100, -1, 200, 300]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('durations do not pile up: a FIFO is dropped once it is idle', () => {
    const before = deadlineFifoCount();
    for (let ms = 1; ms <= 50; ms++) armDeadline(performance.now(), ms, () => undefined).cancel();
    expect(deadlineFifoCount()).toBe(before + 50);
    vi.advanceTimersByTime(50);
    expect(deadlineFifoCount()).toBe(before);
  });
});
