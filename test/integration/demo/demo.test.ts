/**
 * `npm run demo -- --quick` as CI runs it: a child process that starts real
 * processes on loopback (a Consul agent when a binary can be had, else the file
 * registry), runs the fault timeline through inmesh and then with plain fetch,
 * and writes its JSON. The mesh run's checkout success rate is above the plain
 * run's, and every process the demo started is gone afterwards, also when the
 * demo is interrupted with SIGINT half-way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DemoReport } from '../../../examples/demo/types.ts';
import { alive, killChildren } from '../../harness/pids.ts';

const root = join(import.meta.dirname, '..', '..', '..');
const dirs: string[] = [];
const children: ChildProcess[] = [];
/** PIDs the demo printed (`started NAME pid N`), killed here if a test failed before the demo stopped them. */
const printed = new Set<number>();

afterEach(async () => {
  await killChildren(children);
  for (const pid of printed) {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  printed.clear();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function startDemo(args: string[]): { child: ChildProcess; output: () => string; exited: Promise<[number | null, NodeJS.Signals | null]> } {
  const child = spawn(process.execPath, ['--experimental-transform-types', '--no-warnings', 'examples/demo/main.ts', ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  const onData = (chunk: Buffer): void => {
    out += chunk.toString();
    for (const m of out.matchAll(/started \S+ pid (\d+)/g)) printed.add(Number(m[1]));
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, output: () => out, exited };
}

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'inmesh-demo-test-'));
  dirs.push(d);
  return d;
}

describe('npm run demo -- --quick', () => {
  it('runs both scenarios, the mesh run succeeds more often than plain fetch, exits 0 and leaves no process running', async () => {
    const dir = tempDir();
    const json = join(dir, 'report.json');
    const demo = startDemo(['--quick', '--json', json, '--html', join(dir, 'report.html'), '--log', join(dir, 'processes.log')]);
    const [code] = await demo.exited;
    expect(code, demo.output()).toBe(0);

    const report = JSON.parse(readFileSync(json, 'utf8')) as DemoReport;
    const mesh = report.runs.find((r) => r.mode === 'mesh');
    const plain = report.runs.find((r) => r.mode === 'plain');
    expect(mesh?.totals.checkouts).toBeGreaterThan(0);
    expect(plain?.totals.checkouts).toBeGreaterThan(0);
    expect(mesh!.totals.successRate, demo.output()).toBeGreaterThan(plain!.totals.successRate);
    // The faults happened in both runs: injected 503s reached the instances, one instance was killed.
    expect(plain!.totals.atInstances.injected503).toBeGreaterThan(0);
    expect(mesh!.totals.atInstances.killed).toBe(1);
    expect(plain!.totals.atInstances.killed).toBe(1);
    // 3 orders + 2 inventory + 2 frontends + 2 restarted orders, and the Consul agent's starts when used.
    expect(report.processes.length).toBeGreaterThanOrEqual(9);
    expect(report.leftRunning).toEqual([]);
    expect(report.processes.filter((p) => alive(p.pid))).toEqual([]);
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toMatch(/<svg[^>]*>.*<polyline/s);
    console.log(
      `demo --quick (${report.registry}): checkouts ok with inmesh ${mesh!.totals.successRate}% of ${mesh!.totals.checkouts}, ` +
        `plain ${plain!.totals.successRate}% of ${plain!.totals.checkouts}`,
    );
  }, 150_000);

  it('a mistyped option is refused with the list of options, exit 2, before any process starts', async () => {
    const demo = startDemo(['--quik']);
    const [code] = await demo.exited;
    expect(code).toBe(2);
    expect(demo.output()).toContain("demo: Unknown option '--quik'");
    expect(demo.output()).toContain('options: --quick');
    expect(demo.output()).not.toMatch(/started \S+ pid|    at /);
  });

  it('SIGINT while the load runs stops every process it started', async () => {
    const dir = tempDir();
    const demo = startDemo(['--quick', '--json', join(dir, 'report.json'), '--html', join(dir, 'report.html'), '--log', join(dir, 'processes.log')]);
    // Wait (bounded) until the frontend of the first run is up: every kind of process is running.
    const deadline = Date.now() + 90_000;
    while (!/run 1: frontend/.test(demo.output()) && Date.now() < deadline && demo.child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(demo.output()).toMatch(/run 1: frontend/);
    const pids = [...printed];
    expect(pids.length).toBeGreaterThanOrEqual(6);
    expect(pids.filter((pid) => !alive(pid))).toEqual([]);

    process.kill(demo.child.pid!, 'SIGINT');
    const [code] = await demo.exited;
    expect(code, demo.output()).toBe(130);
    expect(demo.output()).toMatch(/nothing left running/);
    expect(pids.filter((pid) => alive(pid))).toEqual([]);
  }, 150_000);
});
