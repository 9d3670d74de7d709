// CJS smoke test of the built package (TOOLCHAIN pitfall 5): load dist/index.cjs
// with require() in a child process on this Node, and call through a retry,
// which is where p-retry (ESM-only, bundled into the CJS build) runs. Also the
// package export of the JSON Schema (inmesh/schema.json), at the end.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuild } from '../../harness/build.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const distCjs = join(root, 'dist', 'index.cjs');
const telemetryCjs = join(root, 'dist', 'telemetry.cjs');
const expressCjs = join(root, 'dist', 'express.cjs');
const fastifyCjs = join(root, 'dist', 'fastify.cjs');
const distSchema = join(root, 'dist', 'policy.schema.json');

function runCjs(script: string, flags: readonly string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...flags, '-e', script], { cwd: root, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

// Two endpoints of one service, sharing one counter: the very first request
// gets a 503 (a gateway error, retried by the default policy), the rest 200.
let served = 0;
const servers: Server[] = [];
const ports: number[] = [];

beforeAll(async () => {
  ensureBuild();
  for (let i = 0; i < 2; i++) {
    const server = createServer((req, res) => {
      served++;
      req.resume();
      res.writeHead(served === 1 ? 503 : 200, { 'content-type': 'text/plain' }).end(served === 1 ? 'busy' : 'ok');
    });
    server.keepAliveTimeout = 10;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    ports.push((server.address() as AddressInfo).port);
  }
}, 300_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

describe('CommonJS build', () => {
  it('require("dist/index.cjs") works and a retried mesh.request goes through p-retry', async () => {
    const script = `
      const { createMesh, isInmeshError } = require(${JSON.stringify(distCjs)});
      if (typeof isInmeshError !== 'function') throw new Error('isInmeshError missing');
      const mesh = createMesh({ registry: { static: { svc: ${JSON.stringify(ports.map((p) => `127.0.0.1:${p}`))} } } });
      mesh.request('http://svc/x').then(async (res) => {
        const text = await res.body.text();
        console.log(JSON.stringify({ status: res.statusCode, attempts: res.attempts, text }));
        await mesh.close();
      }).catch((err) => { console.error(err); process.exit(1); });
    `;
    const out = await runCjs(script);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({ status: 200, attempts: 2, text: 'ok' });
    expect(served).toBe(2);
  });

  it('require("dist/telemetry.cjs") exports startTelemetry', async () => {
    const out = await runCjs(`
      const t = require(${JSON.stringify(telemetryCjs)});
      console.log([typeof t.startTelemetry, typeof t.extractContext, typeof t.withServerSpan].join(','));
    `);
    expect(out.code).toBe(0);
    expect(out.stdout.trim()).toBe('function,function,function');
  });
});

// The framework adapters are entry points of their own: the core never loads a
// framework, and an adapter's CommonJS copy of the server code shares the
// request's deadline and signal with the core's copy (global symbols).
describe('CommonJS adapters', () => {
  it('require("dist/index.cjs") loads neither express, fastify nor fastify-plugin', async () => {
    const out = await runCjs(`
      require(${JSON.stringify(distCjs)});
      const loaded = Object.keys(require.cache).filter((k) => /node_modules[\\/](express|fastify|fastify-plugin)[\\/]/.test(k));
      console.log(JSON.stringify(loaded));
    `);
    expect(out.stderr).toBe('');
    expect(JSON.parse(out.stdout)).toEqual([]);
  });

  it.each([
    ['express', `
      const express = require('express');
      const { inmeshExpress } = require(${JSON.stringify(expressCjs)});
      const app = express();
      app.use(inmeshExpress(mesh));
      app.get('/x', (req, res) => res.json(seen(req)));
      const server = app.listen(0, '127.0.0.1', () => go(server.address().port, () => server.close()));
    `],
    ['fastify', `
      const Fastify = require('fastify');
      const { inmeshFastify } = require(${JSON.stringify(fastifyCjs)});
      const app = Fastify();
      app.register(inmeshFastify, { mesh });
      app.get('/x', async (request) => seen(request));
      app.listen({ port: 0, host: '127.0.0.1' }).then(() => go(app.server.address().port, () => app.close()));
    `],
  ])('%s adapter (CJS) with the core (CJS): currentDeadline() and requestSignal() see the request', async (_name, body) => {
    const out = await runCjs(`
      const { createMesh, currentDeadline, requestSignal } = require(${JSON.stringify(distCjs)});
      const mesh = createMesh({ policy: { apiVersion: 'inmesh/v1', inbound: { timeouts: { request: '5s' } } }, env: {}, telemetry: { enabled: false } });
      const seen = (req) => {
        const d = currentDeadline();
        return { left: d === undefined ? null : d - performance.now(), signal: requestSignal(req).aborted };
      };
      const go = (port, stop) => fetch('http://127.0.0.1:' + port + '/x', { headers: { 'x-inmesh-deadline-ms': '900' } })
        .then((r) => r.json())
        .then(async (j) => { console.log(JSON.stringify(j)); await stop(); await mesh.close(); })
        .catch((e) => { console.error(e); process.exit(1); });
      ${body}
    `);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const seen = JSON.parse(out.stdout) as { left: number | null; signal: boolean };
    expect(seen.signal).toBe(false);
    expect(seen.left).toBeGreaterThan(800);
    expect(seen.left).toBeLessThanOrEqual(900);
  });
});

// The JSON Schema is shipped for tooling in any language as the package export
// `inmesh/schema.json`. Resolved here by the package's own name (self-reference
// through the exports map) from a child process in the package root, so it is
// the built dist/ and package.json that answer, not the source tree.
describe('package export inmesh/schema.json', () => {
  const source = JSON.parse(readFileSync(join(root, 'src', 'policy', 'policy.schema.json'), 'utf8')) as unknown;

  it('require() resolves it to dist/policy.schema.json, equal to src/policy/policy.schema.json', async () => {
    const out = await runCjs(`
      const path = require.resolve('inmesh/schema.json');
      console.log(JSON.stringify({ path, schema: require('inmesh/schema.json') }));
    `);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const { path, schema } = JSON.parse(out.stdout) as { path: string; schema: unknown };
    expect(path).toBe(distSchema);
    expect(schema).toEqual(source);
  });

  it('import() with type json resolves it too', async () => {
    const out = await runCjs(
      `import('inmesh/schema.json', { with: { type: 'json' } }).then((m) => console.log(JSON.stringify(m.default)), (e) => { console.error(e); process.exit(1); });`,
      ['--input-type=module'],
    );
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual(source);
  });

  it('the old schema/ path is not exported', async () => {
    const out = await runCjs(`
      try { require.resolve('inmesh/schema/policy.schema.json'); console.log('resolved'); }
      catch (e) { console.log(e.code); }
    `);
    expect(out.stdout.trim()).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });
});

/** A Node.js older than the supported 22.19 (the system's Node 20 on our machines), if there is one. */
function olderNode(): string | undefined {
  const dirs = (process.env.PATH ?? '').split(':').filter((d) => d !== '' && !d.includes('node_modules'));
  for (const candidate of [...dirs.map((d) => join(d, 'node')), '/usr/bin/node', '/usr/local/bin/node']) {
    if (!existsSync(candidate)) continue;
    const v = spawnSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    const [major = 0, minor = 0] = v.split('.').map(Number);
    if (major > 0 && (major < 22 || (major === 22 && minor < 19))) return candidate;
  }
  return undefined;
}

describe('on a Node.js older than 22.19', () => {
  const old = olderNode();
  beforeAll(ensureBuild, 120_000);

  for (const [form, code] of [
    ['import()', `import(${JSON.stringify(join(root, 'dist', 'index.js'))})`],
    ['import() of inmesh/fastify', `import(${JSON.stringify(join(root, 'dist', 'fastify.js'))})`],
    ['require()', `Promise.resolve().then(() => require(${JSON.stringify(distCjs)}))`],
  ] as const) {
    it.skipIf(old === undefined)(`${form} fails at once naming the Node.js needed and the one running${old === undefined ? ' (skipped: no Node.js older than 22.19 on PATH)' : ''}`, () => {
      const run = spawnSync(old ?? 'node', ['-e', `${code}.then(() => process.exit(3), (e) => { console.error(e.message); process.exit(1); })`], { encoding: 'utf8' });
      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(/^inmesh needs Node\.js 22\.19 or newer .* runs Node\.js \d+\.\d+\.\d+\n$/);
    });
  }
});
