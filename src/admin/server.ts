/**
 * The admin endpoint: a read-only HTTP listener of its own (never the app's
 * port) that serves JSON snapshots of the mesh, in the spirit of Envoy's admin
 * `/config_dump` and `/clusters` for one process. docs/admin.md documents
 * every field.
 *
 * Safety, in the order a request meets it:
 * - it binds to 127.0.0.1 unless told otherwise, and refuses a non-loopback
 *   address unless `allowNonLoopback: true` (Envoy's admin docs ask for
 *   localhost only: the output names every upstream and endpoint);
 * - bound to loopback, a request whose Host is not a loopback name is refused
 *   (403), so a web page that rebinds its DNS name to 127.0.0.1 cannot read it;
 * - only GET and HEAD are answered (anything else 405 with `Allow`): nothing
 *   here changes state;
 * - every body is JSON of plain data (the Secret class prints as
 *   `[redacted]`), then passed through the mesh's redactor as well.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { InvalidArgumentError } from '../errors.ts';
import { describeValue } from '../internal/describe.ts';
import { ADMIN_PATHS, ADMIN_VERSION, type AdminHeader, type AdminSource } from './types.ts';

export interface AdminOptions {
  /** Port to listen on; 0 picks a free one (read it from `address`). @default 0 */
  readonly port?: number;
  /** Address to bind. A non-loopback one needs `allowNonLoopback: true`. @default '127.0.0.1' */
  readonly host?: string;
  /** Allow binding a non-loopback address (the output then reaches the network: put access control in front). @default false */
  readonly allowNonLoopback?: boolean;
}

export interface AdminServer {
  /** Where it listens. */
  readonly address: { readonly host: string; readonly port: number };
  /** `http://host:port` of the listener. */
  readonly url: string;
  /** Stops listening and closes its connections. Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_ADMIN_HOST = '127.0.0.1';

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' } as const;

/** Whether an address or host name is loopback (127.0.0.0/8, ::1, IPv4-mapped 127/8, `localhost`). */
export function isLoopback(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h.toLowerCase() === 'localhost') return true;
  const kind = isIP(h);
  if (kind === 4) return h.startsWith('127.');
  if (kind === 6) {
    const lower = h.toLowerCase();
    if (lower === '::1' || lower === '0:0:0:0:0:0:0:1') return true;
    const mapped = /^(?:0:0:0:0:0:|::)ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
    return mapped !== null && (mapped[1] as string).startsWith('127.');
  }
  return false;
}

/** Checks the options; InvalidArgumentError naming the field and value otherwise. */
export function validateAdminOptions(options: AdminOptions): { port: number; host: string } {
  if (typeof options !== 'object') throw new InvalidArgumentError(`admin options must be an object (got ${describeValue(options)})`);
  const port = options.port ?? 0;
  if (!(Number.isInteger(port) && port >= 0 && port <= 65_535)) {
    throw new InvalidArgumentError(`admin.port must be an integer from 0 to 65535 (got ${describeValue(options.port)})`);
  }
  const host = options.host ?? DEFAULT_ADMIN_HOST;
  if (typeof host !== 'string' || host === '') throw new InvalidArgumentError(`admin.host must be a non-empty string (got ${describeValue(options.host)})`);
  const allow = options.allowNonLoopback ?? false;
  if (typeof allow !== 'boolean') throw new InvalidArgumentError(`admin.allowNonLoopback must be a boolean (got ${describeValue(options.allowNonLoopback)})`);
  if (!allow && !isLoopback(host)) {
    throw new InvalidArgumentError(
      `admin.host ${describeValue(host)} is not a loopback address; the admin endpoint shows every upstream and endpoint, so it binds to loopback unless allowNonLoopback: true`,
    );
  }
  return { port, host };
}

/** JSON with every non-finite number as null (JSON.stringify does so too; said here once so the docs can rely on it). */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v));
}

function header(kind: AdminHeader['kind']): AdminHeader {
  return { version: ADMIN_VERSION, kind, generatedAt: new Date().toISOString() };
}

/** The document at a path, or undefined for an unknown path. */
function documentAt(path: string, source: AdminSource): unknown {
  switch (path) {
    case '/':
      return { ...header('index'), paths: ADMIN_PATHS.slice(1) };
    case '/config_dump':
      return { ...header('config_dump'), ...source.configDump() };
    case '/clusters':
      return { ...header('clusters'), upstreams: source.clusters() };
    case '/inbound':
      return { ...header('inbound'), ...source.inbound() };
    case '/resources':
      return { ...header('resources'), resources: source.resources() };
    default:
      return undefined;
  }
}

function send(req: IncomingMessage, res: ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(body), ...extra });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function errorBody(status: number, message: string): string {
  return toJson({ version: ADMIN_VERSION, error: { status, message } });
}

/** The request listener of the admin endpoint (exported for tests of its answers). */
export function adminListener(source: AdminSource, loopbackOnly: boolean): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    // Nothing is read from a body: drop it so the connection can be reused.
    req.resume();
    if (loopbackOnly) {
      const host = hostnameOf(req.headers.host);
      if (host === undefined || !isLoopback(host)) {
        send(req, res, 403, errorBody(403, 'the admin endpoint answers loopback Host names only'));
        return;
      }
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(req, res, 405, errorBody(405, 'the admin endpoint is read-only: GET and HEAD only'), { allow: 'GET, HEAD' });
      return;
    }
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    let doc: unknown;
    try {
      doc = documentAt(path, source);
    } catch {
      // A snapshot that fails says nothing a caller can use; the message could hold anything, so it is not sent.
      send(req, res, 500, errorBody(500, 'the snapshot failed'));
      return;
    }
    if (doc === undefined) {
      send(req, res, 404, errorBody(404, `no admin document at this path; see ${ADMIN_PATHS.slice(1).join(', ')}`));
      return;
    }
    send(req, res, 200, source.redact(toJson(doc)));
  };
}

/** The host name of a Host header (`127.0.0.1:9901` → `127.0.0.1`, `[::1]:80` → `[::1]`). */
function hostnameOf(host: string | undefined): string | undefined {
  if (host === undefined || host === '') return undefined;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? undefined : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}

/** Starts the admin listener (options checked first). */
export async function startAdminServer(source: AdminSource, options: AdminOptions = {}): Promise<AdminServer> {
  const { port, host } = validateAdminOptions(options);
  const server: Server = createServer(adminListener(source, isLoopback(host)));
  // Short keep-alive: an admin scrape is occasional.
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  let closing: Promise<void> | undefined;
  return {
    address: { host: addr.address, port: addr.port },
    url: `http://${shown}:${addr.port}`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
