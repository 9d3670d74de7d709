/**
 * docs/getting-started.md, run as a reader would: its files (fenced blocks with
 * `file=NAME`) are written to an empty directory where `inmesh` resolves to the
 * built package, `inmesh validate` checks the policy, and app.mjs runs against
 * orders.mjs's two servers. The one change: the page's ports 8081/8082 become
 * free ephemeral ports, as tests use no fixed port.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageUserDir, ROOT } from '../../harness/build.ts';
import { freePort } from '../../harness/ports.ts';

const run = promisify(execFile);
const page = readFileSync(join(ROOT, 'docs', 'getting-started.md'), 'utf8');
let dir = '';
let orders: ChildProcess | undefined;

/** The fenced blocks of the page that name a file: name → content. */
function filesOfPage(): Map<string, string> {
  const files = new Map<string, string>();
  for (const m of page.matchAll(/```\w+ file=(\S+)\n([\s\S]*?)```/g)) files.set(m[1] as string, m[2] as string);
  return files;
}

/** The page's shell lines (```sh blocks), without the install line. */
function shellLines(): string[] {
  return [...page.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => (m[1] as string).trim().split('\n')).filter((l) => !l.startsWith('npm install'));
}

beforeAll(() => {
  dir = packageUserDir('inmesh-getting-started-');
}, 180_000);

afterAll(() => {
  if (orders?.pid !== undefined && orders.exitCode === null) process.kill(orders.pid, 'SIGKILL');
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('docs/getting-started.md', () => {
  it('has the files and commands this test runs', () => {
    expect([...filesOfPage().keys()].sort()).toEqual(['app.mjs', 'inmesh.yaml', 'orders.mjs']);
    expect(shellLines()).toEqual([
      'npx inmesh validate inmesh.yaml',
      'node orders.mjs &',
      'INMESH_POLICY_FILE=./inmesh.yaml INMESH_ENDPOINTS_ORDERS=127.0.0.1:8081,127.0.0.1:8082 node app.mjs',
    ]);
  });

  it('validates the policy and balances app.mjs over the two orders servers', async () => {
    const [a, b] = [await freePort(), await freePort()];
    const ports = (text: string) => text.replaceAll('8081', String(a)).replaceAll('8082', String(b));
    for (const [name, content] of filesOfPage()) writeFileSync(join(dir, name), ports(content));

    const cli = join(dir, 'node_modules', 'inmesh', 'dist', 'cli.js');
    const validated = await run(process.execPath, [cli, 'validate', 'inmesh.yaml'], { cwd: dir, timeout: 20_000 });
    expect(validated.stdout.trim()).toBe('inmesh.yaml: valid');

    orders = spawn(process.execPath, ['orders.mjs'], { cwd: dir, stdio: 'ignore' });
    // Wait (bounded) until both servers accept connections.
    for (const port of [a, b]) {
      for (let i = 0; ; i++) {
        const ok = await fetch(`http://127.0.0.1:${port}/`).then(
          () => true,
          () => false,
        );
        if (ok) break;
        if (i >= 100) throw new Error(`orders.mjs did not listen on ${port}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }

    const { stdout } = await run(process.execPath, ['app.mjs'], {
      cwd: dir,
      timeout: 20_000,
      env: { ...process.env, INMESH_POLICY_FILE: './inmesh.yaml', INMESH_ENDPOINTS_ORDERS: `127.0.0.1:${a},127.0.0.1:${b}` },
    });
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines.every((l) => l.startsWith('200 orders on '))).toBe(true);
    expect(new Set(lines).size).toBe(2);
  }, 60_000);
});
