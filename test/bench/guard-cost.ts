// Cost of a guarded call with no policy for its name over calling fn directly (ns per call),
// for Guard.guard and mesh.guard (the same path: no chain, no signal, no timer). A benchmark,
// not a timed test: figures go to docs/benchmarks.md ("Guarded calls").
// Run: npx -y tsx test/bench/guard-cost.ts
import { Guard } from '../../src/guard/guard.ts';
import { createMesh } from '../../src/mesh/mesh.ts';

const N = 1_000_000;
const ROUNDS = 7;
const g = new Guard();
// `cache` has the defaults of the resources block: deadline, breaker, limit, retry and a per-try AbortSignal (for scale).
const mesh = createMesh({ policy: { apiVersion: 'inmesh/v1', resources: { cache: {} } }, env: {}, telemetry: { enabled: false } });
const fn = (): Promise<number> => Promise.resolve(1);

async function time(call: () => Promise<number>): Promise<number> {
  const t = performance.now();
  for (let i = 0; i < N; i++) await call();
  return ((performance.now() - t) * 1e6) / N;
}

const direct = (): Promise<number> => fn();
const viaGuard = (): Promise<number> => g.guard('none', fn);
const viaMesh = (): Promise<number> => mesh.guard('none', fn);

const overheads: { guard: number[]; mesh: number[] } = { guard: [], mesh: [] };
for (let round = 0; round < ROUNDS; round++) {
  const d = await time(direct);
  const w = await time(viaGuard);
  const m = await time(viaMesh);
  overheads.guard.push(w - d);
  overheads.mesh.push(m - d);
  console.log(`round ${round}: direct ${d.toFixed(0)} ns, Guard.guard ${w.toFixed(0)} ns (+${(w - d).toFixed(0)}), mesh.guard ${m.toFixed(0)} ns (+${(m - d).toFixed(0)})`);
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const full = await time(() => mesh.guard('cache', fn));
const again = await time(direct);
console.log(`a resource with the default policy (the whole chain): ${full.toFixed(0)} ns per call (direct ${again.toFixed(0)} ns)`);
console.log(`median overhead over ${ROUNDS} rounds of ${N} calls: Guard.guard ${median(overheads.guard).toFixed(0)} ns, mesh.guard ${median(overheads.mesh).toFixed(0)} ns (bar: 2000 ns)`);
await mesh.close();
