import { describe, expect, it } from 'vitest';
import { agentGate } from '../../../src/registry/agent-gate.ts';

describe('agentGate', () => {
  it('runs at most the smallest limit of its members, plain reads first, each kind in arrival order', async () => {
    const gate = agentGate('http://gate-test:1');
    const a = {};
    const b = {};
    gate.join(a, 3);
    gate.join(b, 2);
    expect(gate.limit).toBe(2);
    expect(gate.contended).toBe(false);
    const signal = new AbortController().signal;
    const order: string[] = [];
    const take = (name: string, kind: 'read' | 'block') =>
      gate.acquire(kind, signal).then((release) => {
        order.push(name);
        return release;
      });
    const first = await Promise.all([take('b1', 'block'), take('b2', 'block')]);
    const waiting = [take('b3', 'block'), take('r1', 'read'), take('b4', 'block'), take('r2', 'read')];
    await Promise.resolve();
    expect(gate.active).toBe(2);
    expect(order).toEqual(['b1', 'b2']);
    first[0]?.();
    first[1]?.();
    const next = await Promise.all(waiting.slice(1, 2).concat(waiting.slice(3)));
    expect(order).toEqual(['b1', 'b2', 'r1', 'r2']);
    for (const release of next) release?.();
    const rest = await Promise.all([waiting[0], waiting[2]]);
    expect(order).toEqual(['b1', 'b2', 'r1', 'r2', 'b3', 'b4']);
    for (const release of rest) release?.();
    expect(gate.active).toBe(0);
    gate.leave(a);
    gate.leave(b);
    expect(agentGate('http://gate-test:1')).not.toBe(gate); // dropped when empty
  });

  it('a waiter whose signal aborts leaves the queue; three watches on two places are contended', async () => {
    const gate = agentGate('http://gate-test:2');
    const members = [{}, {}, {}];
    for (const m of members) gate.join(m, 2);
    expect(gate.contended).toBe(true);
    const open = new AbortController().signal;
    const held = await Promise.all([gate.acquire('block', open), gate.acquire('block', open)]);
    const abort = new AbortController();
    const queued = gate.acquire('block', abort.signal);
    const after = gate.acquire('block', open);
    abort.abort();
    expect(await queued).toBeUndefined();
    held[0]?.();
    const granted = await after;
    expect(granted).toBeTypeOf('function');
    expect(gate.active).toBe(2);
    granted?.();
    held[1]?.();
    granted?.(); // a second release is a no-op
    expect(gate.active).toBe(0);
    for (const m of members) gate.leave(m);
  });
});
