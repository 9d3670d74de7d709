/**
 * The Consul watch against the real agent: every change delivered by the
 * blocking query that waits for it (counted at a proxy in front of the agent),
 * and one watch per query however many subscribers (counted at the proxy, and by
 * the registry). Latencies are printed for docs/benchmarks.md, never asserted.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ConsulRegistry } from '../../../src/registry/consul.ts';
import { consulApi, sharedConsul } from '../../harness/consul.ts';
import { countingProxy } from '../../harness/http-helpers.ts';
import { captureLogger, EndpointRecorder } from '../../harness/registry-helpers.ts';

const unique = (p: string): string => `${p}-${randomBytes(3).toString('hex')}`;

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

describe('consul watch (real agent)', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('delivers each change through the waiting blocking query, not after its wait: 60 changes, one query each', async () => {
    const agent = sharedConsul();
    const proxy = await countingProxy(agent);
    cleanups.push(() => proxy.close());
    const name = unique('prop');
    const id = `${name}-1`;
    const register = (version: number) =>
      consulApi(agent.url, 'PUT', '/v1/agent/service/register', { ID: id, Name: name, Address: '127.0.0.1', Port: 18100, Meta: { version: String(version) } });
    await register(0);
    cleanups.push(() => consulApi(agent.url, 'PUT', `/v1/agent/service/deregister/${id}`).then(() => undefined));
    // Default watch options (min interval 200 ms, wait 60 s): a change seen within the deadline
    // below was delivered by the blocking query returning on it, 12 times sooner than its wait.
    const registry = new ConsulRegistry({ connection: { host: proxy.host, port: proxy.port }, logger: captureLogger() });
    cleanups.push(() => registry.close());
    const rec = new EndpointRecorder();
    const sub = registry.subscribe({ service: name }, rec.listener);
    cleanups.push(() => sub.close());
    await rec.until((e) => e[0]?.meta.version === '0');
    const before = proxy.count('/v1/health/service/');

    const samples: number[] = [];
    const changes = 40;
    for (let v = 1; v <= changes; v++) {
      // Single changes after a quiet spell (longer than the 200 ms pacing interval, docs/discovery.md),
      // arriving independently of the watch's rhythm: a random pause of 200-260 ms between them.
      await new Promise((r) => setTimeout(r, 200 + Math.random() * 60));
      const t0 = performance.now();
      await register(v);
      await rec.until((e) => e[0]?.meta.version === String(v), 5_000, `version ${v}`);
      samples.push(performance.now() - t0);
    }
    // Each version was emitted once, in order: only actual changes.
    const versions = rec.history.map((h) => h.endpoints[0]?.meta.version);
    expect(versions).toEqual(Array.from({ length: changes + 1 }, (_, i) => String(i)));
    // About one blocking query per change (a change can land between two queries, which then answers
    // at once): counts, not clocks, so suite load cannot fail it; a polling watch would send far more.
    const queries = proxy.count('/v1/health/service/') - before;
    expect(queries).toBeGreaterThanOrEqual(changes);
    expect(queries).toBeLessThanOrEqual(2 * changes + 1);
    // The latency itself is a figure (docs/benchmarks.md), printed, not asserted.
    samples.sort((a, b) => a - b);
    console.log(`consul propagation: p50 ${percentile(samples, 50).toFixed(1)} ms, p99 ${percentile(samples, 99).toFixed(1)} ms over ${samples.length} changes`);
  });

  it('100 subscribers on 3 services share 3 watches (counted at a proxy in front of the agent)', async () => {
    const agent = sharedConsul();
    const proxy = await countingProxy(agent);
    cleanups.push(() => proxy.close());
    const names = [unique('a'), unique('b'), unique('c')];
    for (const n of names) {
      await consulApi(agent.url, 'PUT', '/v1/agent/service/register', { ID: `${n}-1`, Name: n, Address: '127.0.0.1', Port: 18200 });
      cleanups.push(() => consulApi(agent.url, 'PUT', `/v1/agent/service/deregister/${n}-1`).then(() => undefined));
    }
    const registry = new ConsulRegistry({ connection: { host: proxy.host, port: proxy.port }, logger: captureLogger() });
    cleanups.push(() => registry.close());
    const recs: EndpointRecorder[] = [];
    for (let i = 0; i < 100; i++) {
      const rec = new EndpointRecorder();
      recs.push(rec);
      const sub = registry.subscribe({ service: names[i % 3]! }, rec.listener);
      cleanups.push(() => sub.close());
    }
    await Promise.all(recs.map((r) => r.until((e) => e.length === 1, 5000)));
    expect(registry.stats().watches).toBe(3);
    // Each watch has sent its plain read and is now parked in a blocking query.
    await expect.poll(() => proxy.count('/v1/health/service/'), { timeout: 5000 }).toBe(6);
    // A change reaches all 100, through the one blocking query of that service.
    const before = proxy.requests.length;
    await consulApi(agent.url, 'PUT', '/v1/agent/service/register', { ID: `${names[0]!}-2`, Name: names[0], Address: '127.0.0.1', Port: 18201 });
    cleanups.push(() => consulApi(agent.url, 'PUT', `/v1/agent/service/deregister/${names[0]!}-2`).then(() => undefined));
    await Promise.all(recs.filter((_, i) => i % 3 === 0).map((r) => r.until((e) => e.length === 2, 5000)));
    const health = proxy.requests.filter((r) => r.path.startsWith('/v1/health/service/'));
    const perService = new Map<string, number>();
    for (const r of health) perService.set(r.path, (perService.get(r.path) ?? 0) + 1);
    expect(perService.size).toBe(3);
    // One initial read + one blocking query per service, + one more for the changed service.
    expect(health.length).toBeLessThanOrEqual(3 * 2 + 2);
    await expect.poll(() => proxy.requests.length - before, { timeout: 5000 }).toBeGreaterThanOrEqual(1);
    expect(proxy.requests.length - before).toBeLessThanOrEqual(2);
    console.log(`consul sharing: 100 subscribers, 3 services, ${registry.stats().watches} watches, ${health.length} health requests at the agent`);
  });
});
