// The clients compared by the benchmark. Each factory gets the upstream ports
// and returns { call, close }: `call()` makes one GET and reads the whole body.
// Peers get the same budget as the mesh's default policy where they have the
// knob: up to 2 retries on 5xx/network errors, a breaker, a total timeout.
import { Agent as HttpAgent } from 'node:http';
import { Agent, Pool, fetch as undiciFetch } from 'undici';

const PATH = '/';
const origin = (port) => `http://127.0.0.1:${port}`;

function rr(items) {
  let i = 0;
  return () => items[i++ % items.length];
}

async function closeAll(items) {
  await Promise.all(items.map((d) => d.close()));
}

/** undici.request on one Pool to the first upstream. */
export async function rawOnePool(ports) {
  const pool = new Pool(origin(ports[0]));
  return {
    async call() {
      const { statusCode, body } = await pool.request({ path: PATH, method: 'GET' });
      await body.text();
      if (statusCode !== 200) throw new Error(`status ${statusCode}`);
    },
    close: () => pool.close(),
  };
}

/** undici.request on one Pool per upstream, round robin by hand (the like-for-like baseline). */
export async function rawThreePools(ports) {
  const pools = ports.map((p) => new Pool(origin(p)));
  const next = rr(pools);
  return {
    async call() {
      const { statusCode, body } = await next().request({ path: PATH, method: 'GET' });
      await body.text();
      if (statusCode !== 200) throw new Error(`status ${statusCode}`);
    },
    close: () => closeAll(pools),
  };
}

/**
 * raw-3pools sending what the mesh sends on every attempt (BENCH_ABLATION=1):
 * `wire` = a Host header with the service name and the deadline header;
 * `signal` = also an abort signal (an EventEmitter, as the mesh's AttemptSignal)
 * that a timer could fire. They price undici's own side of those features.
 */
function rawThreePoolsWith({ signal }) {
  return async (ports) => {
    const { EventEmitter } = await import('node:events');
    const pools = ports.map((p) => new Pool(origin(p)));
    const next = rr(pools);
    return {
      async call() {
        const headers = { host: 'bench', 'x-inmesh-deadline-ms': String(Math.floor(15_000 - (performance.now() % 1))) };
        const opts = { path: PATH, method: 'GET', headers };
        if (signal) opts.signal = new EventEmitter();
        const { statusCode, body } = await next().request(opts);
        await body.text();
        if (statusCode !== 200) throw new Error(`status ${statusCode}`);
      },
      close: () => closeAll(pools),
    };
  };
}
export const rawThreePoolsWire = rawThreePoolsWith({ signal: false });
export const rawThreePoolsWireSignal = rawThreePoolsWith({ signal: true });

/** undici fetch over the three upstreams (round robin by hand), one Agent. */
export async function rawFetch(ports) {
  const agent = new Agent();
  const next = rr(ports.map((p) => `${origin(p)}${PATH}`));
  return {
    async call() {
      const res = await undiciFetch(next(), { dispatcher: agent });
      await res.text();
      if (res.status !== 200) throw new Error(`status ${res.status}`);
    },
    close: () => agent.close(),
  };
}

/** What many users write: opossum breaker + p-retry around undici.request, hand-rolled round robin. */
export async function opossumPRetry(ports) {
  const { default: CircuitBreaker } = await import('opossum');
  const { default: pRetry } = await import('p-retry');
  const pools = ports.map((p) => new Pool(origin(p)));
  const next = rr(pools);
  const attempt = async () => {
    const { statusCode, body } = await next().request({ path: PATH, method: 'GET' });
    const text = await body.text();
    if (statusCode >= 500) throw new Error(`status ${statusCode}`);
    return text;
  };
  // opossum's own defaults except the ones that matter: a 10 s timeout (its
  // default; one timer per call, like a total deadline), 50 % errors in 10 s.
  const breaker = new CircuitBreaker(attempt, { timeout: 10_000, errorThresholdPercentage: 50, resetTimeout: 30_000 });
  return {
    async call() {
      await pRetry(() => breaker.fire(), { retries: 2, minTimeout: 100, maxTimeout: 2000, factor: 2, randomize: true });
    },
    async close() {
      breaker.shutdown();
      await closeAll(pools);
    },
  };
}

/** cockatiel retry + consecutive breaker + timeout around undici.request, hand-rolled round robin. */
export async function cockatielPolicy(ports) {
  const { ConsecutiveBreaker, ExponentialBackoff, TimeoutStrategy, circuitBreaker, handleAll, retry, timeout, wrap } =
    await import('cockatiel');
  const pools = ports.map((p) => new Pool(origin(p)));
  const next = rr(pools);
  const policy = wrap(
    retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2000 }) }),
    circuitBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new ConsecutiveBreaker(5) }),
    timeout(10_000, TimeoutStrategy.Aggressive),
  );
  return {
    async call() {
      await policy.execute(async ({ signal }) => {
        const { statusCode, body } = await next().request({ path: PATH, method: 'GET', signal });
        await body.text();
        if (statusCode >= 500) throw new Error(`status ${statusCode}`);
      });
    },
    close: () => closeAll(pools),
  };
}

/** got (node:http underneath) with its built-in retry (limit 2) and a 10 s timeout, round robin by hand. */
export async function gotClient(ports) {
  const { default: got } = await import('got');
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 256 });
  const next = rr(ports.map((p) => `${origin(p)}${PATH}`));
  const client = got.extend({ agent: { http: agent }, retry: { limit: 2 }, timeout: { request: 10_000 } });
  return {
    async call() {
      await client(next()).text();
    },
    async close() {
      agent.destroy();
    },
  };
}
