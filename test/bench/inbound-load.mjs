// The load generator of the inbound cells, in its own process (forked by
// inbound.mjs): an undici Pool with one connection per request in flight,
// `concurrency` workers each looping GET + read body. It warms up, tells the
// parent, waits for 'go' (the server has started its CPU window), measures,
// and sends the result. Every loop is bounded in time and in request count.
//
//   node inbound-load.mjs <port> <concurrency> <warmupMs> <durationMs> <maxRequests>
import { Pool } from 'undici';
import { Samples, drive } from './stats.mjs';

const [port, concurrency, warmupMs, durationMs, maxRequests] = process.argv.slice(2).map(Number);
const pool = new Pool(`http://127.0.0.1:${port}`, { connections: concurrency, pipelining: 1 });

async function call() {
  const { statusCode, body } = await pool.request({ path: '/', method: 'GET' });
  await body.text();
  if (statusCode !== 200) throw new Error(`status ${statusCode}`);
}

await drive(call, concurrency, warmupMs, maxRequests, undefined);
await new Promise((resolve) => {
  process.once('message', resolve); // 'go'
  process.send({ warm: true });
});
const samples = new Samples(Math.min(maxRequests, 1_000_000));
const t0 = performance.now();
const { errors, lastError } = await drive(call, concurrency, durationMs, maxRequests, samples);
const elapsed = performance.now() - t0;
await pool.close();
process.send({ ...samples.summary(elapsed), errors, lastError: lastError && String(lastError.message ?? lastError) }, () => process.exit(0));
