/**
 * Loopback servers and a policy builder for the client integration tests.
 * Every server listens on 127.0.0.1:0; `closeAll()` destroys sockets and closes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { resolvePolicy } from '../../../src/policy/index.ts';
import type { ResolvedPolicy } from '../../../src/policy/types.ts';

export interface TestServer {
  readonly server: Server;
  readonly port: number;
  readonly address: string;
  /** Requests seen. */
  hits: number;
  /** Open sockets right now. */
  readonly sockets: Set<Socket>;
  /** Connections ever accepted. */
  connections: number;
}

export type TestHandler = (req: IncomingMessage, res: ServerResponse, server: TestServer) => void;

const open: TestServer[] = [];

export async function startServer(handler: TestHandler): Promise<TestServer> {
  const sockets = new Set<Socket>();
  const t = { hits: 0, sockets, connections: 0 } as { -readonly [K in keyof TestServer]: TestServer[K] };
  const server = createServer((req, res) => {
    t.hits++;
    handler(req, res, t);
  });
  server.keepAliveTimeout = 5_000;
  server.on('connection', (s: Socket) => {
    t.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.server = server;
  t.port = (server.address() as AddressInfo).port;
  t.address = `127.0.0.1:${t.port}`;
  open.push(t);
  return t;
}

/** Responses a test handler holds open (a hanging upstream); closeAll() destroys them. */
export const hanging: ServerResponse[] = [];

export async function closeAll(): Promise<void> {
  for (const r of hanging.splice(0)) r.destroy();
  const all = open.splice(0);
  await Promise.all(
    all.map(
      (t) =>
        new Promise<void>((resolve) => {
          for (const s of t.sockets) s.destroy();
          t.server.close(() => resolve());
        }),
    ),
  );
}

export const ok: TestHandler = (_req, res) => {
  res.end('ok');
};

/** A resolved policy from a document (upstreams.<name> get `doc`, static endpoints). */
export function policyFor(services: Record<string, { endpoints: string[]; doc?: Record<string, unknown> }>, defaults: Record<string, unknown> = {}): ResolvedPolicy {
  const upstreams: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(services)) {
    upstreams[name] = { ...s.doc, discovery: { registry: 'static', endpoints: s.endpoints } };
  }
  return resolvePolicy({ apiVersion: 'inmesh/v1', defaults: { circuitBreaker: { enabled: false }, ...defaults }, upstreams } as never);
}

/** Reads a body to a string. */
export async function text(body: { text(): Promise<string> }): Promise<string> {
  return body.text();
}
