/**
 * More watches than the agent takes connections from one client address. A
 * Consul agent closes connections above `limits.http_max_conns_per_client`
 * (200 by default; this agent is started with 30 so that the test stays small):
 * without a bound, one blocking query per upstream would use up the allowance
 * and the agent would reset watches and refuse the process's own registration
 * calls. With the registry's bound on concurrent watch queries per agent, every
 * watch gets its data and every change, and a registration goes through at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsulRegistry } from '../../../src/registry/consul.ts';
import { registerService } from '../../../src/registry/consul-register.ts';
import { startConsulAgent, type ConsulAgent } from '../../harness/consul-agent.ts';
import { consulApi } from '../../harness/consul.ts';
import { captureLogger, EndpointRecorder } from '../../harness/registry-helpers.ts';

const AGENT_LIMIT = 30;
const SERVICES = 45; // well above the agent's limit
const MAX_QUERIES = 12; // the registry's bound, well below it

describe('more upstreams than the agent allows connections (own agent, http_max_conns_per_client 30)', () => {
  let agent: ConsulAgent;
  beforeAll(async () => {
    agent = await startConsulAgent({ extraConfig: { limits: { http_max_conns_per_client: AGENT_LIMIT } } });
  });
  afterAll(async () => {
    await agent.close();
  });

  it('every watch gets its data and every change; registration is never starved', { timeout: 60_000 }, async () => {
    const names = Array.from({ length: SERVICES }, (_, i) => `svc-${String(i).padStart(2, '0')}`);
    const put = (name: string, version: number) =>
      consulApi(agent.url, 'PUT', '/v1/agent/service/register', { ID: `${name}-1`, Name: name, Address: '127.0.0.1', Port: 18400, Meta: { version: String(version) } });
    for (const name of names) await put(name, 0);

    const logger = captureLogger();
    const registry = new ConsulRegistry({ connection: { host: agent.address, port: agent.port }, logger, maxBlockingQueries: MAX_QUERIES, contendedWaitMs: 60_000 });
    const errors: string[] = [];
    const recorders = names.map((service) => {
      const rec = new EndpointRecorder();
      const sub = registry.subscribe({ service }, rec.listener, { onError: (e) => errors.push(`${service}: ${e.message}`) });
      return { rec, sub };
    });
    try {
      await Promise.all(recorders.map(({ rec }, i) => rec.until((e) => e[0]?.meta.version === '0', 20_000, `the first answer for ${names[i] ?? ''}`)));

      // Every place is now held by a blocking query of up to a minute (contendedWaitMs), and 33 more
      // wait for one: the process's own registration gets a connection at once, never a place in that queue.
      const registering = registerService({ name: 'me', port: 18401, address: '127.0.0.1', connection: { host: agent.address, port: agent.port }, verifyIntervalMs: 0 });
      const me = await Promise.race([
        registering,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the registration waited behind the blocking queries')), 15_000).unref()),
      ]);
      try {
        const self = await consulApi<{ ID: string }>(agent.url, 'GET', `/v1/agent/service/${me.id}`);
        expect(self.data.ID).toBe(me.id);
      } finally {
        await me.deregister();
        me.close();
      }

      // A change to every service reaches every watch (the bound rotates the queries, none waits forever).
      for (const name of names) await put(name, 1);
      await Promise.all(recorders.map(({ rec }, i) => rec.until((e) => e[0]?.meta.version === '1', 30_000, `the change of ${names[i] ?? ''}`)));
      // No watch was ever reset by the agent.
      expect(errors).toEqual([]);
    } finally {
      for (const { sub } of recorders) sub.close();
      await registry.close();
    }
  });
});
