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
import { agentGate } from '../../../src/registry/agent-gate.ts';
import { ConsulRegistry } from '../../../src/registry/consul.ts';
import { registerService } from '../../../src/registry/consul-register.ts';
import { startConsulAgent, type ConsulAgent } from '../../harness/consul-agent.ts';
import { consulApi } from '../../harness/consul.ts';
import { captureLogger, EndpointRecorder } from '../../harness/registry-helpers.ts';

const AGENT_LIMIT = 30;
const SERVICES = 45; // well above the agent's limit
const MAX_QUERIES = 12; // the registry's bound, well below it

/** Resolves when `condition` holds, checking every 10 ms; rejects after `timeoutMs` naming `what`. */
async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

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

  // A watch added while every place the gate gives blocking queries is held by a long wait gets its
  // first answer at once: with a limit of 2 through the place kept for plain reads, with a limit of 1
  // by ending the running blocking query early (it keeps its index: no error, no log, no lost change).
  for (const limit of [2, 1]) {
    it(`a watch added late gets its first answer at once while long waits hold the places (limit ${limit})`, { timeout: 30_000 }, async () => {
      const names = [`late-${limit}-a`, `late-${limit}-b`, `late-${limit}-c`];
      const put = (name: string, version: number) =>
        consulApi(agent.url, 'PUT', '/v1/agent/service/register', { ID: `${name}-1`, Name: name, Address: '127.0.0.1', Port: 18402, Meta: { version: String(version) } });
      for (const name of names) await put(name, 0);
      const logger = captureLogger();
      const registry = new ConsulRegistry({
        connection: { host: agent.address, port: agent.port },
        logger,
        maxBlockingQueries: limit,
        waitMs: 15_000,
        contendedWaitMs: 15_000,
      });
      const gate = agentGate(`http://${agent.address}:${agent.port}`);
      const errors: string[] = [];
      const watch = (service: string) => {
        const rec = new EndpointRecorder();
        const sub = registry.subscribe({ service }, rec.listener, { onError: (e) => errors.push(`${service}: ${e.message}`) });
        return { rec, sub };
      };
      const early = names.slice(0, limit).map(watch);
      try {
        await Promise.all(early.map(({ rec }, i) => rec.until((e) => e[0]?.meta.version === '0', 10_000, `the first answer for ${names[i] ?? ''}`)));
        // Every early watch is now in a blocking query or queued for one, and the blocking places are full.
        await until(() => gate.blocking + gate.waiting === limit && gate.blocking === gate.blockingPlaces, 5_000, 'the blocking queries to hold their places');
        const started = performance.now();
        const late = watch(names[limit] ?? '');
        try {
          await late.rec.until((e) => e[0]?.meta.version === '0', 2_000, 'the late watch\'s first answer');
          expect(performance.now() - started).toBeLessThan(2_000);
          // The early watches lost nothing: a change reaches each of them.
          for (const name of names.slice(0, limit)) await put(name, 1);
          await Promise.all(early.map(({ rec }, i) => rec.until((e) => e[0]?.meta.version === '1', 10_000, `the change of ${names[i] ?? ''}`)));
          expect(errors).toEqual([]);
          expect(logger.warnings()).toEqual([]);
        } finally {
          late.sub.close();
        }
      } finally {
        for (const { sub } of early) sub.close();
        await registry.close();
      }
    });
  }
});
