/**
 * The crash safety net, on the real agent: a registration without a check gets
 * a TTL check with DeregisterCriticalServiceAfter 1 min, so the agent itself
 * removes an instance whose process stopped keeping it alive. Consul 1.8.7 does
 * not show DeregisterCriticalServiceAfter through its API (a check's `Definition`
 * reads `{}`), so the test watches the agent act on it: once the check turns
 * critical, the instance is gone after the minute, at the agent's next reaper
 * round (every 30 s), and not before. About 90 s; it waits on the agent's answers.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { registerService } from '../../../src/registry/consul-register.ts';
import { consulApi, sharedConsul } from '../../harness/consul.ts';

describe('DeregisterCriticalServiceAfter (real agent)', () => {
  it('the default check makes the agent remove an instance one minute after it turned critical', { timeout: 150_000 }, async () => {
    const { host, port, url } = sharedConsul();
    const reg = await registerService({ name: `reap-${randomBytes(3).toString('hex')}`, port: 18807, address: '127.0.0.1', connection: { host, port }, verifyIntervalMs: 0 });
    try {
      // The process "dies": nothing keeps the TTL alive; the check is failed at once instead of after 15 s.
      reg.close();
      await consulApi(url, 'PUT', `/v1/agent/check/fail/service:${reg.id}?note=test`);
      const criticalAt = performance.now();
      const known = async (): Promise<boolean> => {
        try {
          await consulApi(url, 'GET', `/v1/agent/service/${reg.id}`);
          return true;
        } catch (err) {
          if (/: 404 /.test((err as Error).message)) return false;
          throw err;
        }
      };
      await expect.poll(known, { timeout: 120_000, interval: 1_000 }).toBe(false);
      const goneAfterS = (performance.now() - criticalAt) / 1000;
      // Not before the minute (the agent's floor is also 1 min), and at the latest one reaper round after it.
      expect(goneAfterS).toBeGreaterThanOrEqual(59);
      expect(goneAfterS).toBeLessThanOrEqual(100);
    } finally {
      await reg.deregister().catch(() => undefined);
    }
  });
});
