/**
 * Recovery after the agent has been out of reach, counted at a proxy in front of
 * the real agent. The outage is the proxy's: it cuts every open connection and
 * resets every new one on the same port (what the watch sees of an agent that
 * went away), while the agent itself stays up so that an instance can leave
 * during the outage. The watch must ask about once a second while cut off,
 * serve the last good set throughout, and serve the new set within 2 s of the
 * agent answering again, whatever the outage's length.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ConsulRegistry } from '../../../src/registry/consul.ts';
import { consulApi, sharedConsul } from '../../harness/consul.ts';
import { countingProxy } from '../../harness/http-helpers.ts';
import { captureLogger, EndpointRecorder, ids } from '../../harness/registry-helpers.ts';

const unique = (p: string): string => `${p}-${randomBytes(3).toString('hex')}`;

describe('consul watch recovery after an outage (real agent, counting proxy)', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  for (const outageMs of [3_000, 30_000]) {
    it(`an outage of ${outageMs / 1000} s: last good set served, about 1 attempt/s, new set within 2 s of the return`, { timeout: outageMs + 30_000 }, async () => {
      const agent = sharedConsul();
      const proxy = await countingProxy(agent);
      cleanups.push(() => proxy.close());
      const name = unique('outage');
      for (const n of [1, 2]) {
        await consulApi(agent.url, 'PUT', '/v1/agent/service/register', { ID: `${name}-${n}`, Name: name, Address: '127.0.0.1', Port: 18600 + n });
        cleanups.push(() => consulApi(agent.url, 'PUT', `/v1/agent/service/deregister/${name}-${n}`).then(() => undefined));
      }
      const registry = new ConsulRegistry({ connection: { host: proxy.host, port: proxy.port }, logger: captureLogger() });
      cleanups.push(() => registry.close());
      const rec = new EndpointRecorder();
      const sub = registry.subscribe({ service: name }, rec.listener);
      cleanups.push(() => sub.close());
      await rec.until((e) => e.length === 2);

      proxy.setDown(true);
      const downAt = Date.now();
      // An instance leaves while the agent is out of reach.
      await consulApi(agent.url, 'PUT', `/v1/agent/service/deregister/${name}-2`);
      // The last good set is served throughout (sampled every 50 ms).
      let samples = 0;
      let empty = 0;
      while (Date.now() - downAt < outageMs) {
        samples++;
        if (sub.endpoints.length !== 2) empty++;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(empty).toBe(0);
      expect(samples).toBeGreaterThan(outageMs / 100);
      expect(sub.staleness()).toBeGreaterThan(outageMs / 2);
      const attempts = proxy.dropped.filter((t) => t >= downAt).length;
      const rate = (attempts * 1000) / (Date.now() - downAt);

      proxy.setDown(false);
      const t0 = performance.now();
      await rec.until((e) => ids(e).join() === `${name}-1`, 10_000, 'the set without the instance that left');
      const recoveryMs = performance.now() - t0;
      console.log(`consul recovery: ${outageMs / 1000} s outage, ${attempts} attempts (${rate.toFixed(2)}/s) while down, new set served ${recoveryMs.toFixed(0)} ms after the return`);
      expect(recoveryMs).toBeLessThan(2_000);
      // About once a second: the back-off is 0.8-1.2 s at its cap, sooner only for the first few attempts.
      expect(attempts).toBeLessThanOrEqual(Math.ceil(outageMs / 800) + 3);
      expect(attempts).toBeGreaterThanOrEqual(Math.floor(outageMs / 1200) - 1);
    });
  }
});
