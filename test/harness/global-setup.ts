/**
 * Global set-up for the test run: ONE shared real Consul agent (`consul agent
 * -dev` on free loopback ports), handed to the tests as `inject('consulAddr')`
 * (`127.0.0.1:PORT`). Tests that need a special agent (ACLs, restarts) start
 * their own with `startConsulAgent()` from ./consul-agent.ts.
 *
 * If no agent can be started (no binary, no apt access), the run does not abort
 * here, so that unit tests still report; instead `consulError` carries the
 * reason and `sharedConsulAddr()` (./consul.ts) throws it, so every Consul test
 * FAILS with instructions. Nothing is skipped quietly.
 */
import type { TestProject } from 'vitest/node';
import { startConsulAgent, type ConsulAgent } from './consul-agent.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `127.0.0.1:PORT` of the shared agent, '' when it could not be started. */
    consulAddr: string;
    /** Why the shared agent could not be started, '' when it runs. */
    consulError: string;
    /** `Consul v1.8.7 (/path, from CACHE)`. */
    consulVersion: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let agent: ConsulAgent | undefined;
  try {
    agent = await startConsulAgent();
    const info = `${agent.binary.version} (${agent.binary.path}, from ${agent.binary.source})`;
    console.log(`[consul harness] shared agent ${info} listening on ${agent.httpAddr}`);
    project.provide('consulAddr', agent.httpAddr);
    project.provide('consulError', '');
    project.provide('consulVersion', info);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    console.error(`[consul harness] could not start the shared Consul agent: ${message}`);
    project.provide('consulAddr', '');
    project.provide('consulError', message);
    project.provide('consulVersion', '');
  }
  return async () => {
    await agent?.close();
  };
}
