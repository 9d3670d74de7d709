import { describe, expect, it } from 'vitest';
import {
  AbortedError,
  CircuitOpenError,
  ClosedError,
  ErrorCodes,
  LoadShedError,
  NoEndpointsError,
  RateLimitedError,
  RetryBudgetExhaustedError,
  TimeoutError,
  UpstreamError,
} from '../../../src/errors.ts';
import { countsAsUpstreamFailure, createBreakerLayer } from '../../../src/resilience/breaker.ts';
import type { BreakerState } from '../../../src/resilience/breaker.ts';
import type { Handler, MeshRequest, MeshResponse } from '../../../src/core/types.ts';
import type { ResolvedCircuitBreaker, ResolvedUpstream } from '../../../src/policy/types.ts';
import { fakeRequest } from '../../harness/mesh-request.ts';

function upstream(cb: Partial<ResolvedCircuitBreaker> = {}): ResolvedUpstream {
  return {
    name: 'orders',
    circuitBreaker: { enabled: true, errorThresholdPercent: 50, minimumRequests: 4, window: 10_000, halfOpenAfter: 40, ...cb },
    limits: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRequestsPerConnection: 0 },
    rateLimit: undefined,
  } as unknown as ResolvedUpstream;
}

const request = (up: ResolvedUpstream, signal?: AbortSignal): MeshRequest => fakeRequest(up, { signal });

function response(statusCode: number): MeshResponse {
  return { statusCode, headers: {}, body: null as never, trailers: {}, endpoint: '127.0.0.1:1', attempts: 1 };
}

type Outcome = number | Error;

/** An inner handler that answers from a script (status code or error) and counts its calls. */
function scripted(): { handler: Handler; calls: () => number; push: (...o: Outcome[]) => void } {
  const queue: Outcome[] = [];
  let calls = 0;
  const handler: Handler = async () => {
    calls++;
    const next = queue.shift() ?? 200;
    if (typeof next === 'number') return response(next);
    throw next;
  };
  return { handler, calls: () => calls, push: (...o) => queue.push(...o) };
}

function stateRecorder() {
  const seen: BreakerState[] = [];
  const waiters: { state: BreakerState; resolve: () => void }[] = [];
  const onStateChange = (s: BreakerState): void => {
    seen.push(s);
    for (const w of waiters.splice(0)) {
      if (w.state === s) w.resolve();
      else waiters.push(w);
    }
  };
  const next = (state: BreakerState): Promise<void> =>
    new Promise((resolve) => {
      waiters.push({ state, resolve });
    });
  return { seen, onStateChange, next };
}

const upstreamError = () => new UpstreamError('orders', [{ endpoint: '127.0.0.1:1', error: 'ECONNREFUSED' }]);

async function settle(h: Handler, req: MeshRequest): Promise<MeshResponse | Error> {
  try {
    return await h(req);
  } catch (e) {
    return e as Error;
  }
}

describe('createBreakerLayer', () => {
  it('returns undefined when the breaker is disabled', () => {
    expect(createBreakerLayer(upstream({ enabled: false }))).toBeUndefined();
  });

  it('does not open on one early failure (minimum volume)', async () => {
    const up = upstream({ minimumRequests: 4 });
    const rec = stateRecorder();
    const layer = createBreakerLayer(up, { onStateChange: rec.onStateChange })!;
    const inner = scripted();
    const h = layer(inner.handler);
    inner.push(upstreamError());
    expect(await settle(h, request(up))).toBeInstanceOf(UpstreamError);
    expect(layer.state).toBe('closed');
    const res = await h(request(up));
    expect(res.statusCode).toBe(200);
    expect(inner.calls()).toBe(2);
    expect(rec.seen).toEqual([]);
    await layer.close();
  });

  it('opens at the threshold, then fails fast without calling the inner handler', async () => {
    const up = upstream({ minimumRequests: 4, errorThresholdPercent: 50 });
    const rec = stateRecorder();
    const layer = createBreakerLayer(up, { onStateChange: rec.onStateChange })!;
    const inner = scripted();
    const h = layer(inner.handler);
    const opened = rec.next('open');
    inner.push(200, upstreamError(), 200, new TimeoutError('total', 100, { service: 'orders' }));
    for (let i = 0; i < 3; i++) await settle(h, request(up));
    expect(layer.state).toBe('closed');
    await settle(h, request(up)); // 2 of 4 failed = 50 %: at the threshold
    await opened;
    expect(layer.state).toBe('open');
    const before = inner.calls();
    for (let i = 0; i < 5; i++) {
      const err = await settle(h, request(up));
      expect(err).toBeInstanceOf(CircuitOpenError);
      expect((err as CircuitOpenError).code).toBe(ErrorCodes.CIRCUIT_OPEN);
      expect((err as CircuitOpenError).message).toBe('orders: circuit breaker is open, failing fast');
      expect(((err as Error).cause as { code: string }).code).toBe('EOPENBREAKER');
    }
    expect(inner.calls()).toBe(before);
    await layer.close();
  });

  it('stays closed below the threshold', async () => {
    const up = upstream({ minimumRequests: 4, errorThresholdPercent: 50 });
    const layer = createBreakerLayer(up)!;
    const inner = scripted();
    const h = layer(inner.handler);
    inner.push(200, 200, upstreamError(), 200, 200, 200);
    for (let i = 0; i < 6; i++) await settle(h, request(up));
    expect(layer.state).toBe('closed');
    await layer.close();
  });

  it('half-opens after halfOpenAfter, lets one probe through and closes on its success', async () => {
    const up = upstream({ minimumRequests: 2, errorThresholdPercent: 50, halfOpenAfter: 30 });
    const rec = stateRecorder();
    const layer = createBreakerLayer(up, { onStateChange: rec.onStateChange })!;
    let release: (r: MeshResponse) => void = () => {};
    let calls = 0;
    let mode: 'fail' | 'hold' = 'fail';
    const h = layer(async () => {
      calls++;
      if (mode === 'fail') throw upstreamError();
      return new Promise<MeshResponse>((resolve) => (release = resolve));
    });
    const opened = rec.next('open');
    await settle(h, request(up));
    await settle(h, request(up));
    await opened;
    await rec.next('half-open');
    expect(layer.state).toBe('half-open');
    mode = 'hold';
    const closedAgain = rec.next('closed');
    const probe = h(request(up));
    // While the probe is in flight every other call fails fast.
    expect(await settle(h, request(up))).toBeInstanceOf(CircuitOpenError);
    expect(calls).toBe(3);
    release(response(200));
    expect((await probe).statusCode).toBe(200);
    await closedAgain;
    expect(layer.state).toBe('closed');
    expect(rec.seen).toEqual(['open', 'half-open', 'closed']);
    await layer.close();
  });

  it('reopens when the half-open probe fails', async () => {
    const up = upstream({ minimumRequests: 2, halfOpenAfter: 30 });
    const rec = stateRecorder();
    const layer = createBreakerLayer(up, { onStateChange: rec.onStateChange })!;
    const inner = scripted();
    const h = layer(inner.handler);
    inner.push(upstreamError(), upstreamError());
    const opened = rec.next('open');
    await settle(h, request(up));
    await settle(h, request(up));
    await opened;
    await rec.next('half-open');
    inner.push(503);
    const reopened = rec.next('open');
    const res = await h(request(up));
    expect(res.statusCode).toBe(503); // the probe's 5xx still reaches the caller
    await reopened;
    expect(layer.state).toBe('open');
    expect(await settle(h, request(up))).toBeInstanceOf(CircuitOpenError);
    expect(rec.seen).toEqual(['open', 'half-open', 'open']);
    await layer.close();
  });

  it('does not close on a half-open probe that the caller aborted; it reopens without counting', async () => {
    const up = upstream({ minimumRequests: 2, halfOpenAfter: 30 });
    const rec = stateRecorder();
    const layer = createBreakerLayer(up, { onStateChange: rec.onStateChange })!;
    const inner = scripted();
    const h = layer(inner.handler);
    inner.push(upstreamError(), upstreamError());
    const opened = rec.next('open');
    await settle(h, request(up));
    await settle(h, request(up));
    await opened;
    await rec.next('half-open');
    inner.push(new AbortedError({ service: 'orders' }));
    const reopened = rec.next('open');
    expect(await settle(h, request(up))).toBeInstanceOf(AbortedError);
    await reopened;
    expect(rec.seen).toEqual(['open', 'half-open', 'open']);
    // The next probe still comes and can close it.
    await rec.next('half-open');
    inner.push(200);
    expect((await h(request(up))).statusCode).toBe(200);
    expect(layer.state).toBe('closed');
    await layer.close();
  });

  it('never counts caller aborts, load shedding or rate limiting', async () => {
    const up = upstream({ minimumRequests: 2, errorThresholdPercent: 1 });
    const rec = stateRecorder();
    const layer = createBreakerLayer(up, { onStateChange: rec.onStateChange })!;
    const inner = scripted();
    const h = layer(inner.handler);
    const abortError = new DOMException('This operation was aborted', 'AbortError');
    for (let i = 0; i < 10; i++) {
      inner.push(
        new AbortedError({ service: 'orders' }),
        new LoadShedError('orders', 'maxPendingRequests'),
        new RateLimitedError('orders'),
        abortError,
      );
    }
    const errors = [];
    for (let i = 0; i < 40; i++) errors.push(await settle(h, request(up)));
    expect(errors.every((e) => e instanceof Error && !(e instanceof CircuitOpenError))).toBe(true);
    expect(errors[1]).toBeInstanceOf(LoadShedError); // passed through untouched
    expect(layer.state).toBe('closed');
    expect(rec.seen).toEqual([]);
    await layer.close();
  });

  it('counts 5xx responses and still returns them to the caller', async () => {
    const up = upstream({ minimumRequests: 3, errorThresholdPercent: 50 });
    const rec = stateRecorder();
    const layer = createBreakerLayer(up, { onStateChange: rec.onStateChange })!;
    const sent: MeshResponse[] = [];
    const h = layer(async () => {
      const r = response(sent.length === 0 ? 404 : 502);
      sent.push(r);
      return r;
    });
    const opened = rec.next('open');
    const got = [];
    for (let i = 0; i < 3; i++) got.push(await h(request(up)));
    expect(got.map((r) => r.statusCode)).toEqual([404, 502, 502]);
    expect(got[1]).toBe(sent[1]); // the very same response object, body untouched
    await opened; // 2 of 3 were 5xx; the 404 is a success for the breaker
    expect(await settle(h, request(up))).toBeInstanceOf(CircuitOpenError);
    await layer.close();
  });

  it('fails with ClosedError after close() and changes state no more', async () => {
    const up = upstream({ minimumRequests: 1, halfOpenAfter: 20 });
    const rec = stateRecorder();
    const layer = createBreakerLayer(up, { onStateChange: rec.onStateChange })!;
    const inner = scripted();
    const h = layer(inner.handler);
    inner.push(upstreamError());
    const opened = rec.next('open');
    await settle(h, request(up));
    await opened;
    await layer.close();
    await layer.close(); // idempotent
    const err = await settle(h, request(up));
    expect(err).toBeInstanceOf(ClosedError);
    expect((err as ClosedError).code).toBe(ErrorCodes.CLOSED);
    expect((err as ClosedError).message).toBe('circuit breaker of orders is closed');
    // The reset timer was cleared by shutdown: no half-open arrives. A later
    // timer proves time passed beyond halfOpenAfter.
    await new Promise((r) => setTimeout(r, 60));
    expect(rec.seen).toEqual(['open']);
  });

  it('a throwing onStateChange hook does not break calls', async () => {
    const up = upstream({ minimumRequests: 1 });
    const layer = createBreakerLayer(up, {
      onStateChange: () => {
        throw new Error('hook');
      },
    })!;
    const inner = scripted();
    const h = layer(inner.handler);
    inner.push(upstreamError());
    expect(await settle(h, request(up))).toBeInstanceOf(UpstreamError);
    expect(layer.state).toBe('open');
    await layer.close();
  });
});

describe('countsAsUpstreamFailure', () => {
  const table: [string, unknown, boolean][] = [
    ['UpstreamError', upstreamError(), true],
    ['TimeoutError', new TimeoutError('attempt', 10), true],
    ['NoEndpointsError', new NoEndpointsError('orders'), true],
    ['RetryBudgetExhaustedError', new RetryBudgetExhaustedError('orders'), true],
    ['untranslated socket error', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), true],
    ['AbortedError', new AbortedError(), false],
    ['DOMException AbortError', new DOMException('aborted', 'AbortError'), false],
    ['undici RequestAbortedError', Object.assign(new Error('Request aborted'), { code: 'UND_ERR_ABORTED' }), false],
    ['LoadShedError', new LoadShedError('orders', 'maxRequests'), false],
    ['RateLimitedError', new RateLimitedError('orders'), false],
    ['CircuitOpenError', new CircuitOpenError('orders'), false],
    ['ClosedError', new ClosedError(), false],
  ];
  it.each(table)('%s -> %s', (_name, error, expected) => {
    expect(countsAsUpstreamFailure(error)).toBe(expected);
  });
});

describe('createBreakerLayer with deps.answering (partial outages)', () => {
  it('does not count failures while some endpoint is answering, and counts them once none is', async () => {
    const up = upstream({ minimumRequests: 4, errorThresholdPercent: 50 });
    let answering = true;
    const rec = stateRecorder();
    const layer = createBreakerLayer(up, { onStateChange: rec.onStateChange, answering: () => answering })!;
    const inner = scripted();
    const h = layer(inner.handler);
    inner.push(503, 503, upstreamError(), 503, 503, 503, 503, 503);
    for (let i = 0; i < 8; i++) await settle(h, request(up));
    expect(layer.state).toBe('closed');
    expect(rec.seen).toEqual([]);
    expect(inner.calls()).toBe(8);

    answering = false;
    const opened = rec.next('open');
    // the 8 uncounted failures sit in the window as successes (opossum has no "ignore"):
    // 8 counted failures of 16 calls reach the 50 % threshold
    inner.push(503, 503, 503, 503, 503, 503, 503, 503);
    for (let i = 0; i < 8 && layer.state === 'closed'; i++) await settle(h, request(up));
    await opened;
    expect(layer.state).toBe('open');
    expect(await settle(h, request(up))).toBeInstanceOf(CircuitOpenError);
    await layer.close();
  });

  it('asks answering() only when a call failed', async () => {
    const up = upstream();
    let asked = 0;
    const layer = createBreakerLayer(up, { answering: () => (asked++, true) })!;
    const inner = scripted();
    const h = layer(inner.handler);
    inner.push(200, 200, 503, 200);
    for (let i = 0; i < 4; i++) await settle(h, request(up));
    expect(asked).toBe(1);
    await layer.close();
  });
});
