import { describe, expect, it } from 'vitest';
import { validateEndpoint } from '../../../src/registry/validate.ts';
import { WatchHub, type WatchSink, type WatchSource } from '../../../src/registry/watch-hub.ts';
import type { Endpoint } from '../../../src/registry/types.ts';
import { captureLogger, EndpointRecorder } from '../../harness/registry-helpers.ts';

function ep(port: number): Endpoint {
  const r = validateEndpoint({ address: '127.0.0.1', port });
  if (!r.ok) throw new Error(r.reason);
  return r.endpoint;
}

function hubWithSinks(): { hub: WatchHub; sinks: Map<string, WatchSink>; started: string[]; stopped: string[]; logger: ReturnType<typeof captureLogger> } {
  const sinks = new Map<string, WatchSink>();
  const started: string[] = [];
  const stopped: string[] = [];
  const logger = captureLogger();
  const hub = new WatchHub(
    'static',
    (q): WatchSource => ({
      start: (sink) => {
        started.push(q.service);
        sinks.set(q.service, sink);
      },
      stop: () => stopped.push(q.service),
    }),
    logger,
  );
  return { hub, sinks, started, stopped, logger };
}

describe('WatchHub', () => {
  it('one watch per query for any number of subscribers; stops with the last one', () => {
    const { hub, started, stopped } = hubWithSinks();
    const subs = Array.from({ length: 100 }, (_, i) => hub.subscribe({ service: `s${i % 3}`, tags: ['b', 'a', 'a'] }, () => undefined));
    hub.subscribe({ service: 's0', tags: ['a', 'b'] }, () => undefined).close();
    expect(hub.watchCount).toBe(3);
    expect(started.sort()).toEqual(['s0', 's1', 's2']);
    for (const s of subs) s.close();
    expect(hub.watchCount).toBe(0);
    expect(stopped.sort()).toEqual(['s0', 's1', 's2']);
  });

  it('emits only actual changes, keeps the last good set on failure, and reports staleness', async () => {
    const { hub, sinks } = hubWithSinks();
    const rec = new EndpointRecorder();
    const errors: string[] = [];
    const sub = hub.subscribe({ service: 'x' }, rec.listener, { onError: (e) => errors.push(e.message) });
    expect(sub.staleness()).toBe(Number.POSITIVE_INFINITY);
    const sink = sinks.get('x')!;
    sink.update([ep(1), ep(2)]);
    sink.update([ep(2), ep(1)]);
    expect(rec.history).toHaveLength(1);
    expect(sub.staleness()).toBe(0);
    sink.fail(new Error('down'));
    expect(errors).toEqual(['down']);
    expect(sub.endpoints).toHaveLength(2);
    await expect.poll(() => sub.staleness()).toBeGreaterThan(0);
    sink.update([ep(1)]);
    expect(rec.history).toHaveLength(2);
    expect(sub.staleness()).toBe(0);
    // A late subscriber gets the current set (asynchronously).
    const late = new EndpointRecorder();
    hub.subscribe({ service: 'x' }, late.listener);
    expect(late.history).toHaveLength(0);
    await late.until((e) => e.length === 1);
  });

  it('a throwing listener is logged and does not stop the others', () => {
    const { hub, sinks, logger } = hubWithSinks();
    const rec = new EndpointRecorder();
    hub.subscribe({ service: 'x' }, () => {
      throw new Error('boom');
    });
    hub.subscribe({ service: 'x' }, rec.listener);
    sinks.get('x')!.update([ep(1)]);
    expect(rec.history).toHaveLength(1);
    expect(logger.text()).toMatch(/listener threw.*boom/);
  });

  it('resolve() rejects with the first error when there was never an answer', async () => {
    const { hub, sinks } = hubWithSinks();
    const p = hub.resolve({ service: 'x' });
    sinks.get('x')!.fail(new Error('refused'));
    await expect(p).rejects.toThrow('refused');
  });
});
