#!/usr/bin/env node
// Sampled allocation profile of one benchmark cell: bytes allocated per request,
// in all and by the function that allocated them (V8's sampling heap profiler,
// objects collected by minor and major GCs included).
//   node test/bench/alloc-profile.mjs [cell=mesh-request] [concurrency=16] [ms=3000]
// Compare two cells (say raw-3pools and mesh-request) to see what the mesh allocates.
import { Session } from 'node:inspector/promises';
import { startCell } from './one-cell.mjs';

const [cellId = 'mesh-request', concArg = '16', msArg = '3000'] = process.argv.slice(2);
const concurrency = Number(concArg);
const ms = Number(msArg);
const cell = await startCell(cellId, concurrency);
await cell.drive(1500); // warm-up
const session = new Session();
session.connect();
await session.post('HeapProfiler.enable');
await session.post('HeapProfiler.startSampling', {
  samplingInterval: 256,
  includeObjectsCollectedByMinorGC: true,
  includeObjectsCollectedByMajorGC: true,
});
const n = await cell.drive(ms);
const { profile } = await session.post('HeapProfiler.stopSampling');
session.disconnect();
await cell.close();

const short = (url) =>
  url
    .replace(/^file:\/\//, '')
    .replace(/.*\/node_modules\//, '')
    .replace(/.*\/work\/main\//, '');
let total = 0;
const byFunction = new Map();
const walk = (node) => {
  const f = node.callFrame;
  const key = `${f.functionName || '(anonymous)'}  ${short(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + node.selfSize);
  total += node.selfSize;
  for (const child of node.children) walk(child);
};
walk(profile.head);
console.log(`${cellId} c=${concurrency}: ${n} requests, about ${Math.round(total / n)} bytes allocated per request (sampled)`);
for (const [k, v] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 30))) {
  console.log(`${String(Math.round(v / n)).padStart(7)} B/req  ${k}`);
}
