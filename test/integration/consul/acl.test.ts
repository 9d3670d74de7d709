/**
 * ACLs on, default deny (own agent). The token travels only in the
 * X-Consul-Token header, a refused token is not retried in a loop, and no token
 * ever shows up in a log line, an error message or the console.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../../src/config/load.ts';
import { Secret } from '../../../src/internal/secret.ts';
import { NoEndpointsError, RegistryError } from '../../../src/errors.ts';
import { createMesh } from '../../../src/index.ts';
import { ConsulRegistry } from '../../../src/registry/consul.ts';
import { registerService, type ConsulRegistration } from '../../../src/registry/consul-register.ts';
import { startConsulAgent, type ConsulAgent } from '../../harness/consul-agent.ts';
import { consulApi, sharedConsul } from '../../harness/consul.ts';
import { countingProxy } from '../../harness/http-helpers.ts';
import { captureLogger, EndpointRecorder, ids } from '../../harness/registry-helpers.ts';

describe('consul with ACLs (default deny)', () => {
  const master = randomUUID();
  let agent: ConsulAgent;
  let readToken: string;
  let policyId: string;
  let instance: ConsulRegistration;
  const consoleText: string[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
      const original = console[level].bind(console);
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
        consoleText.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
        original(...args);
      });
    }
    agent = await startConsulAgent({ acl: { masterToken: master } });
    const policy = await consulApi<{ ID: string }>(agent.url, 'PUT', '/v1/acl/policy', { Name: 'read-all', Rules: 'service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }' }, master);
    policyId = policy.data.ID;
    const token = await consulApi<{ SecretID: string }>(agent.url, 'PUT', '/v1/acl/token', { Description: 'reader', Policies: [{ ID: policyId }] }, master);
    readToken = token.data.SecretID;
    // Registration needs service:write: the master token here.
    instance = await registerService({ name: 'secure', port: 18400, address: '127.0.0.1', connection: { host: agent.address, port: agent.port, token: new Secret(master) }, verifyIntervalMs: 0 });
  });
  afterAll(async () => {
    await instance.deregister().catch(() => undefined);
    instance.close();
    await agent.close();
    vi.restoreAllMocks();
    // Nothing this file printed contains a token.
    const all = consoleText.join('\n');
    for (const t of [master, readToken]) expect(all).not.toContain(t);
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function registry(token: string | undefined, logger = captureLogger(), port = agent.port) {
    const r = new ConsulRegistry({
      connection: { host: agent.address, port, ...(token ? { token: new Secret(token) } : {}) },
      logger,
      refusedPauseMs: 2000,
      minIntervalMs: 10,
    });
    cleanups.push(() => r.close());
    return r;
  }

  it('with a read token: sees the instance; the token is only in the header', async () => {
    const proxy = await countingProxy({ host: agent.address, port: agent.port });
    cleanups.push(() => proxy.close());
    const logger = captureLogger();
    const r = registry(readToken, logger, proxy.port);
    expect(ids(await r.resolve({ service: 'secure' }))).toEqual([instance.id]);
    expect(proxy.requests.length).toBeGreaterThan(0);
    for (const req of proxy.requests) {
      expect(req.url).not.toContain(readToken);
      expect(req.headers['x-consul-token']).toBe(readToken);
    }
    expect(logger.text()).not.toContain(readToken);
  });

  it('without a token: an empty answer (not an error), and the ACL hint when instances vanish', async () => {
    const logger = captureLogger();
    const r = registry(undefined, logger);
    expect(await r.resolve({ service: 'secure' })).toEqual([]);
    // Instances that vanish because the token lost its rights look the same: the warning says so.
    const pid = await consulApi<{ ID: string }>(agent.url, 'PUT', '/v1/acl/policy', { Name: `shrinking-${randomUUID().slice(0, 8)}`, Rules: 'service_prefix "" { policy = "read" }\nnode_prefix "" { policy = "read" }' }, master);
    const tok = await consulApi<{ SecretID: string }>(agent.url, 'PUT', '/v1/acl/token', { Policies: [{ ID: pid.data.ID }] }, master);
    const logger2 = captureLogger();
    const r2 = registry(tok.data.SecretID, logger2);
    const rec = new EndpointRecorder();
    const sub = r2.subscribe({ service: 'secure' }, rec.listener);
    cleanups.push(() => sub.close());
    await rec.until((e) => e.length === 1);
    await consulApi(agent.url, 'PUT', `/v1/acl/policy/${pid.data.ID}`, { ID: pid.data.ID, Name: 'shrunk', Rules: 'node_prefix "" { policy = "read" }' }, master);
    // An ACL change does not wake a blocking query; the next change of the service does.
    await consulApi(agent.url, 'PUT', '/v1/agent/service/register', { ID: 'secure-tmp', Name: 'secure', Address: '127.0.0.1', Port: 18401 }, master);
    cleanups.push(() => consulApi(agent.url, 'PUT', '/v1/agent/service/deregister/secure-tmp', undefined, master).then(() => undefined));
    await rec.until((e) => e.length === 0, 5000, 'the instances to vanish');
    expect(logger2.warnings().join('\n')).toMatch(/had instances before.*default-deny ACLs.*token/);
    expect(logger2.text()).not.toContain(tok.data.SecretID);
  });

  it('no token and no instance ever seen: NoEndpointsError and one warning name the missing token, never a token', { timeout: 20_000 }, async () => {
    const logger = captureLogger();
    const mesh = createMesh({ env: { CONSUL_HTTP_ADDR: agent.httpAddr }, logger, telemetry: { enabled: false } });
    cleanups.push(() => mesh.close());
    const attempt = () => mesh.request('http://secure.service.consul/orders', { retries: 0 }).then((r) => r.body.dump(), (e: unknown) => e);
    const error = await attempt();
    // The service exists (registered with the master token): the agent answered `200 []` to an anonymous read.
    expect(error).toBeInstanceOf(NoEndpointsError);
    const message = (error as Error).message;
    expect(message).toMatch(/no endpoints are known.*no ACL token is set.*CONSUL_HTTP_TOKEN.*CONSUL_HTTP_TOKEN_FILE/);
    // More watch rounds (each change of the service wakes the query): the warning stays one.
    for (let i = 0; i < 3; i++) {
      await consulApi(agent.url, 'PUT', '/v1/agent/service/register', { ID: 'secure-flap', Name: 'secure', Address: '127.0.0.1', Port: 18402, Meta: { i: String(i) } }, master);
      await new Promise((r) => setTimeout(r, 300));
    }
    await consulApi(agent.url, 'PUT', '/v1/agent/service/deregister/secure-flap', undefined, master);
    expect(((await attempt()) as Error).message).toContain('no ACL token is set');
    const hints = logger.warnings().filter((w) => w.includes('no ACL token is set'));
    expect(hints).toHaveLength(1);
    expect(hints[0]).toMatch(/CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE/);
    for (const text of [logger.text(), message, String((error as Error).stack)]) {
      for (const t of [master, readToken]) expect(text).not.toContain(t);
    }
  });

  it('a wrong token: 403 surfaced with its status, never retried in a loop, never printed', async () => {
    const wrong = randomUUID();
    const proxy = await countingProxy({ host: agent.address, port: agent.port });
    cleanups.push(() => proxy.close());
    const logger = captureLogger();
    const r = registry(wrong, logger, proxy.port);
    const errors: Error[] = [];
    const error = await r.resolve({ service: 'secure' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).statusCode).toBe(403);
    expect((error as RegistryError).message).toMatch(/answered 403.*ACL token was refused/);
    // The watch's third refusal: two pauses after a 4xx, each pause/2 + random(0, pause/2) = 1-2 s here.
    let third!: () => void;
    const thirdRefusal = new Promise<void>((resolve) => (third = resolve));
    const sub = r.subscribe({ service: 'secure' }, () => undefined, {
      onError: (e) => {
        errors.push(e);
        if (errors.length === 3) third();
      },
    });
    cleanups.push(() => sub.close());
    const since = Date.now();
    await sub.ready();
    await thirdRefusal;
    const watches = proxy.requests.filter((q) => q.path.startsWith('/v1/health/service/') && q.at >= since);
    expect(watches.length).toBe(3);
    // Never retried in a loop: every refused query waited at least pause/2 (1 s) for the next.
    for (let i = 1; i < watches.length; i++) {
      expect((watches[i] as { at: number }).at - (watches[i - 1] as { at: number }).at).toBeGreaterThanOrEqual(950);
    }
    expect(errors.every((e) => e instanceof RegistryError && e.statusCode === 403)).toBe(true);
    for (const text of [logger.text(), ...errors.map((e) => `${e.message} ${String(e.stack)}`), String((error as Error).stack)]) {
      expect(text).not.toContain(wrong);
    }
    for (const req of proxy.requests) expect(req.url).not.toContain(wrong);
  });

  it('a token from CONSUL_HTTP_TOKEN_FILE (through the config loader)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'inmesh-token-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'token');
    writeFileSync(file, `${readToken}\n`, { mode: 0o600 });
    const config = loadConfig({ env: { CONSUL_HTTP_ADDR: agent.httpAddr, CONSUL_HTTP_TOKEN_FILE: file } });
    const logger = captureLogger();
    const r = new ConsulRegistry({ connection: config.consul, logger });
    cleanups.push(() => r.close());
    expect(ids(await r.resolve({ service: 'secure' }))).toEqual([instance.id]);
    expect(logger.text()).not.toContain(readToken);
  });
});

describe('consul settings the agent cannot honour', () => {
  it('CONSUL_NAMESPACE on an OSS agent is a clear RegistryError at start', async () => {
    const { host, port } = sharedConsul();
    const r = new ConsulRegistry({ connection: { host, port, namespace: 'team-a' }, logger: captureLogger() });
    try {
      await expect(r.preflight()).rejects.toThrow(/namespace "team-a" \(CONSUL_NAMESPACE \/ consul\.namespace\) needs Consul Enterprise.*1\.8\.7/);
      const error = await r.resolve({ service: 'anything' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RegistryError);
      expect((error as Error).message).toMatch(/needs Consul Enterprise/);
    } finally {
      await r.close();
    }
  });
});
