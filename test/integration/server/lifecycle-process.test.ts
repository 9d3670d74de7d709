/**
 * Rolling restarts against the real Consul agent: child-process instances of one
 * service register in Consul; a client streams a bounded number of requests to
 * the service through inmesh while instances get SIGTERM and leave through
 * mesh.handleSignals() (and, in the second test, are replaced one at a time).
 * No request fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMesh, type Mesh } from '../../../src/mesh/mesh.ts';
import { consulApi, sharedConsul, sharedConsulAddr } from '../../harness/consul.ts';
import { killChildren } from '../../harness/pids.ts';

const fixture = fileURLToPath(new URL('./fixtures/shutdown-instance.ts', import.meta.url));
const children: ChildProcess[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  await killChildren(children);
});

interface Instance {
  child: ChildProcess;
  port: number;
  output: () => string;
  exited: Promise<number | null>;
}

async function startInstance(name: string): Promise<Instance> {
  const child = spawn(process.execPath, ['--experimental-transform-types', '--no-warnings', fixture], {
    env: { ...process.env, CONSUL_HTTP_ADDR: sharedConsulAddr(), SERVICE_NAME: name },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`instance not ready in 20 s: ${out} ${err}`)), 20_000);
    child.stdout.on('data', () => {
      const m = /ready (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then((code) => reject(new Error(`instance exited (${String(code)}) before ready: ${out} ${err}`)));
  });
  return { child, port, output: () => out + err, exited };
}


/** One streamed request: counts a 200 by the answering instance's port, anything else as a failure. */
async function callOnce(client: Mesh, name: string, byPort: Map<number, number>, failures: string[]): Promise<void> {
  try {
    const res = await client.request(`http://${name}.service.consul/work`);
    await res.body.dump();
    if (res.statusCode === 200) {
      const port = Number(res.endpoint.split(':')[1]);
      byPort.set(port, (byPort.get(port) ?? 0) + 1);
    } else failures.push(`status ${res.statusCode}`);
  } catch (error) {
    failures.push(String(error));
  }
}

describe('rolling restart with the real Consul agent', () => {
  it('SIGTERM to one of two registered instances while a client streams requests: 0 failures, exit 0, the instance leaves Consul', async () => {
    const name = `roll-${randomBytes(3).toString('hex')}`;
    const [a, b] = await Promise.all([startInstance(name), startInstance(name)]);
    const client = createMesh({ policy: { apiVersion: 'inmesh/v1' }, env: { CONSUL_HTTP_ADDR: sharedConsulAddr(), INMESH_TRACING: 'false' }, consulWatch: { minIntervalMs: 10 } });
    closers.push(() => client.close());

    // The stream runs from before the signal until 100 requests after the instance exited,
    // bounded in count and in time.
    const maxRequests = 20_000;
    const stopAt = Date.now() + 30_000;
    let exitedAt: number | undefined;
    void a.exited.then(() => (exitedAt = sent));
    const byPort = new Map<number, number>();
    const failures: string[] = [];
    let sent = 0;
    let signalled = false;
    const worker = async (): Promise<void> => {
      while ((exitedAt === undefined || sent < exitedAt + 100) && sent < maxRequests && Date.now() < stopAt) {
        sent++;
        if (!signalled && sent >= 100) {
          signalled = true;
          process.kill(a.child.pid as number, 'SIGTERM');
        }
        await callOnce(client, name, byPort, failures);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    expect(signalled).toBe(true);
    expect(exitedAt).toBeDefined(); // the stream lasted past the instance's exit
    expect(sent).toBeGreaterThanOrEqual((exitedAt ?? Infinity) + 100);
    expect(failures).toEqual([]);
    expect(await a.exited).toBe(0);
    expect(a.output()).toMatch(/served \d+ exit 0/);
    expect(byPort.get(a.port) ?? 0).toBeGreaterThan(0);
    expect(byPort.get(b.port) ?? 0).toBeGreaterThan(0);
    // The instance that left is no longer in Consul; the other one is.
    const left = await consulApi<{ Service: { Port: number } }[]>(sharedConsul().url, 'GET', `/v1/health/service/${name}`);
    expect(left.data.map((e) => e.Service.Port)).toEqual([b.port]);
    await client.close();
    process.kill(b.child.pid as number, 'SIGTERM');
    expect(await b.exited).toBe(0);
  }, 60_000);

  it('a rolling restart of three instances, each SIGTERMed and replaced in turn, while a client streams requests: 0 failures', async () => {
    const name = `roll3-${randomBytes(3).toString('hex')}`;
    const first = await Promise.all([startInstance(name), startInstance(name), startInstance(name)]);
    const client = createMesh({ policy: { apiVersion: 'inmesh/v1' }, env: { CONSUL_HTTP_ADDR: sharedConsulAddr(), INMESH_TRACING: 'false' }, consulWatch: { minIntervalMs: 10 } });
    closers.push(() => client.close());

    const byPort = new Map<number, number>();
    const failures: string[] = [];
    let sent = 0;
    let done = false;
    const maxRequests = 50_000;
    const stopAt = Date.now() + 60_000;
    const worker = async (): Promise<void> => {
      while (!done && sent < maxRequests && Date.now() < stopAt) {
        sent++;
        await callOnce(client, name, byPort, failures);
      }
    };
    const workers = Promise.all([worker(), worker(), worker(), worker()]);

    // Every original instance takes traffic before the restart begins.
    await vi.waitFor(() => {
      for (const old of first) expect(byPort.get(old.port) ?? 0).toBeGreaterThan(0);
    }, { timeout: 10_000, interval: 20 });
    const replacements: Instance[] = [];
    for (const old of first) {
      process.kill(old.child.pid as number, 'SIGTERM');
      expect(await old.exited).toBe(0);
      const fresh = await startInstance(name);
      replacements.push(fresh);
      // The replacement takes traffic before the next instance leaves.
      const servedBefore = sent;
      await vi.waitFor(() => expect(byPort.get(fresh.port) ?? 0).toBeGreaterThan(0), { timeout: 10_000, interval: 20 });
      expect(sent).toBeGreaterThan(servedBefore);
    }
    const end = sent + 100;
    await vi.waitFor(() => expect(sent).toBeGreaterThanOrEqual(end), { timeout: 10_000, interval: 20 });
    done = true;
    await workers;

    expect(failures).toEqual([]);
    const left = await consulApi<{ Service: { Port: number } }[]>(sharedConsul().url, 'GET', `/v1/health/service/${name}`);
    expect(left.data.map((e) => e.Service.Port).sort()).toEqual(replacements.map((r) => r.port).sort());
    console.log(`rolling restart of 3: ${sent} requests, ${failures.length} failed, by port ${JSON.stringify(Object.fromEntries(byPort))}`);
    await client.close();
    for (const r of replacements) process.kill(r.child.pid as number, 'SIGTERM');
    for (const r of replacements) expect(await r.exited).toBe(0);
  }, 120_000);
});
