/**
 * The examples are type-checked with the project and run here, as a user would
 * run them, against loopback servers.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const servers: Server[] = [];

/** Requests each server answered, by name. */
const answered = new Map<string, number>();

async function serve(name: string): Promise<string> {
  const s = createServer((req, res) => {
    answered.set(name, (answered.get(name) ?? 0) + 1);
    res.end(`${name} ${req.url ?? ''}`);
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
    const gone = createServer();
    gone.listen(0, '127.0.0.1');
    await once(gone, 'listening');
    const port = (gone.address() as AddressInfo).port;
    await new Promise((r) => gone.close(r));
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
});
