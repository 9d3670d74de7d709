// Shared set-up of the one-cell tools (profile.mjs, alloc-profile.mjs): the
// cell by id, three upstream processes, and a closed-loop driver.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as peers from './clients.mjs';
import { ablationCells, meshCells } from './mesh-clients.mjs';

const cells = {
  'raw-1pool': peers.rawOnePool,
  'raw-3pools': peers.rawThreePools,
  'raw-fetch': peers.rawFetch,
  ...Object.fromEntries([...meshCells, ...ablationCells].map((c) => [c.id, c.create])),
};

/**
 * Starts three upstreams and the client of `cellId`. `drive(ms)` runs
 * `concurrency` workers of `await call()` for `ms` (at most 2,000,000 calls)
 * and returns how many were made; `close()` stops the client and the upstreams.
 */
export async function startCell(cellId, concurrency) {
  const create = cells[cellId];
  if (!create) throw new Error(`unknown cell ${cellId}; one of ${Object.keys(cells).join(', ')}`);
  const script = fileURLToPath(new URL('./upstream.mjs', import.meta.url));
  const children = [];
  const ports = await Promise.all(
    [0, 1, 2].map(() => {
      const child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
      children.push(child);
      return new Promise((resolve) => child.once('message', (m) => resolve(m.port)));
    }),
  );
  const client = await create(ports);
  return {
    async drive(duration) {
      const end = performance.now() + duration;
      let n = 0;
      const worker = async () => {
        while (performance.now() < end && n < 2_000_000) {
          n++;
          await client.call();
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      return n;
    },
    async close() {
      await client.close();
      for (const c of children) c.disconnect();
    },
  };
}
