import { afterEach, describe, expect, it } from 'vitest';
import { Guard } from '../../../src/guard/guard.ts';
import { CircuitOpenError, ErrorCodes, InvalidArgumentError, InvalidPolicyError, TimeoutError, UpstreamError } from '../../../src/errors.ts';
import { createMesh, type Mesh } from '../../../src/mesh/mesh.ts';
import { isHistogram, registerOtel, type OtelHarness } from '../telemetry/otel-harness.ts';

const coded = (code: string, message = code): Error => Object.assign(new Error(message), { code });

let mesh: Mesh | undefined;
let otel: OtelHarness | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await otel?.shutdown();
  otel = undefined;
});

function meshWith(resources: Record<string, unknown>): Mesh {
  mesh = createMesh({ policy: { apiVersion: 'inmesh/v1', resources } as never, env: {}, telemetry: { enabled: false } });
  return mesh;
}

describe('classification: what a guarded call retries', () => {
  const fast = { backoff: { base: '1ms', max: '2ms' } };

  it('a retryOn code is retried for any call; a reply that is not listed is never retried', async () => {
    const m = meshWith({ cache: { retries: { attempts: 3, retryOn: ['READONLY'], ...fast } } });
    let n = 0;
    await expect(m.guard('cache', () => (++n < 3 ? Promise.reject(new Error('READONLY You cannot write against a read only replica.')) : 'ok'))).resolves.toBe('ok');
    expect(n).toBe(3);
    let k = 0;
    const err = await m.guard('cache', () => { k++; throw new Error('WRONGTYPE Operation against a key holding the wrong kind of value'); }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^WRONGTYPE/);
    expect(k).toBe(1);
  });

  it('a per-try timeout or a reset is retried only when the call says idempotent: true', async () => {
    const m = meshWith({ db: { timeouts: { perTry: '20ms', request: '2s' }, retries: { attempts: 2, ...fast } } });
    const hang = (signal: AbortSignal | undefined) => new Promise((_, reject) => signal?.addEventListener('abort', () => reject(new Error('aborted'))));
    let n = 0;
    const once = await m.guard('db', (s) => { n++; return hang(s); }).catch((e: unknown) => e);
    expect(once).toBeInstanceOf(TimeoutError);
    expect((once as TimeoutError).phase).toBe('attempt');
    expect(n).toBe(1);
    let k = 0;
    await expect(m.guard('db', (s) => (++k === 1 ? hang(s) : 'second'), { idempotent: true })).resolves.toBe('second');
    expect(k).toBe(2);
    let r = 0;
    await expect(m.guard('db', () => { r++; throw coded('ECONNRESET'); })).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(r).toBe(1);
    const all = await m.guard('db', () => { r++; throw coded('ECONNRESET'); }, { idempotent: true }).catch((e: unknown) => e);
    expect(all).toBeInstanceOf(UpstreamError);
    expect((all as UpstreamError).attempts.map((a) => a.error)).toEqual(['ECONNRESET', 'ECONNRESET', 'ECONNRESET']);
  });

  it('neverRetry wins over retryOn, idempotent and a predicate', async () => {
    const m = meshWith({ db: { retries: { attempts: 3, retryOn: ['23505'], neverRetry: ['23505'], idempotent: true, ...fast } } });
    let n = 0;
    await expect(m.guard('db', () => { n++; throw coded('23505', 'duplicate key'); }, { isRetryable: () => true })).rejects.toMatchObject({ code: '23505' });
    expect(n).toBe(1);
  });

  it('a predicate in code decides for the failures it sees', async () => {
    const g = new Guard({ q: { retries: 2, retryBaseInterval: 1, retryMaxInterval: 2, isRetryable: (e) => (e as Error).message === 'busy' } });
    let n = 0;
    await expect(g.guard('q', () => (++n < 3 ? Promise.reject(new Error('busy')) : n))).resolves.toBe(3);
    await g.close();
  });
});

describe('mesh.guard with the resources block', () => {
  it('the breaker opens after failures and then fails fast without calling fn', async () => {
    const m = meshWith({ r: { retries: { attempts: 0 }, circuitBreaker: { minimumRequests: 4, errorThresholdPercent: 50, window: '10s', halfOpenAfter: '10s' } } });
    let calls = 0;
    for (let i = 0; i < 4; i++) await m.guard('r', () => { calls++; throw coded('ECONNREFUSED'); }).catch(() => undefined);
    const err = await m.guard('r', () => { calls++; return 1; }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect(calls).toBe(4);
  });

  it('a local rate limit refuses above the burst', async () => {
    const m = meshWith({ r: { rateLimit: { requestsPerSecond: 0.001, burst: 2 } } });
    await m.guard('r', () => 1);
    await m.guard('r', () => 2);
    await expect(m.guard('r', () => 3)).rejects.toMatchObject({ code: ErrorCodes.RATE_LIMITED });
  });

  it('guarded() wraps a function for repeated use, the signal first', async () => {
    const m = meshWith({ q: { timeouts: { request: '1s' } } });
    const publish = m.guarded('q', (signal, topic: string, n: number) => `${signal instanceof AbortSignal}:${topic}:${n}`);
    await expect(publish('a', 1)).resolves.toBe('true:a:1');
  });

  it('a name with no policy calls fn directly with no signal', async () => {
    const m = meshWith({});
    await expect(m.guard('none', (signal) => signal)).resolves.toBeUndefined();
  });

  it('bad input: a typed error naming the field and the value', async () => {
    const m = meshWith({ r: {} });
    await expect(m.guard('r', () => 1, { timeout: -5 })).rejects.toThrow(new InvalidArgumentError('timeout must be a number of ms from 0 to 86400000 (24 h) (got -5)'));
    expect(() => createMesh({ policy: { apiVersion: 'inmesh/v1', resources: { r: { retries: { retryOn: 'ECONNRESET' } } } } as never, env: {} })).toThrow(InvalidPolicyError);
    expect(() => new Guard({ r: { maxRequests: 0 } })).toThrow('resource r: maxRequests must be an integer >= 1 (got 0)');
    // Retries are bounded in count as in the document (0 to 10); Infinity means unlimited only for limits.
    expect(() => new Guard({ r: { retries: Infinity } })).toThrow(new InvalidArgumentError('resource r: retries must be an integer from 0 to 10 (got Infinity)'));
    expect(() => new Guard({ r: { retries: 11 } })).toThrow('resource r: retries must be an integer from 0 to 10 (got 11)');
    expect(new Guard({ r: { retries: 10, maxRequests: Infinity } }).runtime('r')?.resource.retries.attempts).toBe(10);
  });

  it('a thenable that is not a Promise (a knex or Mongoose query) runs inside the chain: its failure is retried, its stall timed out', async () => {
    const m = meshWith({ db: { timeouts: { perTry: '30ms', request: '2s' }, retries: { attempts: 2, retryOn: ['ECONNRESET'], backoff: { base: '1ms', max: '2ms' } } } });
    const query = (run: () => Promise<string>): PromiseLike<string> => ({ then: (ok, fail) => run().then(ok, fail) });
    let n = 0;
    await expect(m.guard('db', () => query(() => (++n === 1 ? Promise.reject(coded('ECONNRESET')) : Promise.resolve('rows'))))).resolves.toBe('rows');
    expect(n).toBe(2);
    const stalled = await m.guard('db', () => query(() => new Promise<string>(() => undefined))).catch((e: unknown) => e);
    expect(stalled).toBeInstanceOf(TimeoutError);
    expect((stalled as TimeoutError).phase).toBe('attempt');
  });

  it('fn that is not a function, options that are not an object: an InvalidArgumentError, for a resource with a policy as for one without', async () => {
    const m = meshWith({ r: {} });
    await expect(m.guard('r', 5 as never)).rejects.toThrow(new InvalidArgumentError('guard("r"): fn must be a function (got 5)'));
    await expect(m.guard('none', 5 as never)).rejects.toThrow(new InvalidArgumentError('guard("none"): fn must be a function (got 5)'));
    await expect(new Guard({ r: {} }).guard('r', null as never)).rejects.toThrow(new InvalidArgumentError('guard("r"): fn must be a function (got null)'));
    await expect(m.guard('r', () => 1, 5 as never)).rejects.toThrow(new InvalidArgumentError('guard("r"): options must be an object (got 5)'));
    await expect(m.guard('none', () => 1, 'fast' as never)).rejects.toThrow(new InvalidArgumentError('guard("none"): options must be an object (got "fast")'));
  });
});

describe('telemetry of guarded calls', () => {
  it('one CLIENT span per call with the database conventions, and db.client.operation.duration', async () => {
    otel = registerOtel();
    mesh = createMesh({ policy: { apiVersion: 'inmesh/v1', resources: { cache: { retries: { attempts: 1, retryOn: ['READONLY'], backoff: { base: '1ms', max: '1ms' } } } } }, env: {} });
    let n = 0;
    await mesh.guard('cache', () => (++n === 1 ? Promise.reject(new Error('READONLY replica')) : 'v'), { system: 'redis', operation: 'GET' });
    await mesh.guard('cache', () => Promise.reject(coded('WRONGTYPE')), { system: 'redis', operation: 'LPUSH' }).catch(() => undefined);
    const spans = await otel.spansWhen((s) => s.length >= 2);
    expect(spans.map((s) => [s.name, s.kind])).toEqual([['GET', 2], ['LPUSH', 2]]);
    expect(spans[0]?.attributes).toMatchObject({ 'db.system.name': 'redis', 'db.operation.name': 'GET', 'inmesh.resource': 'cache', 'inmesh.attempts': 2 });
    expect(spans[1]?.attributes).toMatchObject({ 'error.type': 'WRONGTYPE' });
    const metric = await otel.metric('db.client.operation.duration');
    expect(isHistogram(metric)).toBe(true);
    expect(metric?.descriptor.unit).toBe('s');
    expect(metric?.dataPoints.length).toBe(2);
  });
});

describe('the breaker and the classification', () => {
  it('a neverRetry error is the resource answering: it never opens the breaker; an outage does', async () => {
    const m = meshWith({ db: { retries: { attempts: 0, neverRetry: ['23505'] }, circuitBreaker: { minimumRequests: 2, errorThresholdPercent: 50, halfOpenAfter: '50ms' } } });
    for (let i = 0; i < 10; i++) await m.guard('db', () => Promise.reject(coded('23505', 'duplicate key'))).catch(() => undefined);
    await expect(m.guard('db', () => 'up')).resolves.toBe('up');
    // An outage still opens it: 11 calls counted as successes, so the 11th failure reaches 50 %.
    let failures = 0;
    for (let i = 0; i < 30; i++) {
      const err = await m.guard('db', () => Promise.reject(coded('ECONNREFUSED'))).catch((e: unknown) => e);
      if (err instanceof CircuitOpenError) break;
      failures++;
    }
    expect(failures).toBe(11);
    await expect(m.guard('db', () => 'up')).rejects.toBeInstanceOf(CircuitOpenError);
  });
});
