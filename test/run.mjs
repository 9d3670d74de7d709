#!/usr/bin/env node
// Runs the whole suite with coverage and prints one closing line
// "N passed, N failed, N skipped" that CI reads. Exits with vitest's code.
// Extra arguments are passed to vitest (e.g. a file filter).
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  console.error(
    `inmesh needs Node 22 or newer; this is ${process.version}. ` +
      'Run through `npm test` so that the `node` devDependency (Node 24) comes first on PATH.',
  );
  process.exit(1);
}
// `npm run test:node22` asks for exactly Node 22, so a PATH change cannot quietly run it on 24 again.
const want = process.env.TEST_NODE_MAJOR;
if (want !== undefined && String(major) !== want) {
  console.error(`test: asked for Node ${want} (TEST_NODE_MAJOR), but this is ${process.version}`);
  process.exit(1);
}
console.log(`test: running on Node ${process.version}`);

const root = fileURLToPath(new URL('..', import.meta.url));
const report = `${root}.vitest-report.json`;
rmSync(report, { force: true });
const args = process.argv.slice(2);
const coverage = args.includes('--no-coverage') ? [] : ['--coverage'];
const passThrough = args.filter((a) => a !== '--no-coverage');
const run = spawnSync(
  process.execPath,
  [
    `${root}node_modules/vitest/vitest.mjs`,
    'run',
    ...coverage,
    '--reporter=default',
    '--reporter=json',
    `--outputFile.json=${report}`,
    ...passThrough,
  ],
  { stdio: 'inherit', cwd: root },
);

let line = 'no test report was written';
try {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  line = `${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`;
} catch {
  // keep the message above; vitest's exit code decides
}
console.log(line);
process.exit(run.status ?? 1);
