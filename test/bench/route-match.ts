// Route matching alone, ns per matchRoute() call, no network: a header regex
// route matched by the RE2 engine the policy uses (re2js), beside the same
// route matched by the JavaScript RegExp engine (the backtracking engine
// policy regexes are not compiled with), and routes without a regex for scale.
// Also the hostile case: `(a+)+$` on a 30-character value, RE2 only (the
// backtracking engine takes seconds to minutes on it).
// Run: npm run bench:routes   (N=200000 by default)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.ts';
import { findDuplicateKey } from '../../src/config/json-keys.ts';
import { matchRoute, resolvePolicy } from '../../src/policy/index.ts';

const N = Number(process.env.N ?? 200_000);
const policy = resolvePolicy({
  apiVersion: 'inmesh/v1',
  upstreams: {
    regex: { routes: [{ name: 'user', match: { headers: [{ name: 'x-user', regex: 'u[0-9]+' }] } }] },
    exact: { routes: [{ name: 'canary', match: { headers: [{ name: 'x-canary', exact: 'true' }] } }] },
    prefix: { routes: [{ name: 'api', match: { pathPrefix: '/api/' } }] },
    hostile: { routes: [{ name: 'nested', match: { headers: [{ name: 'x-v', regex: '(a+)+$' }] } }] },
  },
});
const up = (name: string) => {
  const upstream = policy.upstreams[name];
  if (upstream === undefined) throw new Error(name);
  return upstream;
};

/** Best of three runs of N calls, after a warm-up for the JIT (the machine may be shared). */
function measure(label: string, run: () => unknown): void {
  for (let i = 0; i < N / 10; i++) run();
  let best = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 3; round++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < N; i++) run();
    best = Math.min(best, Number(process.hrtime.bigint() - started) / N);
  }
  console.log(`${label.padEnd(58)} ${best.toFixed(0).padStart(7)} ns/call`);
}

const headers = { 'x-user': 'u4242', accept: '*/*' };
const miss = { 'x-user': 'someone-else', accept: '*/*' };
const native = /^(?:u[0-9]+)$/;
console.log(`route match, N=${N}, Node ${process.version}`);
measure('pathPrefix route, matches', () => matchRoute(up('prefix'), 'GET', '/api/items'));
measure('exact header route, matches', () => matchRoute(up('exact'), 'GET', '/', { 'x-canary': 'true' }));
measure('regex header route (RE2), matches', () => matchRoute(up('regex'), 'GET', '/', headers));
measure('regex header route (RE2), no match', () => matchRoute(up('regex'), 'GET', '/', miss));
measure('same regex, JavaScript RegExp.test only (matches)', () => native.test(headers['x-user']));
measure('same regex, JavaScript RegExp.test only (no match)', () => native.test(miss['x-user']));
const hostile = { 'x-v': `${'a'.repeat(30)}!` };
measure('(a+)+$ on 30 characters (RE2), no match', () => matchRoute(up('hostile'), 'GET', '/', hostile));

// A large policy document: 2,000 upstreams as JSON, parsed, validated and resolved.
const dir = mkdtempSync(join(tmpdir(), 'inmesh-bench-'));
const file = join(dir, 'big.json');
const upstreams = Object.fromEntries(
  Array.from({ length: 2_000 }, (_, i) => [`svc-${i}`, { discovery: { registry: 'consul' }, timeouts: { request: '3s' }, routes: [{ name: 'r', match: { pathPrefix: '/a' } }] }]),
);
writeFileSync(file, JSON.stringify({ apiVersion: 'inmesh/v1', upstreams }));
let best = Number.POSITIVE_INFINITY;
for (let round = 0; round < 3; round++) {
  const started = performance.now();
  loadConfig({ env: { INMESH_POLICY_FILE: file }, cwd: dir });
  best = Math.min(best, performance.now() - started);
}
rmSync(dir, { recursive: true, force: true });
console.log(`${'policy file, 2,000 upstreams (JSON): read, validate, resolve'.padEnd(58)} ${best.toFixed(0).padStart(7)} ms`);

// Its two parsing passes alone: JSON.parse and the duplicate-key scan.
const text = JSON.stringify({ apiVersion: 'inmesh/v1', upstreams });
for (const [name, pass] of [['JSON.parse', () => JSON.parse(text) as unknown], ['duplicate-key scan', () => findDuplicateKey(text)]] as const) {
  let fastest = Number.POSITIVE_INFINITY;
  for (let round = 0; round < 5; round++) {
    const started = performance.now();
    pass();
    fastest = Math.min(fastest, performance.now() - started);
  }
  console.log(`${`  of which ${name}`.padEnd(58)} ${fastest.toFixed(1).padStart(7)} ms`);
}
