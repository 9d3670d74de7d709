// Cost of guard() with no policy for the name over calling fn directly (ns per call).
// Run: npx -y tsx test/bench/guard-cost.ts
import { Guard } from '../../src/guard/guard.js';

const N = 1_000_000;
const g = new Guard();
const fn = (): Promise<number> => Promise.resolve(1);

async function direct(): Promise<number> {
  const t = performance.now();
  for (let i = 0; i < N; i++) await fn();
  return ((performance.now() - t) * 1e6) / N;
}
async function guarded(): Promise<number> {
  const t = performance.now();
  for (let i = 0; i < N; i++) await g.guard('none', fn);
  return ((performance.now() - t) * 1e6) / N;
}
for (let round = 0; round < 5; round++) {
  const d = await direct();
  const w = await guarded();
  console.log(`round ${round}: direct ${d.toFixed(0)} ns, guard ${w.toFixed(0)} ns, overhead ${(w - d).toFixed(0)} ns`);
}
