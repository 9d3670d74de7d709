/**
 * The examples are type-checked with the project and run here, as a user would
 * run them (`node --experimental-transform-types examples/X.ts`), against
 * loopback servers, the shared real Consul agent and a real redis-server.
 * Every child process is stopped by its PID after its test; every wait is bounded.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { consulApi, sharedConsul, sharedConsulAddr } from '../harness/consul.ts';
import { startRedis } from '../harness/redis.ts';
import { freePort } from '../harness/ports.ts';
import { killChildren } from '../harness/pids.ts';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const servers: Server[] = [];
const NODE_ARGS = ['--experimental-transform-types', '--no-warnings'];

/** Requests each server answered, by name. */
const answered = new Map<string, number>();

async function serve(name: string, answer?: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void): Promise<string> {
  const s = createServer((req, res) => {
    answered.set(name, (answered.get(name) ?? 0) + 1);
    if (answer === undefined) res.end(`${name} ${req.url ?? ''}`);
    else answer(req, res);
  });
  s.keepAliveTimeout = 10;
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  servers.push(s);
  return `127.0.0.1:${(s.address() as AddressInfo).port}`;
}

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r)))));
});

/** Runs an example to its end (killed after 45 s); resolves with its output and exit code. */
async function runExample(file: string, env: Record<string, string>, args: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, [...NODE_ARGS, file, ...args], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 45_000 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (e: unknown) => e as { code: number; stdout: string; stderr: string },
  );
}

/** Long-running examples (servers), stopped by PID after each test. */
const children: ChildProcess[] = [];
afterEach(async () => {
  await killChildren(children);
});

interface Running {
  child: ChildProcess;
  port: number;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts a server example; resolves once it prints `listening on http://127.0.0.1:PORT` (at most 30 s). */
async function startExample(file: string, env: Record<string, string>): Promise<Running> {
  const child = spawn(process.execPath, [...NODE_ARGS, file], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} not listening in 30 s: ${out}`)), 30_000);
    child.stdout.on('data', () => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${file} exited (${String(code)}) before listening: ${out}`));
    });
  });
  return { child, port, output: () => out, exited };
}

/** Resolves with the exit code, or rejects when the process is still running after `ms`. */
function exitWithin(r: Running, ms: number): Promise<number | null> {
  return Promise.race([
    r.exited,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still running after ${ms} ms: ${r.output()}`)), ms).unref()),
  ]);
}

describe('examples', () => {
  it('basic-fetch.ts balances over the endpoints given in INMESH_ENDPOINTS_ORDERS', async () => {
    const a = await serve('a');
    const b = await serve('b');
    const { stdout, stderr } = await run(process.execPath, ['--experimental-transform-types', '--no-warnings', 'examples/basic-fetch.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH, INMESH_ENDPOINTS_ORDERS: `${a},${b}` },
      timeout: 20_000,
    });
    expect(stderr).toBe('');
    const lines = stdout.trim().split('\n');
    // Round robin (the default) over two endpoints: its two calls go one to
    // each, starting at either.
    const first = /^200 (a|b) \/api\/items$/.exec(lines[0] ?? '')?.[1];
    const second = first === 'a' ? 'b' : 'a';
    expect(lines).toEqual([`200 ${first} /api/items`, `200 ${second === 'a' ? a : b} 1 ${second} /api/items`]);
    expect(Object.fromEntries(answered)).toEqual({ a: 1, b: 1 });
  });

  it('basic-fetch.ts reports an unreachable upstream as its inmesh error code and exits 1, with no stack', async () => {
    // A port that was just free: nothing listens there, every attempt is refused.
    const port = await freePort();
    const result = await run(process.execPath, ['--experimental-transform-types', '--no-warnings', 'examples/basic-fetch.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH, INMESH_ENDPOINTS_ORDERS: `127.0.0.1:${port}` },
      timeout: 20_000,
    }).then(
      () => ({ code: 0, stderr: '' }),
      (e: unknown) => e as { code: number; stderr: string },
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^INMESH_ERR_\w+ /);
    expect(result.stderr).not.toContain('    at ');
  });

  it('express-consul.ts registers in the real Consul agent, answers through Express, and on SIGTERM fails readiness, drains, leaves the catalogue and exits 0', async () => {
    const name = `examples-greeter-${randomBytes(3).toString('hex')}`;
    const app = await startExample('examples/express-consul.ts', { CONSUL_HTTP_ADDR: sharedConsulAddr(), INMESH_SERVICE_NAME: name, PORT: '0', INMESH_TRACING: 'false' });
    expect(app.output()).toMatch(new RegExp(`registered in Consul as ${name} \\(${name}-`));
    const base = `http://127.0.0.1:${app.port}`;

    const hello = await fetch(`${base}/hello/ada`);
    expect(hello.status).toBe(200);
    expect(await hello.json()).toEqual({ greeting: 'hello ada', from: name });
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const catalogue = await consulApi<{ ServicePort: number; ServiceAddress: string }[]>(sharedConsul().url, 'GET', `/v1/catalog/service/${name}`);
    expect(catalogue.data.map((e) => [e.ServiceAddress, e.ServicePort])).toEqual([['127.0.0.1', app.port]]);

    process.kill(app.child.pid as number, 'SIGTERM');
    // During the propagation delay the instance still serves, but readiness fails.
    await vi.waitFor(async () => expect((await fetch(`${base}/readyz`)).status).toBe(503), { timeout: 5_000, interval: 50 });
    expect((await fetch(`${base}/hello/bob`)).status).toBe(200);
    expect(await exitWithin(app, 20_000)).toBe(0);
    const after = await consulApi<unknown[]>(sharedConsul().url, 'GET', `/v1/catalog/service/${name}`);
    expect(after.data).toEqual([]);
  }, 60_000);

  it('fastify-service.ts answers through Fastify with the inventory service called through the mesh, a 502 naming the inmesh error when it is gone, and exits 0 on SIGTERM', async () => {
    let inventory: Server | undefined;
    const addr = await serve('inventory', (req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ url: req.url, stock: 3 })));
    inventory = servers.at(-1);
    const app = await startExample('examples/fastify-service.ts', { INMESH_ENDPOINTS_INVENTORY: addr, PORT: '0', INMESH_TRACING: 'false' });
    const base = `http://127.0.0.1:${app.port}`;

    const ok = await fetch(`${base}/stock/42`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ url: '/items/42', stock: 3 });
    expect((await fetch(`${base}/livez`)).status).toBe(200);

    // The only inventory endpoint goes away: every attempt is refused.
    await new Promise((r) => (inventory?.closeAllConnections(), inventory?.close(r)));
    inventory = undefined;
    const gone = await fetch(`${base}/stock/42`);
    expect(gone.status).toBe(502);
    expect(((await gone.json()) as { error: string }).error).toMatch(/^INMESH_ERR_/);

    process.kill(app.child.pid as number, 'SIGTERM');
    expect(await exitWithin(app, 20_000)).toBe(0);
  }, 60_000);

  it('env-config.ts takes every setting from the environment, says which variable set it, and retries a 503 on the listed endpoints', async () => {
    let first = true;
    const flaky = await serve('flaky', (_req, res) => {
      if (first) {
        first = false;
        res.writeHead(503).end('busy');
      } else res.end('flaky ok');
    });
    const env = {
      INMESH_ENDPOINTS_CATALOG: flaky,
      INMESH_REGISTRY: 'static',
      INMESH_LB_POLICY: 'least_request',
      INMESH_TIMEOUT_REQUEST: '3s',
      INMESH_TIMEOUT_PER_TRY: '1s',
      INMESH_RETRY_ATTEMPTS: '2',
      INMESH_TRACING: 'false',
    };
    const { code, stdout, stderr } = await runExample('examples/env-config.ts', env);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout.trim().split('\n')).toEqual([
      'policy.defaults.discovery.registry = env:INMESH_REGISTRY',
      'policy.defaults.loadBalancer.policy = env:INMESH_LB_POLICY',
      'policy.defaults.timeouts.request = env:INMESH_TIMEOUT_REQUEST',
      'policy.defaults.timeouts.perTry = env:INMESH_TIMEOUT_PER_TRY',
      'policy.defaults.retries.attempts = env:INMESH_RETRY_ATTEMPTS',
      'telemetry.enabled = env:INMESH_TRACING',
      `200 from ${flaky} after 2 attempt(s): flaky ok`,
    ]);

    // A bad variable: exit 1 with the variable, its value and what was expected; no stack.
    const bad = await runExample('examples/env-config.ts', { ...env, INMESH_RETRY_ATTEMPTS: 'lots' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('INMESH_RETRY_ATTEMPTS: expected an integer from 0 to 10 (got "lots")');
    expect(bad.stderr).not.toContain('    at ');
  }, 60_000);

  it('canary-split.yaml passes `inmesh validate`, and canary-split.ts shows its split, its testers route and its reports route at work', async () => {
    const validate = await runExample('src/cli/main.ts', {}, ['validate', 'examples/canary-split.yaml']);
    expect(validate).toEqual({ code: 0, stdout: 'examples/canary-split.yaml: valid\n', stderr: '' });

    const { code, stdout, stderr } = await runExample('examples/canary-split.ts', {});
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const [split, testers, reports] = stdout.trim().split('\n');
    const m = /^split: 200 calls, v1 (\d+), v2 (\d+)$/.exec(split ?? '');
    expect(m, stdout).not.toBeNull();
    const [v1, v2] = [Number(m?.[1]), Number(m?.[2])];
    expect(v1 + v2).toBe(200);
    // 10 % of 200 is 20 (binomial sd about 4.2): 5..45 fails with a chance below 1e-6.
    expect(v2).toBeGreaterThanOrEqual(5);
    expect(v2).toBeLessThanOrEqual(45);
    expect(testers).toBe('testers: 20 calls with x-canary, v2 20');
    // The route's 250 ms deadline, not the upstream's 2 s, and no retry (a retry would need another second).
    const r = /^reports: INMESH_ERR_TIMEOUT after (\d+) ms/.exec(reports ?? '');
    expect(r, reports).not.toBeNull();
    expect(Number(r?.[1])).toBeLessThan(1_000);
  }, 60_000);

  it('otlp-traces.ts exports SERVER, INTERNAL and CLIENT spans of one trace to the OTLP endpoint in OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', async () => {
    interface OtlpSpan { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number }
    interface OtlpExport { resourceSpans?: { resource?: { attributes?: { key: string; value: { stringValue?: string } }[] }; scopeSpans?: { spans?: OtlpSpan[] }[] }[] }
    const spans: (OtlpSpan & { service: string | undefined })[] = [];
    const receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpExport;
        for (const rs of body.resourceSpans ?? []) {
          const service = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue;
          for (const ss of rs.scopeSpans ?? []) for (const span of ss.spans ?? []) spans.push({ ...span, service });
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    receiver.listen(0, '127.0.0.1');
    await once(receiver, 'listening');
    servers.push(receiver);

    const { code, stdout, stderr } = await runExample('examples/otlp-traces.ts', {
      OTEL_SERVICE_NAME: 'frontend',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`,
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
    });
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toBe('200 frontend got "stock: 3"\n');
    // The example flushes before it exits: every span has arrived by now.
    const SERVER = 2;
    const INTERNAL = 1;
    const CLIENT = 3;
    const server = spans.find((s) => s.kind === SERVER);
    const internal = spans.find((s) => s.kind === INTERNAL);
    const client = spans.find((s) => s.kind === CLIENT);
    expect(server?.name).toBe('GET');
    expect(internal?.parentSpanId).toBe(server?.spanId);
    expect(client?.parentSpanId).toBe(internal?.spanId);
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([server?.traceId]));
    expect(new Set(spans.map((s) => s.service))).toEqual(new Set(['frontend']));
  }, 60_000);

  it('redis-rate-limit.ts: two processes started together share one bucket of 5 through a real redis-server', async () => {
    const redis = await startRedis();
    try {
      const quotes = await serve('quotes');
      const env = { INMESH_REDIS_URL: redis.url, INMESH_ENDPOINTS_QUOTES: quotes, INMESH_TRACING: 'false' };
      const runs = await Promise.all([runExample('examples/redis-rate-limit.ts', env), runExample('examples/redis-rate-limit.ts', env)]);
      const counts = runs.map((r) => {
        expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
        const m = /^admitted (\d+) limited (\d+)\n$/.exec(r.stdout);
        expect(m, r.stdout).not.toBeNull();
        return { admitted: Number(m?.[1]), limited: Number(m?.[2]) };
      });
      for (const c of counts) expect(c.admitted + c.limited).toBe(8);
      const admitted = counts.reduce((n, c) => n + c.admitted, 0);
      // One bucket of 5, refilled at 0.1/s while the two runs last (at most 45 s): at most 4 more.
      // Per-process buckets would admit 10.
      expect(admitted).toBeGreaterThanOrEqual(5);
      expect(admitted).toBeLessThan(10);
      expect(answered.get('quotes')).toBe(admitted);
    } finally {
      await redis.stop();
    }
  }, 90_000);

  it(
    'export-policy.ts writes the Istio and Consul documents of canary-split.yaml with a report of every field',
    async () => {
      const out = mkdtempSync(join(tmpdir(), 'inmesh-export-example-'));
      try {
        const { code, stdout, stderr } = await runExample('examples/export-policy.ts', {}, ['examples/canary-split.yaml', out]);
        expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
        expect(stdout).toMatch(/^export to istio /m);
        expect(stdout).toMatch(/^export to consul /m);
        expect(readdirSync(join(out, 'istio')).length).toBeGreaterThan(0);
        expect(readdirSync(join(out, 'consul')).length).toBeGreaterThan(0);
        // The split is in the model of both targets.
        expect(stdout).toMatch(/^ {2}(exact|lossy) +upstreams\.reviews\.split/m);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
    60_000,
  );
});
