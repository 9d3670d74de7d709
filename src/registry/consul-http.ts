/**
 * The thin HTTP layer to the Consul agent, on top of the `consul` npm client.
 *
 * `consul` 2.0.1 (last released 2024) is used only as an HTTP helper: its
 * papi-based request pipeline (`_request`, the protected method papi clients are
 * built on) with our own path, query, headers and timeout. Its `watch()` is not
 * used (the watch loop is ours, consul-watch.ts), and its typed helpers are not
 * used either because they cannot express `?cached`, namespaces or per-request
 * timeouts.
 *
 * The ACL token travels ONLY in the `X-Consul-Token` header, never in a URL, and
 * never appears in an error message: errors carry the method, the path (which
 * holds no secret), the status and Consul's short error text with the token
 * scrubbed out, and no `cause` (a papi error references the request, whose
 * headers hold the token).
 */
import { readdirSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { EventEmitter } from 'node:events';
import Consul from 'consul';
import { RegistryError } from '../errors.ts';
import { CONSUL_DEFAULTS, type ConsulConnection } from './consul-connection.ts';
import { readBoundedBytes } from '../internal/read-file.ts';
import { replaceControlCharacters } from '../internal/control-characters.ts';
import type { Secret } from '../internal/secret.ts';

/** How to reach the agent: the `ConsulConnection` shape from consul-connection.ts, every field optional. */
export type ConsulConnectionOptions = Partial<ConsulConnection>;

export interface ConsulResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export interface ConsulRequest {
  method: 'GET' | 'PUT';
  /** Path below /v1 with `{name}` placeholders, e.g. `/health/service/{service}`. */
  path: string;
  params?: Record<string, string>;
  query?: Record<string, string | readonly string[]>;
  body?: unknown;
  timeoutMs: number;
  /** Aborts the request (the promise rejects with a RegistryError). */
  signal?: AbortSignal;
  /** Add `ns` / `partition` when configured. Default true; the agent-self preflight reads unscoped. */
  scoped?: boolean;
}

interface PapiResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body?: unknown;
}

interface PapiError extends Error {
  isResponse?: boolean;
  isTimeout?: boolean;
  isAbort?: boolean;
  code?: string;
  response?: PapiResponse;
}

interface PapiClient {
  _request(opts: {
    method: string;
    path: string;
    params?: Record<string, string>;
    query?: Record<string, string | readonly string[]>;
    headers?: Record<string, string>;
    body?: unknown;
    type?: string;
    timeout?: number;
    ctx?: EventEmitter;
  }): Promise<PapiResponse>;
}

/** Largest TLS file read (bytes): a CA bundle of every public root is about a quarter of it. */
export const MAX_TLS_FILE_BYTES = 1024 * 1024;
/** Most certificate files read from a CA directory (CONSUL_CAPATH). */
export const MAX_CA_PATH_FILES = 1024;

/** Which setting a TLS file comes from, for messages. */
const TLS_SETTINGS = {
  ca: 'CA file (CONSUL_CACERT / caFile)',
  caPath: 'CA directory (CONSUL_CAPATH / caPath)',
  cert: 'client certificate (CONSUL_CLIENT_CERT / certFile)',
  key: 'client key (CONSUL_CLIENT_KEY / keyFile)',
} as const;

/** A regular file of at most MAX_TLS_FILE_BYTES (a FIFO, a device or a directory is refused at once, never read). */
function readPem(file: string, setting: keyof typeof TLS_SETTINGS): Buffer {
  const read = readBoundedBytes(file, MAX_TLS_FILE_BYTES);
  if (!read.ok) throw new RegistryError(`cannot read the Consul ${TLS_SETTINGS[setting]} ${file}: ${read.reason}`);
  return read.bytes;
}

/**
 * Every `*.pem` / `*.crt` regular file of a CA directory (CONSUL_CAPATH), in name
 * order, at most MAX_CA_PATH_FILES of them; entries that are not regular files
 * (directories, FIFOs, sockets, devices) are skipped, and a symbolic link is read
 * only when it leads to a regular file.
 */
function readCaPath(dir: string): Buffer[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    throw new RegistryError(`cannot read the Consul ${TLS_SETTINGS.caPath} ${dir}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const pems = entries
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && /\.(pem|crt)$/i.test(e.name))
    .map((e) => e.name)
    .sort();
  if (pems.length === 0) throw new RegistryError(`the Consul ${TLS_SETTINGS.caPath} ${dir} holds no *.pem or *.crt file`);
  if (pems.length > MAX_CA_PATH_FILES) {
    throw new RegistryError(`the Consul ${TLS_SETTINGS.caPath} ${dir} holds ${pems.length} *.pem / *.crt files; the limit is ${MAX_CA_PATH_FILES}`);
  }
  return pems.map((n) => readPem(join(dir, n), 'caPath'));
}

export class ConsulHttp {
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
  readonly namespace: string | undefined;
  readonly partition: string | undefined;
  readonly datacenter: string | undefined;
  // ES-private: `util.inspect` and JSON.stringify never reach them. The token stays a
  // Secret until the header is built; the agent's sockets hold in-flight requests,
  // whose headers carry it.
  readonly #client: PapiClient;
  readonly #consul: Consul;
  readonly #agent: HttpAgent;
  readonly #token: Secret | undefined;
  readonly #auth: Secret | undefined;

  constructor(connection: ConsulConnectionOptions = {}) {
    this.host = connection.host ?? CONSUL_DEFAULTS.host;
    this.port = connection.port ?? (connection.secure ? 8501 : 8500);
    this.secure = connection.secure ?? false;
    this.namespace = connection.namespace || undefined;
    this.partition = connection.partition || undefined;
    this.#auth = connection.auth !== undefined && connection.auth.reveal() !== '' ? connection.auth : undefined;
    this.datacenter = connection.datacenter || undefined;
    this.#token = connection.token !== undefined && connection.token.reveal() !== '' ? connection.token : undefined;
    if (!Number.isInteger(this.port) || this.port < 1 || this.port > 65535) {
      throw new RegistryError(`Consul port must be an integer 1-65535, got ${String(connection.port)}`);
    }
    // keepAlive: each blocking query holds one socket; they are reused between rounds.
    const ca = [...(connection.caFile ? [readPem(connection.caFile, 'ca')] : []), ...(connection.caPath ? readCaPath(connection.caPath) : [])];
    this.#agent = this.secure
      ? new HttpsAgent({
          keepAlive: true,
          ...(ca.length > 0 ? { ca } : {}),
          // CONSUL_HTTP_SSL_VERIFY=false, as the consul CLI: no verification of the agent's certificate.
          ...(connection.tlsVerify === false ? { rejectUnauthorized: false } : {}),
          ...(connection.certFile ? { cert: readPem(connection.certFile, 'cert') } : {}),
          ...(connection.keyFile ? { key: readPem(connection.keyFile, 'key') } : {}),
          ...(connection.tlsServerName ? { servername: connection.tlsServerName } : {}),
        })
      : new HttpAgent({ keepAlive: true });
    this.#consul = new Consul({ host: this.host, port: this.port, secure: this.secure, agent: this.#agent });
    this.#client = this.#consul as unknown as PapiClient;
  }

  /** `host:port` for messages. */
  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** Whether a token is configured (its value is never exposed). */
  get hasToken(): boolean {
    return this.#token !== undefined;
  }

  /** Whether basic-auth credentials are configured (their value is never exposed). */
  get hasAuth(): boolean {
    return this.#auth !== undefined;
  }

  /** What JSON.stringify shows: where the agent is, never the token. */
  toJSON(): Record<string, unknown> {
    return {
      host: this.host,
      port: this.port,
      secure: this.secure,
      ...(this.namespace === undefined ? {} : { namespace: this.namespace }),
      ...(this.datacenter === undefined ? {} : { datacenter: this.datacenter }),
      ...(this.partition === undefined ? {} : { partition: this.partition }),
      token: this.hasToken ? '[redacted]' : undefined,
      auth: this.hasAuth ? '[redacted]' : undefined,
    };
  }

  async request(req: ConsulRequest): Promise<ConsulResponse> {
    const headers: Record<string, string> = {};
    // The one place the token is revealed.
    if (this.#token !== undefined) headers['x-consul-token'] = this.#token.reveal();
    if (this.#auth !== undefined) headers.authorization = `Basic ${Buffer.from(this.#auth.reveal()).toString('base64')}`;
    let query = req.query;
    if (req.scoped !== false && (this.namespace !== undefined || this.partition !== undefined)) {
      query = {
        ...query,
        ...(this.namespace === undefined ? {} : { ns: this.namespace }),
        ...(this.partition === undefined ? {} : { partition: this.partition }),
      };
    }
    const ctx = new EventEmitter();
    const onAbort = (): void => {
      ctx.emit('cancel');
    };
    if (req.signal?.aborted) throw new RegistryError(`consul ${req.method} ${this.#describe(req)} aborted`);
    req.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await this.#client._request({
        method: req.method,
        path: req.path,
        ...(req.params ? { params: req.params } : {}),
        ...(query ? { query } : {}),
        headers,
        ...(req.body === undefined ? {} : { body: req.body, type: 'json' }),
        timeout: req.timeoutMs,
        ctx,
      });
      return { status: res.statusCode, headers: res.headers, body: res.body };
    } catch (err) {
      throw this.#translate(req, err as PapiError);
    } finally {
      req.signal?.removeEventListener('abort', onAbort);
    }
  }

  destroy(): void {
    this.#consul.destroy();
    this.#agent.destroy();
  }

  #describe(req: ConsulRequest): string {
    let path = `/v1${req.path}`;
    for (const [k, v] of Object.entries(req.params ?? {})) path = path.replace(`{${k}}`, encodeURIComponent(v));
    return path;
  }

  #scrub(text: string): string {
    const token = this.#token?.reveal();
    let clean = token === undefined ? text : text.split(token).join('[redacted]');
    const auth = this.#auth?.reveal();
    if (auth !== undefined) {
      // The pair, then its password (the part after the first colon).
      for (const secret of [auth, auth.slice(auth.indexOf(':') + 1)]) if (secret !== '') clean = clean.split(secret).join('[redacted]');
    }
    return replaceControlCharacters(clean, ' ').slice(0, 200);
  }

  #translate(req: ConsulRequest, err: PapiError): RegistryError {
    const where = `consul ${req.method} ${this.#describe(req)} at ${this.address}`;
    if (err.isResponse && err.response) {
      const status = err.response.statusCode;
      const body = err.response.body;
      const text = typeof body === 'string' ? body.trim() : Buffer.isBuffer(body) ? body.toString('utf8').trim() : '';
      const hint =
        status === 403
          ? this.hasToken
            ? ' (the ACL token was refused: check its policy)'
            : ' (no ACL token configured: set CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE)'
          : '';
      return new RegistryError(`${where} answered ${status}${text ? `: ${this.#scrub(text)}` : ''}${hint}`, {
        statusCode: status,
      });
    }
    if (err.isTimeout) return new RegistryError(`${where} timed out after ${req.timeoutMs} ms`);
    if (err.isAbort) return new RegistryError(`${where} aborted`);
    return new RegistryError(`${where} failed: ${err.code ?? this.#scrub(err.message)}`);
  }
}

/** Reads one header as a string. */
export function header(res: ConsulResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
