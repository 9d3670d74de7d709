/**
 * The README's quick start, run as written against the built package: its
 * block is written to an empty directory where `inmesh` resolves to dist/,
 * started with an upstream for `orders`, called, then stopped with SIGTERM
 * (the one change: port 8080 becomes a free ephemeral port).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageUserDir, ROOT } from '../../harness/build.ts';
import { freePort } from '../../harness/ports.ts';

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
let dir = '';
let app: ChildProcess | undefined;
let orders: Server | undefined;

beforeAll(() => {
  dir = packageUserDir('inmesh-readme-');
}, 180_000);

afterAll(async () => {
  if (app?.pid !== undefined && app.exitCode === null) process.kill(app.pid, 'SIGKILL');
  if (orders !== undefined) await new Promise((r) => (orders?.closeAllConnections(), orders?.close(r)));
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('README.md', () => {
  it('the quick start serves through the mesh and stops cleanly on SIGTERM', async () => {
    const block = /## Quick start\n\n```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block, 'README.md has a ```ts block under "## Quick start"').toBeDefined();
    const port = await freePort();
    writeFileSync(join(dir, 'quick-start.mjs'), (block as string).replace('server.listen(8080)', `server.listen(${port}, '127.0.0.1')`));

    orders = createServer((req, res) => res.end(`orders ${req.url ?? ''}`));
    orders.listen(0, '127.0.0.1');
    await once(orders, 'listening');
    const ordersAddr = `127.0.0.1:${(orders.address() as { port: number }).port}`;

    let output = '';
    app = spawn(process.execPath, ['quick-start.mjs'], { cwd: dir, env: { ...process.env, INMESH_ENDPOINTS_ORDERS: ordersAddr }, stdio: ['ignore', 'pipe', 'pipe'] });
    app.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    app.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    let body = '';
    for (let i = 0; ; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined);
      if (res !== undefined) {
        expect(res.status).toBe(200);
        body = await res.text();
        break;
      }
      if (i >= 200 || app.exitCode !== null) throw new Error(`quick start did not listen on ${port}: ${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(body).toBe('orders /api/items');
    const exited = once(app, 'exit');
    process.kill(app.pid as number, 'SIGTERM');
    const [code] = (await exited) as [number | null];
    expect({ code, output }).toEqual({ code: 0, output: '' });
  }, 60_000);
});
