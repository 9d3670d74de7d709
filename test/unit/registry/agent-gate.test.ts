import { describe, expect, it } from 'vitest';
import { agentGate } from '../../../src/registry/agent-gate.ts';

const open = new AbortController().signal;

describe('agentGate', () => {
  it('runs at most the smallest limit of its members, blocking queries in all but one place, plain reads first, each kind in arrival order', async () => {
    const gate = agentGate('http://gate-test:1');
    const a = {};
    const b = {};
    gate.join(a, 4);
    gate.join(b, 3);
    expect(gate.limit).toBe(3);
    expect(gate.blockingPlaces).toBe(2);
    expect(gate.contended).toBe(false);
    const order: string[] = [];
    const take = (name: string, kind: 'read' | 'block') =>
      gate.acquire(kind, open).then((release) => {
        order.push(name);
        return release;
      });
    const first = await Promise.all([take('b1', 'block'), take('b2', 'block')]);
    const b3 = take('b3', 'block');
    await Promise.resolve();
    // The third place stays free for plain reads: b3 waits although a place is free.
    expect(gate.active).toBe(2);
    expect(gate.blocking).toBe(2);
    expect(gate.waiting).toBe(1);
    const r1 = await take('r1', 'read');
    expect(order).toEqual(['b1', 'b2', 'r1']);
    const waiting = [take('r2', 'read'), take('b4', 'block'), take('r3', 'read')];
    first[0]?.();
    first[1]?.();
    r1?.();
    const reads = await Promise.all([waiting[0], waiting[2]]);
    expect(order.slice(3, 5)).toEqual(['r2', 'r3']);
    const blocks = await Promise.all([b3]);
    expect(order).toEqual(['b1', 'b2', 'r1', 'r2', 'r3', 'b3']);
    for (const release of [...reads, ...blocks]) release?.();
    const b4 = await waiting[1];
    expect(order).toEqual(['b1', 'b2', 'r1', 'r2', 'r3', 'b3', 'b4']);
    b4?.();
    expect(gate.active).toBe(0);
    gate.leave(a);
    gate.leave(b);
    expect(agentGate('http://gate-test:1')).not.toBe(gate); // dropped when empty
  });

  it('a waiter whose signal aborts leaves the queue; three watches on two places are contended', async () => {
    const gate = agentGate('http://gate-test:2');
    const members = [{}, {}, {}];
    for (const m of members) gate.join(m, 3);
    expect(gate.contended).toBe(true);
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

  it('with one place, a plain read ends the running blocking query early and gets the place', async () => {
    const gate = agentGate('http://gate-test:3');
    const member = {};
    gate.join(member, 1);
    expect(gate.blockingPlaces).toBe(1);
    let preempted = 0;
    const block = await gate.acquire('block', open, () => preempted++);
    expect(preempted).toBe(0);
    const read = gate.acquire('read', open);
    expect(preempted).toBe(1);
    block?.();
    const granted = await read;
    expect(granted).toBeTypeOf('function');
    expect(gate.blocking).toBe(0);
    granted?.();
    gate.leave(member);
  });

  it('reads that find every place taken end the longest-running blocking queries, one per waiting read', async () => {
    const gate = agentGate('http://gate-test:4');
    const member = {};
    gate.join(member, 3);
    const ended: string[] = [];
    const b1 = await gate.acquire('block', open, () => ended.push('b1'));
    const b2 = await gate.acquire('block', open, () => ended.push('b2'));
    const r1 = await gate.acquire('read', open); // the place kept for reads: nothing ends
    expect(ended).toEqual([]);
    const r2 = gate.acquire('read', open);
    expect(ended).toEqual(['b1']);
    const r3 = gate.acquire('read', open);
    expect(ended).toEqual(['b1', 'b2']);
    const r4 = gate.acquire('read', open);
    expect(ended).toEqual(['b1', 'b2']); // none left to end: r4 waits for a read
    b1?.();
    b2?.();
    const granted = await Promise.all([r2, r3]);
    expect(gate.active).toBe(3);
    r1?.();
    const last = await r4;
    for (const release of [...granted, last]) release?.();
    expect(gate.active).toBe(0);
    gate.leave(member);
  });
});
