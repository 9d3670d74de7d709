import { describe, expect, it } from 'vitest';
import { Guard } from '../../../src/guard/guard.js';
import { LoadShedError, TimeoutError } from '../../../src/errors.js';

describe('Guard', () => {
  it('calls fn directly with no policy and no signal', async () => {
    const g = new Guard();
    await expect(g.guard('none', (signal) => (signal === undefined ? 'direct' : 'wrapped'))).resolves.toBe('direct');
  });

  it('retries an idempotent call on a retryable code, never on a uniqueness violation', async () => {
    const g = new Guard({ db: { retries: 3, idempotent: true, retryOn: ['ECONNRESET'], retryBaseInterval: 1, retryMaxInterval: 2 } });
    let n = 0;
    await expect(
      g.guard('db', () => {
        n++;
        if (n < 3) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
        return 'ok';
      }),
    ).resolves.toBe('ok');
    expect(n).toBe(3);
    let m = 0;
    await expect(
      g.guard('db', () => {
        m++;
        throw Object.assign(new Error('duplicate key'), { code: '23505' });
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect(m).toBe(1);
  });

  it('times out one try and retries it within the total deadline', async () => {
    const g = new Guard({ r: { perTryTimeout: 20, timeout: 1_000, retries: 2, idempotent: true, retryBaseInterval: 1 } });
    let n = 0;
    const value = await g.guard('r', (signal) => {
      n++;
      if (n === 1) return new Promise<string>((_, reject) => signal?.addEventListener('abort', () => reject(new Error('aborted'))));
      return 'second';
    });
    expect(value).toBe('second');
    expect(n).toBe(2);
  });

  it('fails with a total TimeoutError', async () => {
    const g = new Guard({ r: { timeout: 20 } });
    const err: unknown = await g.guard('r', () => new Promise(() => undefined)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).phase).toBe('total');
  });

  it('sheds above maxRequests', async () => {
    const g = new Guard({ q: { maxRequests: 1 } });
    let release!: () => void;
    const first = g.guard('q', () => new Promise<void>((r) => (release = r)));
    await expect(g.guard('q', () => 1)).rejects.toBeInstanceOf(LoadShedError);
    release();
    await first;
    await expect(g.guard('q', () => 2)).resolves.toBe(2);
  });
});
