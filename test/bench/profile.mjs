#!/usr/bin/env node
// CPU profile of one benchmark cell, to see where the client-side time goes.
//   node test/bench/profile.mjs [cell=mesh-request] [concurrency=16] [ms=4000]
// Writes the .cpuprofile (open it in Chrome DevTools or speedscope) and
// prints the top frames by self time, plus self time grouped by file.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { fileURLToPath } from 'node:url';
import { startCell } from './one-cell.mjs';

const [cellId = 'mesh-request', concArg = '16', msArg = '4000'] = process.argv.slice(2);
const concurrency = Number(concArg);
const ms = Number(msArg);
const cell = await startCell(cellId, concurrency);
await cell.drive(1000); // warm-up
const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.setSamplingInterval', { interval: 100 });
await session.post('Profiler.start');
const t0 = performance.now();
const n = await cell.drive(ms);
const elapsed = performance.now() - t0;
const { profile } = await session.post('Profiler.stop');
session.disconnect();
await cell.close();

const dir = fileURLToPath(new URL('../../.cache/bench/', import.meta.url));
mkdirSync(dir, { recursive: true });
const file = `${dir}${cellId}-c${concurrency}.cpuprofile`;
writeFileSync(file, JSON.stringify(profile));

// Self time per node = samples hitting it x sampling interval.
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const hits = new Map();
for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1);
const total = profile.samples.length;
const frames = new Map();
const files = new Map();
const short = (url) =>
  url
    .replace(/^file:\/\//, '')
    .replace(/.*\/node_modules\//, 'node_modules/')
    .replace(/.*\/work\/main\//, '');
for (const [id, count] of hits) {
  const { callFrame } = byId.get(id);
  const where = callFrame.url ? short(callFrame.url) : `(${callFrame.functionName || 'native'})`;
  const key = `${callFrame.functionName || '(anonymous)'}  ${where}:${callFrame.lineNumber + 1}`;
  frames.set(key, (frames.get(key) ?? 0) + count);
  const group = callFrame.url
    ? where.startsWith('node_modules/')
      ? where.split('/').slice(0, where.startsWith('node_modules/@') ? 3 : 2).join('/')
      : where.startsWith('node:')
        ? where
        : where
    : `(${callFrame.functionName || 'vm'})`;
  files.set(group, (files.get(group) ?? 0) + count);
}
// Inclusive (self + callees, synchronous stacks only) per function of our own
// code and of the libraries the mesh wraps; recursion counted once.
const inclusive = new Map();
const totals = new Map();
const totalOf = (node) => {
  if (totals.has(node.id)) return totals.get(node.id);
  let t = hits.get(node.id) ?? 0;
  for (const c of node.children ?? []) t += totalOf(byId.get(c));
  totals.set(node.id, t);
  return t;
};
const ours = (url) => /\/dist\/|\/src\/|opossum|p-retry|@opentelemetry|bottleneck/.test(url);
const walk = (node, onStack) => {
  const { callFrame } = node;
  let key;
  if (callFrame.url && ours(callFrame.url)) {
    key = `${callFrame.functionName || '(anonymous)'}  ${short(callFrame.url)}:${callFrame.lineNumber + 1}`;
    if (!onStack.has(key)) inclusive.set(key, (inclusive.get(key) ?? 0) + totalOf(node));
  }
  const next = key && !onStack.has(key) ? new Set([...onStack, key]) : onStack;
  for (const c of node.children ?? []) walk(byId.get(c), next);
};
walk(profile.nodes[0], new Set());

const idle = [...hits].filter(([id]) => byId.get(id).callFrame.functionName === '(idle)').reduce((a, [, c]) => a + c, 0);
const usPerSample = (profile.endTime - profile.startTime) / total;
const pct = (c) => `${((c / total) * 100).toFixed(1).padStart(5)} % ${((c * usPerSample) / n).toFixed(1).padStart(6)} µs/req`;
console.log(`busy ${(((total - idle) * usPerSample) / n).toFixed(1)} µs/req (profile time not idle, per request)`);
console.log(`${cellId} c=${concurrency}: ${n} requests in ${elapsed.toFixed(0)} ms = ${((n / elapsed) * 1000).toFixed(0)} req/s; ${total} samples; profile: ${file}`);
console.log('\ntop frames by self time:');
for (const [k, c] of [...frames].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${pct(c)}  ${k}`);
console.log('\ninclusive time of inmesh code and the libraries it wraps (sync stacks):');
for (const [k, c] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${pct(c)}  ${k}`);
console.log('\nself time by file / package:');
for (const [k, c] of [...files].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${pct(c)}  ${k}`);
