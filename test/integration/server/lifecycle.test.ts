// mesh.shutdown() and the signal handling, on real node:http servers on 127.0.0.1:0.
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { constants } from 'node:os';
import type { AddressInfo } from 'node:net';
import { Agent, Client, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { ClosedError } from '../../../src/errors.ts';
import { createMesh, type Mesh } from '../../../src/mesh/mesh.ts';
import { SHUTDOWN_ORDER, installSignalHandlers, type SignalProcess } from '../../../src/mesh/lifecycle.ts';
import type { Logger } from '../../../src/registry/types.ts';
import { Holds, close, deferred, listen } from './helpers.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

interface LogLine {
  level: string;
  message: string;
}

function recordingLogger(lines: LogLine[]): Logger {
  const at = (level: string) => (message: string) => void lines.push({ level, message });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

function newMesh(lines: LogLine[] = []): Mesh {
  const mesh = createMesh({ policy: { apiVersion: 'inmesh/v1' }, env: {}, telemetry: { enabled: false }, logger: recordingLogger(lines) });
  cleanup.push(() => mesh.close());
  return mesh;
}

/** Whether `mesh.close()` has run: `start()` rejects with ClosedError from then on. */
function isClosed(mesh: Mesh): Promise<boolean> {
  return mesh.start().then(
    () => false,
    (error: unknown) => error instanceof ClosedError,
  );
}

/** A server whose 'request' listener the mesh wraps with `mesh.server(server)`, so shutdown() drains it. */
async function serve(mesh: Mesh, app: (req: IncomingMessage, res: ServerResponse) => unknown): Promise<{ server: Server; base: string }> {
  const server = mesh.server(createServer(app));
  const base = await listen(server);
  server.keepAliveTimeout = 30_000; // kept-alive sockets stay open for the whole test unless the drain closes them
  cleanup.push(() => (server.listening ? close(server) : Promise.resolve()));
  return { server, base };
}

/** Resolves when the drain calls `server.close()` (the listener stops accepting at once; 'close' waits for every connection). */
function closeCalled(server: Server): Promise<void> {
  return new Promise((resolve) => {
    const original = server.close.bind(server);
    server.close = (callback?: (error?: Error) => void) => {
      resolve();
      return original(callback);
    };
  });
}

function agent(connections: number): Agent {
  const a = new Agent({ keepAliveTimeout: 30_000, connections });
  cleanup.push(() => a.destroy());
  return a;
}

async function get(url: string, dispatcher: Agent | Client): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  const res = await request(url, { dispatcher });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

/** The head of a raw HTTP/1.1 response read from `socket` (status line and headers, lower-cased names). */
function readResponse(socket: Socket): Promise<{ status: number; headers: Map<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    let data = '';
    const onData = (chunk: Buffer): void => {
      data += chunk.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = data.slice(0, end).split('\r\n');
      const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      const length = Number(headers.get('content-length') ?? 0);
      if (data.length < end + 4 + length) return;
      socket.off('data', onData);
      socket.off('error', reject);
      resolve({ status: Number(statusLine?.split(' ')[1]), headers, body: data.slice(end + 4, end + 4 + length) });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => reject(new Error(`socket closed before a full response (got ${JSON.stringify(data)})`)));
  });
}

describe('mesh.shutdown(): drain', () => {
  it('lets 50 requests in flight complete with 200; ok true, cut 0', async () => {
    const holds = new Holds();
    const mesh = newMesh();
    const { server, base } = await serve(mesh, async (_req, res) => {
      await holds.hold();
      res.end('done');
    });
    const dispatcher = agent(64);
    const answers = Array.from({ length: 50 }, (_, i) => get(`${base}/work/${i}`, dispatcher));
    await holds.arrived(50);
    const draining = closeCalled(server);
    const shutdown = mesh.shutdown({ propagationDelayMs: 0, drainTimeoutMs: 5000 });
    // The drain starts (the listener closes) while the 50 are still held.
    await draining;
    holds.release();
    const done = await Promise.all(answers);
    expect(done.map((a) => a.status)).toEqual(Array<number>(50).fill(200));
    expect(done.every((a) => a.text === 'done')).toBe(true);
    // Their responses were started during the drain: each closes its socket.
    expect(done.every((a) => a.headers.connection === 'close')).toBe(true);
    expect(await shutdown).toEqual({ ok: true, errors: [], cut: 0 });
    expect(await isClosed(mesh)).toBe(true);
  });

  it('answers a request arriving during the drain on a kept-alive socket with Connection: close (no reset)', async () => {
    const holds = new Holds();
    const mesh = newMesh();
    const { server, base } = await serve(mesh, async (req, res) => {
      if (req.url === '/hold') await holds.hold();
      res.end(`answer ${req.url}`);
    });
    const port = (server.address() as AddressInfo).port;
    // Socket A, kept alive: its first request is answered before shutdown.
    const socket = connect(port, '127.0.0.1');
    cleanup.push(async () => void socket.destroy());
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    const first = readResponse(socket);
    socket.write('GET /first HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const firstAnswer = await first;
    expect(firstAnswer.status).toBe(200);
    expect(firstAnswer.headers.get('connection')).toBe('keep-alive');
    // The client starts its second request on socket A (first bytes only) when shutdown starts: the socket is busy, not idle.
    socket.write('GET /second HTTP/1.1\r\n');
    // Another request, on its own keep-alive connection, is in flight: the drain goes on until it ends.
    const client = new Client(base, { keepAliveTimeout: 30_000, pipelining: 1 });
    cleanup.push(() => client.destroy());
    expect((await get(`${base}/warm`, client)).status).toBe(200);
    const held = get(`${base}/hold`, client);
    await holds.arrived(1);
    const draining = closeCalled(server);
    const shutdown = mesh.shutdown({ propagationDelayMs: 0, drainTimeoutMs: 5000 });
    await draining;
    // The drain has begun (the listener is closed): the rest of the second request arrives now.
    const second = readResponse(socket);
    const socketClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write('Host: 127.0.0.1\r\n\r\n');
    const secondAnswer = await second;
    expect(secondAnswer.status).toBe(200);
    expect(secondAnswer.body).toBe('answer /second');
    expect(secondAnswer.headers.get('connection')).toBe('close');
    await socketClosed; // the server closes socket A after that response
    holds.release();
    const heldAnswer = await held;
    expect(heldAnswer.status).toBe(200);
    expect(heldAnswer.headers.connection).toBe('close');
    expect(await shutdown).toEqual({ ok: true, errors: [], cut: 0 });
  });

  it('fails readiness (503) from the moment shutdown starts, while liveness and the app still answer', async () => {
    const mesh = newMesh();
    const { base } = await serve(mesh, (_req, res) => res.end('app'));
    const dispatcher = agent(4);
    expect((await get(`${base}/readyz`, dispatcher)).status).toBe(200);
    const shutdown = mesh.shutdown({ propagationDelayMs: 1500, drainTimeoutMs: 1000 });
    const ready = await get(`${base}/readyz`, dispatcher);
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.text)).toEqual({ status: 'closing' });
    expect((await get(`${base}/livez`, dispatcher)).status).toBe(200);
    // During the propagation delay the app still serves.
    expect((await get(`${base}/app`, dispatcher)).text).toBe('app');
    expect(await isClosed(mesh)).toBe(false);
    expect((await shutdown).ok).toBe(true);
  });

  it('is idempotent and runs its steps in SHUTDOWN_ORDER, every step even after one failed', async () => {
    const lines: LogLine[] = [];
    const mesh = newMesh(lines);
    const { server, base } = await serve(mesh, (_req, res) => res.end('app'));
    const dispatcher = agent(4);
    const seen: string[] = [];
    server.once('close', () => seen.push('drain: listener closed'));
    const telemetry = {
      shutdown: async () => {
        seen.push(`telemetry: mesh closed ${await isClosed(mesh)}`);
        throw new Error('exporter unreachable');
      },
    };
    const first = mesh.shutdown({ propagationDelayMs: 300, drainTimeoutMs: 1000, telemetry });
    expect(mesh.shutdown({ propagationDelayMs: 0 })).toBe(first);
    // maintenance: readiness fails while the listener still accepts (propagationDelay).
    expect((await get(`${base}/readyz`, dispatcher)).status).toBe(503);
    seen.push(`propagationDelay: listening ${server.listening}`);
    const result = await first;
    expect(seen).toEqual(['propagationDelay: listening true', 'drain: listener closed', 'telemetry: mesh closed false']);
    expect(await isClosed(mesh)).toBe(true); // close ran after the failed telemetry step
    expect(result.ok).toBe(false);
    expect(result.cut).toBe(0);
    expect(result.errors.map((e) => e.step)).toEqual(['telemetry']);
    expect((result.errors[0]?.error as Error).message).toBe('exporter unreachable');
    expect(lines).toContainEqual({ level: 'warn', message: 'shutdown step telemetry failed; going on with the next steps: exporter unreachable' });
    expect(SHUTDOWN_ORDER).toEqual(['maintenance', 'propagationDelay', 'drain', 'deregister', 'telemetry', 'close']);
    expect(mesh.shutdown()).toBe(first);
  });

  it('cuts a request still in flight at drainTimeoutMs: cut 1, ok false', async () => {
    const lines: LogLine[] = [];
    const mesh = newMesh(lines);
    const arrived = deferred<undefined>();
    const { base } = await serve(mesh, () => {
      arrived.resolve(undefined); // and never answers
    });
    const dispatcher = agent(4);
    const hung = get(`${base}/hang`, dispatcher).then(
      () => 'answered',
      (error: unknown) => (error as Error).name,
    );
    await arrived.promise;
    const started = performance.now();
    const result = await mesh.shutdown({ propagationDelayMs: 0, drainTimeoutMs: 200 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    expect(result).toEqual({ ok: false, errors: [], cut: 1 });
    expect(await hung).toBe('SocketError'); // the connection was cut, not answered
    expect(lines.some((l) => l.level === 'warn' && l.message.includes('requests still in flight after drainTimeoutMs (200 ms)'))).toBe(true);
  });

  it('rejects bad options with InvalidArgumentError naming the option and the value', async () => {
    const mesh = newMesh();
    await expect(mesh.shutdown({ drainTimeoutMs: -1 })).rejects.toThrow('shutdown option drainTimeoutMs must be a number of ms >= 0 (got -1)');
    expect(() => mesh.handleSignals({ signals: ['SIGNOPE' as NodeJS.Signals] })).toThrow(/handleSignals option signals/);
  });
});

class FakeProcess extends EventEmitter implements SignalProcess {
  readonly exits: number[] = [];
  readonly exited = deferred<number>();
  override on(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): this {
    return super.on(signal, listener);
  }
  override off(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): this {
    return super.off(signal, listener);
  }
  exit(code: number): void {
    this.exits.push(code);
    this.exited.resolve(code);
  }
}

describe('signal handling', () => {
  it('runs shutdown on the first signal then exits 0; a second signal exits at once with 128 + its number', async () => {
    const holds = new Holds();
    const lines: LogLine[] = [];
    const mesh = newMesh(lines);
    const { base } = await serve(mesh, async (_req, res) => {
      await holds.hold();
      res.end('done');
    });
    const proc = new FakeProcess();
    const remove = installSignalHandlers(() => mesh.shutdown({ propagationDelayMs: 0, drainTimeoutMs: 5000 }), {}, recordingLogger(lines), proc);
    cleanup.push(async () => remove());
    expect(proc.listenerCount('SIGTERM')).toBe(1);
    expect(proc.listenerCount('SIGINT')).toBe(1);
    const dispatcher = agent(4);
    const inFlight = get(`${base}/work`, dispatcher);
    await holds.arrived(1);
    proc.emit('SIGTERM', 'SIGTERM');
    expect(await isClosed(mesh)).toBe(false);
    expect(proc.exits).toEqual([]); // the shutdown waits for the request in flight
    holds.release();
    expect((await inFlight).status).toBe(200);
    expect(await proc.exited.promise).toBe(0);
    expect(await isClosed(mesh)).toBe(true);
    expect(lines).toContainEqual({ level: 'info', message: 'SIGTERM: shutting down' });

    // A second process-like emitter: its shutdown never ends, the second signal exits at once.
    const proc2 = new FakeProcess();
    const never = new Promise<never>(() => {});
    const remove2 = installSignalHandlers(() => never, {}, recordingLogger(lines), proc2);
    cleanup.push(async () => remove2());
    proc2.emit('SIGTERM', 'SIGTERM');
    expect(proc2.exits).toEqual([]);
    proc2.emit('SIGINT', 'SIGINT');
    expect(proc2.exits).toEqual([128 + constants.signals.SIGINT]);
    expect(proc2.exits).toEqual([130]);
  });

  it('exits 1 when the shutdown cut requests; with exit: false it removes its listeners instead', async () => {
    const mesh = newMesh();
    const proc = new FakeProcess();
    installSignalHandlers(async () => ({ ok: false, errors: [], cut: 1 }), {}, recordingLogger([]), proc);
    proc.emit('SIGINT', 'SIGINT');
    expect(await proc.exited.promise).toBe(1);

    const quiet = new FakeProcess();
    const done = deferred<undefined>();
    installSignalHandlers(
      async () => {
        const result = await mesh.shutdown({ propagationDelayMs: 0 });
        setImmediate(() => done.resolve(undefined));
        return result;
      },
      { exit: false, signals: ['SIGTERM'] },
      recordingLogger([]),
      quiet,
    );
    expect(quiet.listenerCount('SIGINT')).toBe(0);
    quiet.emit('SIGTERM', 'SIGTERM');
    await done.promise;
    expect(quiet.exits).toEqual([]);
    expect(quiet.listenerCount('SIGTERM')).toBe(0);
  });
});

describe('mesh.handleSignals()', () => {
  it('runs mesh.shutdown() on SIGTERM of this process; exit: false removes its listeners afterwards', async () => {
    const mesh = newMesh();
    const { server } = await serve(mesh, (_req, res) => res.end('app'));
    const before = process.listenerCount('SIGTERM');
    const remove = mesh.handleSignals({ exit: false, signals: ['SIGTERM'], propagationDelayMs: 0, drainTimeoutMs: 1000 });
    cleanup.push(async () => remove());
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    expect(() => mesh.handleSignals()).toThrow('mesh.handleSignals() was called already: one set of signal listeners per mesh');
    const closed = new Promise<void>((resolve) => server.once('close', () => resolve()));
    process.emit('SIGTERM', 'SIGTERM'); // the listener runs; no signal is sent to the process
    await closed;
    expect((await mesh.shutdown()).ok).toBe(true); // the same shutdown the signal started
    expect(await isClosed(mesh)).toBe(true);
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });
});
