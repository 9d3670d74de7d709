/**
 * Loopback HTTP helpers for the Consul tests: a counting proxy in front of the
 * real agent (to count what the SDK sends, and check that no token is in a URL),
 * and a scripted hostile responder that stands in for the health endpoint ONLY to
 * inject malformed registry data.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface RecordedRequest {
  at: number;
  method: string;
  url: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
}

async function listen(server: Server): Promise<number> {
  server.keepAliveTimeout = 10;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  return typeof addr === 'object' && addr ? addr.port : 0;
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((r) => server.close(() => r()));
}

function record(req: IncomingMessage): RecordedRequest {
  const u = new URL(req.url ?? '/', 'http://x');
  return { at: Date.now(), method: req.method ?? '', url: req.url ?? '', path: u.pathname, query: u.searchParams, headers: req.headers };
}

/**
 * Forwards everything to `target` (`127.0.0.1:PORT`) and records each request.
 * `fail(request)` returning a status answers that request itself instead (a fault
 * injected in front of the real agent, e.g. a refused maintenance call).
 * `setRewrite(fn)` changes the URL forwarded (e.g. strips `index` and `wait`: a
 * proxy that does not let queries block). `setDown(true)` is an outage: every
 * open connection is cut and every new one is counted (`dropped`) and reset at
 * once, on the same port, until `setDown(false)`.
 */
export async function countingProxy(target: { host: string; port: number }, fail?: (request: RecordedRequest) => number | undefined): Promise<{
  host: string;
  port: number;
  requests: RecordedRequest[];
  /** When each connection attempt during an outage was cut (Date.now()). */
  dropped: number[];
  count(pathPrefix: string, sinceMs?: number): number;
  setRewrite(rewrite: ((url: string) => string) | undefined): void;
  setDown(down: boolean): void;
  close(): Promise<void>;
}> {
  const requests: RecordedRequest[] = [];
  const dropped: number[] = [];
  let rewrite: ((url: string) => string) | undefined;
  let down = false;
  const server = createServer((req, res) => {
    const recorded = record(req);
    requests.push(recorded);
    const status = fail?.(recorded);
    if (status !== undefined) {
      req.resume();
      res.writeHead(status, { 'content-type': 'text/plain' }).end('injected failure');
      return;
    }
    const upstream = request(
      { host: target.host, port: target.port, method: req.method, path: rewrite ? rewrite(req.url ?? '/') : req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (socket) => {
    if (!down) return;
    dropped.push(Date.now());
    socket.resetAndDestroy();
  });
  const port = await listen(server);
  return {
    host: '127.0.0.1',
    port,
    requests,
    dropped,
    count: (prefix, since = 0) => requests.filter((r) => r.path.startsWith(prefix) && r.at >= since).length,
    setRewrite: (fn) => {
      rewrite = fn;
    },
    setDown: (value) => {
      down = value;
      if (down) server.closeAllConnections();
    },
    close: () => closeServer(server),
  };
}

export interface ScriptedAnswer {
  status?: number;
  index?: string;
  body?: unknown;
  /** Raw body text instead of JSON. */
  raw?: string;
}

/**
 * Answers `/v1/health/service/*` from a script (one answer per request; the last
 * answer repeats, blocking requests with an unchanged index are held until the
 * wait or until `push()` adds an answer). With `answerAll`, every request is
 * answered at once by that function instead (an agent that never blocks).
 * The one stand-in for Consul in the tests: only for data the real agent
 * would never send.
 */
export async function hostileResponder(answerAll?: (request: RecordedRequest, count: number) => ScriptedAnswer): Promise<{
  host: string;
  port: number;
  requests: RecordedRequest[];
  /** The most requests it has held open at once (answered or not yet). */
  readonly maxInFlight: number;
  push(answer: ScriptedAnswer): void;
  close(): Promise<void>;
}> {
  const requests: RecordedRequest[] = [];
  const script: ScriptedAnswer[] = [];
  let held: (() => void)[] = [];
  let served = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const answer = (res: ServerResponse, a: ScriptedAnswer): void => {
    const text = a.raw ?? JSON.stringify(a.body);
    res.writeHead(a.status ?? 200, { 'content-type': 'application/json', ...(a.index === undefined ? {} : { 'x-consul-index': a.index }) });
    res.end(text);
  };
  const server = createServer((req, res) => {
    const r = record(req);
    requests.push(r);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    // 'close' follows the end of the answer or a connection the client dropped: once per request.
    res.once('close', () => inFlight--);
    if (answerAll) {
      answer(res, answerAll(r, requests.length));
      return;
    }
    const serve = (): void => {
      const next = script[Math.min(served, script.length - 1)];
      if (!next) {
        res.writeHead(500).end('no script');
        return;
      }
      if (served < script.length) served++;
      answer(res, next);
    };
    // Hold a blocking query when nothing new is scripted (like Consul does).
    if (r.query.has('index') && served >= script.length) {
      const release = (): void => serve();
      held.push(release);
      const t = setTimeout(() => {
        held = held.filter((h) => h !== release);
        release();
      }, 2000);
      res.on('close', () => clearTimeout(t));
      return;
    }
    serve();
  });
  const port = await listen(server);
  return {
    host: '127.0.0.1',
    port,
    requests,
    get maxInFlight() {
      return maxInFlight;
    },
    push: (a) => {
      script.push(a);
      const waiting = held;
      held = [];
      for (const h of waiting) h();
    },
    close: () => closeServer(server),
  };
}
