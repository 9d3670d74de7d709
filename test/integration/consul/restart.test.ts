/**
 * The agent goes away for several seconds and comes back with empty state
 * (`-dev` keeps everything in memory): the last known good set is served the
 * whole time, staleness grows, the watch resumes (its index, far ahead of the
 * new agent's, is reset), and our own registration is made again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ConsulRegistry } from '../../../src/registry/consul.ts';
import { registerService } from '../../../src/registry/consul-register.ts';
import { startConsulAgent } from '../../harness/consul-agent.ts';
import { consulApi } from '../../harness/consul.ts';
import { captureLogger, EndpointRecorder, ids } from '../../harness/registry-helpers.ts';

describe('consul agent restart (own agent)', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('serves the last good set while the agent is down, resumes, and re-registers', { timeout: 60_000 }, async () => {
    const agent = await startConsulAgent();
    cleanups.push(() => agent.close());
    const connection = { host: agent.address, port: agent.port };
    const logger = captureLogger();
    const me = await registerService({ name: 'api', port: 18300, address: '127.0.0.1', check: { ttlMs: 3000 }, connection, verifyIntervalMs: 200, logger });
    cleanups.push(async () => {
      await me.deregister().catch(() => undefined);
      me.close();
    });
    // Push the agent's index well above what a fresh agent will have.
    for (let i = 0; i < 40; i++) await consulApi(agent.url, 'PUT', '/v1/kv/bump', String(i));

    const registry = new ConsulRegistry({ connection, logger, backoffBaseMs: 100, backoffMaxMs: 1000, minIntervalMs: 10 });
    cleanups.push(() => registry.close());
    const rec = new EndpointRecorder();
    const sub = registry.subscribe({ service: 'api' }, rec.listener);
    cleanups.push(() => sub.close());
    await rec.until((e) => ids(e).includes(me.id), 10_000, 'our own instance');
    expect(sub.staleness()).toBe(0);

    await agent.stop();
    // Down for several seconds: the set stays (sampled every 100 ms throughout), staleness grows.
    const seen = new Set<string>();
    await expect
      .poll(
        () => {
          seen.add(ids(sub.endpoints).join(','));
          return sub.staleness();
        },
        { timeout: 10_000, interval: 100 },
      )
      .toBeGreaterThan(3000);
    expect([...seen]).toEqual([me.id]);
    expect(ids(sub.endpoints)).toEqual([me.id]);
    expect(rec.history).toHaveLength(1);
    expect(await registry.resolve({ service: 'api' })).toHaveLength(1);
    expect(logger.text()).toContain('consul watch failed');

    await agent.start();
    const t0 = Date.now();
    // The agent has forgotten us; the registration notices (404) and registers again.
    await expect.poll(() => me.reregistrations, { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
    await expect.poll(() => sub.staleness(), { timeout: 10_000 }).toBe(0);
    await rec.until((e) => ids(e).includes(me.id), 10_000, 'our instance after the restart');
    // A change made after the restart arrives promptly: the watch is not stuck on the old, higher index.
    await consulApi(agent.url, 'PUT', '/v1/agent/service/register', { ID: 'api-other', Name: 'api', Address: '127.0.0.1', Port: 18301 });
    const t1 = performance.now();
    await rec.until((e) => ids(e).includes('api-other'), 5000, 'a registration made after the restart');
    expect(performance.now() - t1).toBeLessThan(2000);
    console.log(`consul restart: resumed and re-registered ${Date.now() - t0} ms after the agent came back`);
  });
});
