/** The public surface: mesh.fetch, mesh.dispatcher, typed errors, deadlines, per-call overrides. */
import { Readable } from 'node:stream';
import { fetch as undiciFetch, getGlobalDispatcher, request as undiciRequest, setGlobalDispatcher } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AbortedError,
  createMesh,
  DEADLINE_HEADER,
  ErrorCodes,
  InmeshError,
  isInmeshError,
  NoEndpointsError,
  TimeoutError,
  UpstreamError,
  type Mesh,
} from '../../../src/index.ts';
import { UNSUPPORTED_REQUEST_OPTIONS } from '../../../src/client/request.ts';
import { closeAll, hanging, ok, policyFor, startServer } from './helpers.ts';

let mesh: Mesh | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await closeAll();
});

const echo = startServer.bind(null, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.end(
      JSON.stringify({
        method: req.method,
        url: req.url,
        host: req.headers.host,
        type: req.headers['content-type'] ?? null,
        x: req.headers['x-test'] ?? null,
        deadline: req.headers[DEADLINE_HEADER] ?? null,
        body: Buffer.concat(chunks).toString(),
      }),
    );
  });
});

describe('mesh.fetch', () => {
  it('takes strings, URLs and Request objects and returns a platform Response', async () => {
    const s = await echo();
    mesh = createMesh({ registry: { static: { orders: [s.address] } }, telemetry: { enabled: false } });
    const r1 = await mesh.fetch('http://orders/a?x=1', { headers: { 'x-test': 'one' } });
    expect(r1).toBeInstanceOf(Response);
    expect(r1.status).toBe(200);
    expect(r1.url).toBe('http://orders/a?x=1');
    expect(r1.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await r1.json()).toMatchObject({ method: 'GET', url: '/a?x=1', host: 'orders', x: 'one', body: '' });

    const r2 = await mesh.fetch(new Request('http://orders/b', { method: 'POST', body: 'from-request', headers: { 'x-test': 'two' } }));
    expect(await r2.json()).toMatchObject({ method: 'POST', url: '/b', x: 'two', body: 'from-request' });

    const r3 = await mesh.fetch(new URL('http://orders/c'), { method: 'PUT', body: new URLSearchParams({ q: '1' }) });
    expect(await r3.json()).toMatchObject({ method: 'PUT', type: 'application/x-www-form-urlencoded;charset=UTF-8', body: 'q=1' });
  });

  it('streams request and response bodies', async () => {
    const s = await startServer((req, res) => {
      req.pipe(res);
    });
    mesh = createMesh({ registry: { static: { orders: [s.address] } }, telemetry: { enabled: false } });
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 5; i++) c.enqueue(new TextEncoder().encode(`chunk${i};`));
        c.close();
      },
    });
    const res = await mesh.fetch('http://orders/echo', { method: 'POST', body, duplex: 'half' });
    expect(res.body).toBeInstanceOf(ReadableStream);
    let text = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += new TextDecoder().decode(chunk);
    expect(text).toBe('chunk0;chunk1;chunk2;chunk3;chunk4;');
  });

  it('mesh.request honours an AbortSignal with AbortedError (mesh.fetch gives signal.reason: fetch.test.ts)', async () => {
    const s = await startServer((_req, res) => hanging.push(res));
    mesh = createMesh({ registry: { static: { orders: [s.address] } }, telemetry: { enabled: false } });
    const ac = new AbortController();
    const p = mesh.request('http://orders/', { signal: ac.signal });
    while (s.hits === 0) await new Promise((r) => setImmediate(r));
    ac.abort();
    const e = await p.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AbortedError);
    expect((e as AbortedError).code).toBe('INMESH_ERR_ABORTED');
    expect(s.hits).toBe(1); // never retried
  });

  it('passes other hosts to the platform fetch', async () => {
    const s = await echo();
    mesh = createMesh({ registry: { static: {} }, telemetry: { enabled: false } });
    const res = await mesh.fetch(`http://${s.address}/plain`);
    expect(await res.json()).toMatchObject({ url: '/plain', host: s.address, deadline: null });
  });
});

describe('mesh.dispatcher', () => {
  it('routes undici.request(url, { dispatcher }) through the mesh, and other hosts to the inner Agent', async () => {
    const s = await echo();
    mesh = createMesh({ registry: { static: { orders: [s.address] } }, telemetry: { enabled: false } });
    const res = await undiciRequest('http://orders/via-dispatcher', { dispatcher: mesh.dispatcher, method: 'POST', body: 'hello' });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toMatchObject({ method: 'POST', url: '/via-dispatcher', host: 'orders', body: 'hello' });
    const plain = await undiciRequest(`http://${s.address}/plain`, { dispatcher: mesh.dispatcher });
    expect(await plain.body.json()).toMatchObject({ url: '/plain', host: s.address });
  });

  it('setGlobalDispatcher(mesh.dispatcher): undici request and fetch without a dispatcher go through the mesh', async () => {
    const s = await echo();
    mesh = createMesh({
      policy: policyFor({ orders: { endpoints: [s.address] } }, { timeouts: { request: '5s' } }),
      telemetry: { enabled: false },
    });
    const previous = getGlobalDispatcher();
    setGlobalDispatcher(mesh.dispatcher);
    try {
      const res = await undiciRequest('http://orders/global', { method: 'POST', body: 'hi' });
      // host 'orders' resolves nowhere: only the mesh can have answered (and only the mesh sends x-inmesh-deadline-ms)
      expect(await res.body.json()).toMatchObject({ method: 'POST', url: '/global', host: 'orders', body: 'hi' });
      const viaFetch = await undiciFetch('http://orders/global-fetch', { headers: { 'x-test': 'f' } });
      const seen = (await viaFetch.json()) as { url: string; host: string; x: string; deadline: string | null };
      expect(seen).toMatchObject({ url: '/global-fetch', host: 'orders', x: 'f' });
      expect(Number(seen.deadline)).toBeGreaterThan(4000);
      const plain = await undiciRequest(`http://${s.address}/plain`);
      expect(await plain.body.json()).toMatchObject({ url: '/plain', host: s.address, deadline: null });
      expect(s.hits).toBe(3);
    } finally {
      setGlobalDispatcher(previous);
    }
    expect(getGlobalDispatcher()).toBe(previous);
  });

  it('reports mesh errors through the handler', async () => {
    mesh = createMesh({ registry: { static: { orders: [] } }, telemetry: { enabled: false } });
    await expect(undiciRequest('http://orders/', { dispatcher: mesh.dispatcher })).rejects.toBeInstanceOf(NoEndpointsError);
  });
});

describe('typed errors and deadlines', () => {
  it('no endpoints → NoEndpointsError (instanceof, code, guard)', async () => {
    mesh = createMesh({ registry: { static: { orders: [] } }, telemetry: { enabled: false } });
    const e = await mesh.request('http://orders/').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(NoEndpointsError);
    expect(e).toBeInstanceOf(InmeshError);
    expect(isInmeshError(e)).toBe(true);
    expect((e as NoEndpointsError).code).toBe(ErrorCodes.NO_ENDPOINTS);
    expect((e as Error).message).toBe('orders: no endpoints are known');
  });

  it('every attempt refused → UpstreamError with the attempts and the original as cause', async () => {
    const gone = await startServer(ok);
    const addresses = [gone.address];
    const other = await startServer(ok);
    addresses.push(other.address);
    await closeAll();
    mesh = createMesh({
      policy: policyFor({ orders: { endpoints: addresses } }, { retries: { backoff: { base: '1ms', max: '2ms' } }, outlierDetection: { consecutive5xx: 0 } }),
      telemetry: { enabled: false },
    });
    const e = (await mesh.request('http://orders/').catch((x: unknown) => x)) as UpstreamError;
    expect(e).toBeInstanceOf(UpstreamError);
    expect(e.code).toBe('INMESH_ERR_UPSTREAM');
    expect(e.attempts.map((a) => a.error)).toEqual(['ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED']);
    expect(new Set(e.attempts.slice(0, 2).map((a) => a.endpoint)).size).toBe(2); // the retry went to the other host
    expect(e.message).toMatch(/^orders: request failed after 3 attempts \(last: ECONNREFUSED from 127\.0\.0\.1:\d+\)$/);
    let cause: unknown = e.cause;
    while (isInmeshError(cause)) cause = cause.cause;
    expect((cause as { code: string }).code).toBe('ECONNREFUSED');
  });

  it('total deadline → TimeoutError("total"); the per-call timeout overrides the policy; the remaining time is sent downstream', async () => {
    const s = await startServer((req, res) => {
      if (req.url === '/hang') hanging.push(res);
      else res.end(String(req.headers[DEADLINE_HEADER]));
    });
    mesh = createMesh({
      policy: policyFor({ orders: { endpoints: [s.address] } }, { timeouts: { request: '3s' }, outlierDetection: { consecutive5xx: 0 } }),
      telemetry: { enabled: false },
    });
    const res = await mesh.request('http://orders/');
    const sent = Number(await res.body.text());
    expect(sent).toBeGreaterThan(2000); // the time left when sent: 3 s minus the call's own set-up
    expect(sent).toBeLessThanOrEqual(3000);
    const t0 = performance.now();
    const e = (await mesh.request('http://orders/hang', { timeout: 150 }).catch((x: unknown) => x)) as TimeoutError;
    expect(e).toBeInstanceOf(TimeoutError);
    expect(e.phase).toBe('total');
    expect(e.message).toBe('orders: total timeout of 150 ms exceeded');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(145);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('per-try timeout with retries off → TimeoutError("attempt")', async () => {
    const s = await startServer((_req, res) => hanging.push(res));
    mesh = createMesh({ registry: { static: { orders: [s.address] } }, telemetry: { enabled: false } });
    const e = (await mesh.request('http://orders/', { perTryTimeout: 50, retries: false }).catch((x: unknown) => x)) as TimeoutError;
    expect(e).toBeInstanceOf(TimeoutError);
    expect(e.phase).toBe('attempt');
    expect(s.hits).toBe(1);
  });

  it('invalid per-call options are rejected with InvalidArgumentError', async () => {
    mesh = createMesh({ registry: { static: { orders: ['127.0.0.1:1'] } }, telemetry: { enabled: false } });
    await expect(mesh.request('http://orders/', { timeout: -1 })).rejects.toMatchObject({ code: 'INMESH_ERR_INVALID_ARGUMENT' });
    // At most as many retries as the policy allows (retries.attempts: 0 to 10), so a call cannot retry without end.
    await expect(mesh.request('http://orders/', { retries: 1000 })).rejects.toThrow('retries must be false or an integer from 0 to 10, as retries.attempts in the policy (got 1000)');
    await expect(mesh.request('not a url')).rejects.toMatchObject({ code: 'INMESH_ERR_INVALID_ARGUMENT' });
  });

  it('mesh.request refuses every undici option it does not honour, naming it and its value; nothing is sent', async () => {
    const s = await echo();
    mesh = createMesh({ registry: { static: { orders: [s.address] } }, telemetry: { enabled: false } });
    const names = Object.keys(UNSUPPORTED_REQUEST_OPTIONS);
    expect(names).toEqual(expect.arrayContaining(['throwOnError', 'opaque', 'headersTimeout', 'bodyTimeout', 'upgrade', 'dispatcher']));
    for (const name of names) {
      const e = (await mesh.request('http://orders/', { [name]: 5 }).catch((x: unknown) => x)) as InmeshError;
      expect(e.code).toBe(ErrorCodes.INVALID_ARGUMENT);
      expect(e.message).toBe(`mesh.request() does not support the undici option ${name} (got 5): ${UNSUPPORTED_REQUEST_OPTIONS[name]}`);
    }
    const e = (await mesh.request('http://orders/', { method: 'GET', throwOnError: true } as never).catch((x: unknown) => x)) as InmeshError;
    expect(e.message).toMatch(/^mesh\.request\(\) does not support the undici option throwOnError \(got true\)/);
    // undefined values are not options
    await (await mesh.request('http://orders/', { opaque: undefined, method: 'GET' } as never)).body.dump();
    expect(s.hits).toBe(1);
  });

  it("mesh.request's query option is serialized as undici does; refused when the URL has a query already", async () => {
    const s = await echo();
    mesh = createMesh({ registry: { static: { orders: [s.address] } }, telemetry: { enabled: false } });
    const res = await mesh.request('http://orders/q', { query: { a: 1, b: ['x', 'y'], c: 'é &' } });
    expect(await res.body.json()).toMatchObject({ url: '/q?a=1&b=x&b=y&c=%C3%A9%20%26', host: 'orders' });
    await expect(mesh.request('http://orders/q?z=1', { query: { a: 1 } })).rejects.toMatchObject({
      code: 'INMESH_ERR_INVALID_ARGUMENT',
      message: 'query cannot be passed when the URL already contains "?" or "#" (got http://orders/q?z=1)',
    });
    await expect(mesh.request('http://orders/q', { query: 'a=1' as never })).rejects.toMatchObject({
      message: 'query must be an object of parameters (got "a=1")',
    });
    expect(s.hits).toBe(1);
  });

  it('the method is upper-cased on the mesh path and on the pass-through path', async () => {
    const s = await echo();
    mesh = createMesh({ registry: { static: { orders: [s.address] } }, telemetry: { enabled: false } });
    const viaMesh = await mesh.request('http://orders/', { method: 'post', body: 'm' });
    expect(await viaMesh.body.json()).toMatchObject({ method: 'POST', body: 'm' });
    const plain = await mesh.request(`http://${s.address}/`, { method: 'post', body: 'p' });
    expect(await plain.body.json()).toMatchObject({ method: 'POST', body: 'p', host: s.address });
  });

  it('on the pass-through path query applies and unsupported options are refused, as on the mesh path', async () => {
    const s = await echo();
    mesh = createMesh({ registry: { static: { orders: ['127.0.0.1:1'] } }, telemetry: { enabled: false } });
    const plain = await mesh.request(`http://${s.address}/q`, { query: { a: 1, b: 'x y' } });
    expect(await plain.body.json()).toMatchObject({ url: '/q?a=1&b=x%20y', host: s.address });
    await expect(mesh.request(`http://${s.address}/q`, { throwOnError: true } as never)).rejects.toMatchObject({
      code: 'INMESH_ERR_INVALID_ARGUMENT',
      message: expect.stringContaining('throwOnError') as string,
    });
  });

  it('a closed mesh refuses calls with ClosedError', async () => {
    const m = createMesh({ registry: { static: { orders: ['127.0.0.1:1'] } }, telemetry: { enabled: false } });
    await m.close();
    await expect(m.request('http://orders/')).rejects.toMatchObject({ code: 'INMESH_ERR_CLOSED' });
  });

  it('a streamed request body goes through mesh.request', async () => {
    const s = await echo();
    mesh = createMesh({ registry: { static: { orders: [s.address] } }, telemetry: { enabled: false } });
    const res = await mesh.request('http://orders/', { method: 'POST', body: Readable.from(['a', 'b']) });
    expect(await res.body.json()).toMatchObject({ body: 'ab' });
  });
});

describe('resilience layers wired in', () => {
  it('the client rate limit rejects with RateLimitedError and never reaches the server', async () => {
    const s = await startServer(ok);
    mesh = createMesh({
      policy: policyFor({ orders: { endpoints: [s.address], doc: { rateLimit: { requestsPerSecond: 1, burst: 2 } } } }),
      telemetry: { enabled: false },
    });
    for (let i = 0; i < 2; i++) await (await mesh.request('http://orders/')).body.dump();
    await expect(mesh.request('http://orders/')).rejects.toMatchObject({ code: 'INMESH_ERR_RATE_LIMITED' });
    expect(s.hits).toBe(2);
  });

  it('the circuit breaker opens when every call fails, failing fast with CircuitOpenError', async () => {
    const s = await startServer((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    mesh = createMesh({
      policy: policyFor(
        { orders: { endpoints: [s.address] } },
        { circuitBreaker: { enabled: true, minimumRequests: 5, errorThresholdPercent: 50 }, retries: { attempts: 0 }, outlierDetection: { consecutive5xx: 0 } },
      ),
      telemetry: { enabled: false },
    });
    let open = 0;
    for (let i = 0; i < 10; i++) {
      try {
        await (await mesh.request('http://orders/')).body.dump();
      } catch (e) {
        if ((e as InmeshError).code === 'INMESH_ERR_CIRCUIT_OPEN') open++;
      }
    }
    expect(open).toBeGreaterThan(0);
    expect(s.hits).toBe(10 - open);
  });
});
