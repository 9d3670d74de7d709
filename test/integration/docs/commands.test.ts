/**
 * The shell commands of examples/README.md, run as written from the repository
 * root (`npx node` is this Node; the one change: `export/` becomes a temporary
 * directory). getting-started.md, troubleshooting.md and README.md have their
 * own tests beside this one.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../harness/build.ts';

const out = mkdtempSync(join(tmpdir(), 'inmesh-doc-commands-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function commandsOf(page: string): string[] {
  const text = readFileSync(join(ROOT, page), 'utf8');
  return [...text.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => (m[1] as string).trim().split('\n')).filter((l) => l.startsWith('npx node '));
}

function run(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
      // Node's own notice about --experimental-transform-types is not the command's output.
      const own = stderr.replace(/^\(node:\d+\) ExperimentalWarning: .*\n(\(Use `node --trace-warnings .*\n)?/m, '');
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr: own });
    });
  });
}

describe('examples/README.md commands', () => {
  const commands = commandsOf('examples/README.md');

  it('lists the commands this test runs', () => {
    expect(commands.some((c) => c.includes(' validate '))).toBe(true);
    expect(commands.filter((c) => c.includes(' export ')).length).toBeGreaterThanOrEqual(2);
  });

  it.each(commands.filter((c) => c.includes(' src/cli/main.ts ')))('%s', async (command) => {
    const args = command
      .replace(/^npx node /, '')
      .replaceAll(' export/', ` ${out}/`)
      .split(/\s+/);
    const { code, stdout, stderr } = await run(args);
    if (command.includes(' validate ')) {
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      expect(stdout).toMatch(/: valid$/m);
    } else {
      // Exit 2: a field is lossy or dropped (the page says so); the files are written and the report names every field.
      expect(code).toBe(2);
      expect(stderr).toMatch(/^export to \S+ /);
      expect(stderr).toMatch(/\d+ exact, \d+ lossy, \d+ dropped$/m);
      const dir = args[args.indexOf('--out') + 1] as string;
      expect(readdirSync(dir).length).toBeGreaterThan(0);
    }
  }, 60_000);
});
