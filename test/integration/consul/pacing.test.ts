/**
 * Watch pacing against the real agent, counted at a proxy in front of it
 * (Consul's "Blocking Queries" advice: rate-limit the loop):
 * - a proxy that does not let queries block (it strips `index` and `wait`):
 *   every answer comes back at once with nothing changed, and the watch slows
 *   to one query a second, until a query blocks normally again;
 * - a service that changes every few milliseconds: at most 5 queries a second,
 *   the changes in between read together, no duplicate event, the last event
 *   the agent's final state, and the warning about an invalid instance printed
 *   once while it stays invalid.
 * Rates are printed for docs/benchmarks.md; the assertions are upper bounds on
 * counts (load can only stretch the gaps, never add queries).
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ConsulRegistry } from '../../../src/registry/consul.ts';
import { consulApi, sharedConsul } from '../../harness/consul.ts';
import { countingProxy } from '../../harness/http-helpers.ts';
import { captureLogger, EndpointRecorder } from '../../harness/registry-helpers.ts';
import { canonicalEndpoints } from '../../../src/registry/validate.ts';

const unique = (p: string): string => `${p}-${randomBytes(3).toString('hex')}`;
const HEALTH = '/v1/health/service/';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('consul watch pacing (real agent behind a counting proxy)', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(name: string) {
    const agent = sharedConsul();
    const proxy = await countingProxy(agent);
    cleanups.push(() => proxy.close());
    const logger = captureLogger();
    const registry = new ConsulRegistry({ connection: { host: proxy.host, port: proxy.port }, logger });
    cleanups.push(() => registry.close());
    const register = (id: string, meta: Record<string, string> = {}, address = '127.0.0.1') =>
      consulApi(agent.url, 'PUT', '/v1/agent/service/register', { ID: id, Name: name, Address: address, Port: 18500, Meta: meta });
    return { agent, proxy, logger, registry, register };
  }

  it('answers that come back at once with nothing changed: down to 1 query/s within a few seconds, back to normal once a query blocks', { timeout: 30_000 }, async () => {
    const name = unique('idle');
    const { agent, proxy, registry, register } = await setup(name);
    await register(`${name}-1`, { v: '0' });
    cleanups.push(() => consulApi(agent.url, 'PUT', `/v1/agent/service/deregister/${name}-1`).then(() => undefined));
    // The proxy does not let a query block: the agent answers each one at once, same index, same data.
    proxy.setRewrite((url) => {
      const u = new URL(url, 'http://x');
      u.searchParams.delete('index');
      u.searchParams.delete('wait');
      return `${u.pathname}${u.search}`;
    });
    const rec = new EndpointRecorder();
    const sub = registry.subscribe({ service: name }, rec.listener);
    cleanups.push(() => sub.close());
    await rec.until((e) => e.length === 1);
    const start = Date.now();
    // Within a few seconds the pace is down to one query a second, and stays there.
    await sleep(3_000);
    const from = Date.now();
    await sleep(5_000);
    const slow = proxy.count(HEALTH, from);
    const total = proxy.count(HEALTH, start);
    console.log(`consul pacing, non-blocking answers: ${total} queries in the first ${Date.now() - start} ms, ${(slow / 5).toFixed(2)} queries/s after 3 s`);
    // One a second over 5 s: 5, or 6 when a query falls on each edge of the window.
    expect(slow).toBeLessThanOrEqual(6);
    expect(slow).toBeGreaterThanOrEqual(3);
    expect(rec.history).toHaveLength(1);

    // Queries block again: the next query blocks, and changes after a quiet spell go through at once.
    proxy.setRewrite(undefined);
    await register(`${name}-1`, { v: '1' });
    await rec.until((e) => e[0]?.meta.v === '1', 3_000, 'the first change once queries block');
    const latencies: number[] = [];
    for (let v = 2; v <= 4; v++) {
      await sleep(300);
      const t0 = performance.now();
      await register(`${name}-1`, { v: String(v) });
      await rec.until((e) => e[0]?.meta.v === String(v), 3_000, `change ${v}`);
      latencies.push(performance.now() - t0);
    }
    console.log(`consul pacing, after queries block again: change latencies ${latencies.map((l) => l.toFixed(0)).join(', ')} ms`);
    // Paced at 1 s still, a change 300 ms after the previous one would wait about 700 ms for its query.
    expect(Math.min(...latencies)).toBeLessThan(500);
  });

  it('a service changing every few ms: at most 5 queries/s, changes coalesced, no duplicate event, ends on the final state, one warning per bad instance', { timeout: 30_000 }, async () => {
    const name = unique('flap');
    const { agent, proxy, logger, registry, register } = await setup(name);
    await register(`${name}-1`, { v: '0' });
    // An instance inmesh refuses (cloud metadata address): dropped with a warning, once while it stays.
    await register(`${name}-bad`, {}, '169.254.169.254');
    cleanups.push(async () => {
      for (const id of [`${name}-1`, `${name}-bad`]) await consulApi(agent.url, 'PUT', `/v1/agent/service/deregister/${id}`).catch(() => undefined);
    });
    const rec = new EndpointRecorder();
    const sub = registry.subscribe({ service: name }, rec.listener);
    cleanups.push(() => sub.close());
    await rec.until((e) => e[0]?.meta.v === '0');

    // Flap for 3 s (bounded in time and count): a new version as fast as the agent takes it.
    const from = Date.now();
    let v = 0;
    while (Date.now() - from < 3_000 && v < 5_000) {
      v++;
      await register(`${name}-1`, { v: String(v) });
    }
    const flapMs = Date.now() - from;
    const queries = proxy.count(HEALTH, from);
    const final = String(v);
    await rec.until((e) => e[0]?.meta.v === final, 2_000, 'the final state');
    console.log(`consul pacing, flapping service: ${v} changes in ${flapMs} ms (${((v * 1000) / flapMs).toFixed(0)}/s), ${queries} queries (${((queries * 1000) / flapMs).toFixed(2)}/s), ${rec.history.length - 1} events`);
    // At most 5 queries a second, + 1 for a query that started at the edge of the window.
    expect(queries).toBeLessThanOrEqual(Math.ceil((flapMs / 1000) * 5) + 1);
    // The changes in between were read together: far fewer events than changes.
    expect(rec.history.length - 1).toBeLessThan(v);
    // No duplicate event, versions only move forward, the last event is the agent's state.
    const versions = rec.history.map((h) => Number(h.endpoints[0]?.meta.v));
    for (let i = 1; i < rec.history.length; i++) {
      expect(canonicalEndpoints(rec.history[i]!.endpoints)).not.toBe(canonicalEndpoints(rec.history[i - 1]!.endpoints));
      expect(versions[i]).toBeGreaterThan(versions[i - 1]!);
    }
    const state = await consulApi<{ Service: { ID: string; Meta: Record<string, string> } }[]>(agent.url, 'GET', `${HEALTH}${name}?passing=1`);
    const good = state.data.filter((e) => e.Service.ID === `${name}-1`);
    expect(rec.latest?.map((e) => e.meta.v)).toEqual(good.map((e) => e.Service.Meta.v));
    // Every query saw the bad instance; the warning about it was printed once.
    const warnings = logger.warnings().filter((w) => w.includes('cloud metadata address'));
    expect(warnings).toHaveLength(1);
  });
});
