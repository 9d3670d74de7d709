#!/usr/bin/env node
// Per-request self-time difference between two profiles written by profile.mjs:
//   node test/bench/profile-diff.mjs .cache/bench/raw-3pools-c16.cpuprofile .cache/bench/mesh-request-c16.cpuprofile N_A N_B
// (N_A, N_B = requests completed while each profile was taken; profile.mjs prints them).
import { readFileSync } from 'node:fs';

const [fa, fb, na, nb] = process.argv.slice(2);
function perFunction(file, n) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const us = (p.endTime - p.startTime) / p.samples.length;
  const out = new Map();
  for (const id of p.samples) {
    const f = byId.get(id).callFrame;
    const url = f.url.replace(/^file:\/\//, '').replace(/.*\/node_modules\//, '').replace(/.*\/work\/main\//, '');
    const key = `${f.functionName || '(anonymous)'} ${url}${url ? `:${f.lineNumber + 1}` : ''}`;
    out.set(key, (out.get(key) ?? 0) + us / Number(n));
  }
  return out;
}
const a = perFunction(fa, na);
const b = perFunction(fb, nb);
const keys = new Set([...a.keys(), ...b.keys()]);
const rows = [...keys].map((k) => [k, (b.get(k) ?? 0) - (a.get(k) ?? 0), a.get(k) ?? 0, b.get(k) ?? 0]);
rows.sort((x, y) => y[1] - x[1]);
const total = rows.reduce((s, r) => s + r[1], 0);
console.log(`total self-time difference: ${total.toFixed(1)} µs/req (B - A)`);
for (const [k, d, x, y] of rows.slice(0, Number(process.env.TOP ?? 40))) {
  console.log(`${d.toFixed(2).padStart(7)} µs  (${x.toFixed(2)} -> ${y.toFixed(2)})  ${k}`);
}
