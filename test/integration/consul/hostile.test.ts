/**
 * Malformed registry data. A scripted hostile responder stands in for Consul's
 * health endpoint (the only non-Consul server in the Consul tests): whatever it
 * says, only valid endpoints are emitted, the rest is dropped with a warning,
 * and no socket is ever opened to a refused address.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConsulRegistry } from '../../../src/registry/consul.ts';
import { captureLogger, EndpointRecorder, fullIds, ids } from '../../harness/registry-helpers.ts';
import { hostileResponder } from '../../harness/http-helpers.ts';

const entry = (id: string, address: unknown, port: unknown, nodeAddress = '127.0.0.1', node = 'n1') => ({
  Node: { Node: node, Address: nodeAddress, Datacenter: 'dc1' },
  Service: { ID: id, Service: 'x', Address: address, Port: port, Tags: [], Meta: {}, Weights: { Passing: 1, Warning: 1 } },
  Checks: [],
});

describe('hostile registry data', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup() {
    const responder = await hostileResponder();
    cleanups.push(() => responder.close());
    const logger = captureLogger();
    const registry = new ConsulRegistry({
      connection: { host: responder.host, port: responder.port },
      logger,
      minIntervalMs: 5,
      backoffBaseMs: 20,
      backoffMaxMs: 200,
    });
    cleanups.push(() => registry.close());
    // Every TCP connection this process opens during the test.
    const sockets: string[] = [];
    const onSocket = (msg: unknown): void => {
      const socket = (msg as { socket: Socket }).socket;
      socket.once('connect', () => sockets.push(`${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`));
      sockets.push(`connecting`);
    };
    subscribe('net.client.socket', onSocket);
    cleanups.push(() => {
      unsubscribe('net.client.socket', onSocket);
    });
    return { responder, logger, registry, sockets };
  }

  it('drops metadata/link-local addresses, CRLF, bad ports; keeps the valid entry; opens no socket to them', async () => {
    const { responder, logger, registry, sockets } = await setup();
    responder.push({
      index: '10',
      body: [
        entry('good', '127.0.0.1', 8080),
        entry('metadata', '169.254.169.254', 80),
        entry('linklocal6', 'fe80::1', 80),
        entry('crlf', '127.0.0.1\r\nX-Evil: 1', 80),
        entry('p70000', '127.0.0.1', 70000),
        entry('p0', '127.0.0.1', 0),
        entry('pneg', '127.0.0.1', -1),
        entry('pstr', '127.0.0.1', '80'),
        entry('emptyaddr-bad-node', '', 80, '169.254.169.254'),
        entry('gcp', 'metadata.google.internal', 80),
        entry('aton', '169.254.43518', 80),
        { Node: null, Service: null },
        'not an object',
      ],
    });
    const rec = new EndpointRecorder();
    const sub = registry.subscribe({ service: 'x' }, rec.listener);
    cleanups.push(() => sub.close());
    const set = await rec.until((e) => e.length > 0, 5000);
    expect(ids(set)).toEqual(['good']);
    const warnings = logger.warnings().join('\n');
    for (const what of ['cloud metadata address (169.254.169.254)', 'link-local address (fe80::/10)', 'characters no host name', 'port must be an integer 1-65535: 70000', 'port must be an integer 1-65535: 0', 'port must be an integer 1-65535: -1', 'port must be an integer 1-65535: "80"', 'metadata host name', 'neither an IP literal', 'without a Service']) {
      expect(warnings).toContain(what);
    }
    // Logged values are escaped: no raw CR/LF reaches a log line.
    expect(logger.text()).not.toMatch(/\r|\nX-Evil/);
    // The only sockets opened went to the responder on loopback.
    const opened = sockets.filter((s) => s !== 'connecting');
    expect(opened.length).toBeGreaterThan(0);
    expect(opened.every((s) => s === `127.0.0.1:${responder.port}`)).toBe(true);
  });

  it('survives non-list bodies, invalid JSON and 500s, keeping the last good set; handles index 0 and an index going backwards', async () => {
    const { responder, logger, registry } = await setup();
    const rec = new EndpointRecorder();
    const errors: string[] = [];
    const sub = registry.subscribe({ service: 'x' }, rec.listener, { onError: (e) => errors.push(e.message) });
    cleanups.push(() => sub.close());
    responder.push({ index: '100', body: [entry('a', '127.0.0.1', 1)] });
    await rec.until((e) => ids(e).join() === 'a');
    // The index goes backwards (a restored or restarted Consul): the data is used, the next read is a plain one.
    responder.push({ index: '5', body: [entry('a', '127.0.0.1', 1), entry('b', '127.0.0.1', 2)] });
    await rec.until((e) => e.length === 2, 5000, 'the answer with the lower index');
    await expect.poll(() => responder.requests.length, { timeout: 5000 }).toBeGreaterThanOrEqual(3);
    expect(responder.requests.slice(0, 3).map((r) => r.query.get('index'))).toEqual([null, '100', null]);
    // Index 0 is never sent in a blocking query: 1 instead.
    responder.push({ index: '0', body: [entry('b', '127.0.0.1', 2)] });
    await rec.until((e) => ids(e).join() === 'b', 5000);
    await expect.poll(() => responder.requests.at(-1)?.query.get('index'), { timeout: 5000 }).toBe('1');
    // Bad answers: each is one failed round; the last good set stays.
    responder.push({ index: '101', body: { not: 'a list' } });
    responder.push({ index: '102', raw: '[{"Service": ' });
    responder.push({ status: 500, body: 'rpc error' });
    await expect.poll(() => errors.length, { timeout: 5000 }).toBeGreaterThanOrEqual(3);
    expect(errors.some((m) => m.includes('non-list body'))).toBe(true);
    expect(errors.some((m) => m.includes('answered 500'))).toBe(true);
    expect(ids(sub.endpoints)).toEqual(['b']);
    expect(sub.staleness()).toBeGreaterThan(0);
    responder.push({ index: '103', body: [entry('c', '127.0.0.1', 3)] });
    await rec.until((e) => ids(e).join() === 'c', 5000, 'recovery after the bad answers');
    expect(sub.staleness()).toBe(0);
    const indexes = responder.requests.map((r) => r.query.get('index'));
    expect(indexes).not.toContain('0');
    // Every blocking query carried a wait.
    expect(responder.requests.filter((r) => r.query.has('index')).every((r) => r.query.get('wait') === '60s')).toBe(true);
    expect(logger.text()).toContain('consul watch failed');
  });

  it('keeps instances on different nodes that share a Service.ID apart (ids are unique per agent only)', async () => {
    const { responder, registry } = await setup();
    responder.push({
      index: '7',
      body: [
        entry('web', '127.0.0.1', 8080, '127.0.0.1', 'node-a'),
        entry('web', '127.0.0.2', 8080, '127.0.0.2', 'node-b'),
        // A true duplicate (same node, same ID) is still one endpoint.
        entry('web', '127.0.0.1', 8080, '127.0.0.1', 'node-a'),
      ],
    });
    const rec = new EndpointRecorder();
    const sub = registry.subscribe({ service: 'x' }, rec.listener);
    cleanups.push(() => sub.close());
    const set = await rec.until((e) => e.length > 0, 5000);
    expect(fullIds(set)).toEqual(['node-a/web', 'node-b/web']);
    expect(set.map((e) => e.address).sort()).toEqual(['127.0.0.1', '127.0.0.2']);
  });

  it('a logger and a listener that throw kill neither the watch nor the process', async () => {
    const responder = await hostileResponder();
    cleanups.push(() => responder.close());
    const boom = (): never => {
      throw new Error('logger broke');
    };
    const registry = new ConsulRegistry({
      connection: { host: responder.host, port: responder.port },
      logger: { debug: boom, info: boom, warn: boom, error: boom },
      minIntervalMs: 5,
      backoffBaseMs: 5,
      backoffMaxMs: 20,
    });
    cleanups.push(() => registry.close());
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => {
      unhandled.push(e);
    };
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
    cleanups.push(() => {
      process.off('unhandledRejection', onUnhandled);
      process.off('uncaughtException', onUnhandled);
    });
    responder.push({ status: 500, body: 'rpc error' });
    responder.push({ index: '4', body: [entry('metadata', '169.254.169.254', 80)] });
    responder.push({ index: '2', body: { not: 'a list' } });
    responder.push({ index: '9', body: [entry('good', '127.0.0.1', 8080)] });
    const seen: string[][] = [];
    const sub = registry.subscribe(
      { service: 'x' },
      (e) => {
        seen.push(ids(e));
        throw new Error('listener broke');
      },
      {
        onError: () => {
          throw new Error('onError broke');
        },
      },
    );
    cleanups.push(() => sub.close());
    await expect.poll(() => seen.at(-1), { timeout: 5000 }).toEqual(['good']);
    expect(unhandled).toEqual([]);
  });

  it('an instantly answering agent with a rising index: the watch loops on every change, never faster than minIntervalMs', async () => {
    const responder = await hostileResponder((_r, n) => ({ index: String(n + 1), body: [entry(`e${n}`, '127.0.0.1', 8080)] }));
    cleanups.push(() => responder.close());
    const registry = new ConsulRegistry({ connection: { host: responder.host, port: responder.port }, logger: captureLogger(), minIntervalMs: 50 });
    cleanups.push(() => registry.close());
    const rec = new EndpointRecorder();
    const sub = registry.subscribe({ service: 'x' }, rec.listener);
    cleanups.push(() => sub.close());
    // It keeps looping: 40 queries, each answered with a new set, each set emitted.
    const queries = 40;
    await expect.poll(() => responder.requests.length, { timeout: 30_000, interval: 50 }).toBeGreaterThanOrEqual(queries);
    await rec.until((e) => Number(e[0]?.id.slice(4)) >= queries, 10_000, `the set of query ${queries}`);
    const emitted = rec.history.map((h) => h.endpoints[0]?.id);
    expect(emitted.slice(0, queries)).toEqual(Array.from({ length: queries }, (_, i) => `n1/e${i + 1}`));
    // Never faster than one query per minIntervalMs, counted over the whole run: load can only
    // stretch the gaps, so this holds on a busy machine (the rate itself is a figure, not a test).
    const times = responder.requests.slice(0, queries).map((r) => r.at);
    expect((times.at(-1) ?? 0) - (times[0] ?? 0)).toBeGreaterThanOrEqual((queries - 1) * 50 - 20);
  });

  it('more watches than maxBlockingQueries: blocking queries use the short contended wait', async () => {
    const responder = await hostileResponder();
    cleanups.push(() => responder.close());
    responder.push({ index: '5', body: [entry('a', '127.0.0.1', 1)] });
    const registry = new ConsulRegistry({ connection: { host: responder.host, port: responder.port }, logger: captureLogger(), maxBlockingQueries: 1, contendedWaitMs: 2_000 });
    cleanups.push(() => registry.close());
    const subs = ['x', 'y'].map((service) => registry.subscribe({ service }, () => undefined));
    for (const s of subs) cleanups.push(() => s.close());
    await Promise.all(subs.map((s) => s.ready()));
    await expect.poll(() => responder.requests.filter((r) => r.query.has('index')).length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
    const waits = responder.requests.filter((r) => r.query.has('index')).map((r) => r.query.get('wait'));
    expect(new Set(waits)).toEqual(new Set(['2s']));
    // Both watches took their turns in the one place, and never two queries of this registry were at the responder at once.
    expect(new Set(responder.requests.filter((r) => r.query.has('index')).map((r) => r.path)).size).toBe(2);
    expect(responder.maxInFlight).toBe(1);
  });
});
