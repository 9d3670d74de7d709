// With no SDK registered the layer must cost ~nothing: no span work, no
// context, no extra promise; and `enabled: false` removes it altogether.
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createTelemetry } from '../../../src/telemetry/layer.ts';
import { fakeRequest, fakeResponse } from './fixtures.ts';
import { registerOtel } from './otel-harness.ts';

function disableAll(): void {
  trace.disable();
  metrics.disable();
  propagation.disable();
  context.disable();
}

beforeEach(disableAll);
afterEach(disableAll);

describe('telemetry layer without an SDK', () => {
  it('is absent when disabled', () => {
    expect(createTelemetry({ enabled: false })).toBeUndefined();
  });

  it('returns the next handler’s own promise and leaves the headers alone', async () => {
    const layer = createTelemetry({ enabled: true })!.layer;
    const pending = Promise.resolve(fakeResponse());
    const req = fakeRequest({ headers: { a: 'b' } });
    const handler = layer(() => pending);
    const out = handler(req);
    expect(out).toBe(pending);
    await out;
    expect(req.headers).toEqual({ a: 'b' });
  });

  it('starts no span at all while no tracer provider is registered', async () => {
    const startSpan = vi.fn();
    const spy = vi.spyOn(trace, 'getTracer').mockReturnValue({ startSpan, startActiveSpan: vi.fn() } as never);
    try {
      const { layer, attempt } = createTelemetry({ enabled: true })!;
      const pending = Promise.resolve(fakeResponse());
      const transport = attempt(() => pending);
      let inner: Promise<unknown> | undefined;
      await layer((req) => (inner = transport(req)))(fakeRequest());
      expect(startSpan).not.toHaveBeenCalled();
      // The attempt hook passes the transport's own promise on: nothing extra per attempt.
      expect(inner).toBe(pending);
    } finally {
      spy.mockRestore();
    }
  });

  it('still propagates an inbound trace context when only a propagator is registered', async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    const layer = createTelemetry({ enabled: true })!.layer;
    const inbound = propagation.extract(context.active(), {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    const req = fakeRequest();
    await context.with(inbound, () => layer(() => Promise.resolve(fakeResponse()))(req));
    expect(req.headers.traceparent).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  });

  it('picks up a tracer provider registered after the layer was built (the API tracer is a proxy)', async () => {
    const layer = createTelemetry({ enabled: true })!.layer;
    const otel = registerOtel({ metrics: false });
    try {
      await layer(() => Promise.resolve(fakeResponse()))(fakeRequest());
      expect((await otel.spans()).map((s) => s.name)).toEqual(['GET orders']);
    } finally {
      await otel.shutdown();
    }
  });
});
