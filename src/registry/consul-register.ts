/**
 * Registering this process as an instance of a service with the local Consul agent.
 *
 * - One instance id per process (default `${name}-${hostname}-${port}-${random}`).
 * - The address is detected from the network interfaces (first non-internal
 *   IPv4, then IPv6, loopback as the fallback) unless given.
 * - A health check: an HTTP check the agent runs against the service's health
 *   endpoint, or a TTL check this object keeps alive (timers unref'd, so it never
 *   holds the process open). With no check given, a TTL check (15 s, kept alive
 *   every 5 s) with DeregisterCriticalServiceAfter 1 min: the crash safety net
 *   (a process that dies without leaving is marked critical after the TTL, and
 *   the agent removes it a minute later). `check: false` registers without one.
 * - Tags and meta are checked before anything is sent, against Consul's rules and
 *   the rules inmesh's discovery applies (validate.ts labelProblems): an instance
 *   registered here is never one that discovery drops.
 * - Only fields Consul 1.8.7 accepts are sent: its decoder answers 400 to unknown
 *   fields.
 * - The agent forgetting us (a `-dev` agent restarting, an operator's
 *   deregistration) is noticed by a periodic `GET /v1/agent/service/:id` (404) or a
 *   TTL update that fails with "unknown check", and the service is registered again.
 * - Leaving: `drain()` first takes the instance out of rotation (maintenance mode,
 *   and a failed TTL) so that callers stop picking it while in-flight requests
 *   finish; `deregister()` then removes it. `leave({ drainMs })` does both.
 */
import { randomBytes } from 'node:crypto';
import { isIP, type AddressInfo } from 'node:net';
import { hostname, networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { InvalidArgumentError, RegistryError } from '../errors.ts';
import { CONSUL_DEFAULTS } from './consul-connection.ts';
import { ConsulHttp, type ConsulConnectionOptions } from './consul-http.ts';
import { createPreflight } from './consul-preflight.ts';
import { consoleLogger, safeLogger } from './logger.ts';
import { describeValue } from '../internal/describe.ts';
import { hideUserinfo } from '../internal/userinfo.ts';
import { checkAddress, checkPort, labelProblems } from './validate.ts';
import type { Logger } from './types.ts';

/**
 * The agent polls this URL; any 2xx is passing, 429 warning, anything else critical.
 * It must point at the instance's own address, or loopback when the agent is on loopback, without credentials
 * (the agent follows redirects from it: see `checkHttpCheck`).
 */
export interface HttpCheckOptions {
  /** Full URL of the health endpoint on this instance, e.g. `http://10.0.0.5:8080/healthz`. */
  readonly http: string;
  /** @default 10_000 ms */
  readonly intervalMs?: number;
  /** @default 5_000 ms */
  readonly timeoutMs?: number;
  /** Consul removes the instance after it has been critical this long. @default 60_000 ms */
  readonly deregisterCriticalAfterMs?: number;
  /** @default 'GET' */
  readonly method?: 'GET' | 'HEAD';
}

/** Passing as long as this process keeps sending updates (every ttl/3). */
export interface TtlCheckOptions {
  /** @default 15_000 ms */
  readonly ttlMs: number;
  /** @default 60_000 ms */
  readonly deregisterCriticalAfterMs?: number;
}

export interface ServiceRegistrationOptions {
  /** Service name in the registry. */
  readonly name: string;
  /** Instance id, unique per agent. @default `${name}-${hostname}-${port}-${random hex}` */
  readonly id?: string;
  /** Address others use to reach this instance. @default detected (first non-internal IPv4, else IPv6, else 127.0.0.1) */
  readonly address?: string;
  /** Port others use to reach this instance. @default the port of `server` */
  readonly port?: number;
  /** A listening server (node:http, https, net): its port is used when `port` is not given. */
  readonly server?: { address(): AddressInfo | string | null };
  readonly tags?: readonly string[];
  readonly meta?: Readonly<Record<string, string>>;
  /** Written to meta.version. */
  readonly version?: string;
  /** Written to meta.zone. */
  readonly zone?: string;
  /** Weights.Passing for weighted balancing. @default 1 */
  readonly weight?: number;
  /**
   * @default a TTL check of 15 s kept alive by this object, DeregisterCriticalServiceAfter 1 min.
   * `false`: no check (the instance is passing as long as the agent's node is, and a crashed process stays registered).
   */
  readonly check?: HttpCheckOptions | TtlCheckOptions | false;
  readonly connection?: ConsulConnectionOptions;
  /** How often to confirm the agent still knows the instance (0: never). @default 10_000 ms */
  readonly verifyIntervalMs?: number;
  readonly logger?: Logger;
}

export type RegistrationState = 'new' | 'registered' | 'draining' | 'deregistered';

const DEFAULTS = {
  ttlMs: 15_000, // default TTL check: kept alive every 5 s
  intervalMs: 10_000, // HTTP check interval
  timeoutMs: 5_000, // HTTP check timeout
  deregisterCriticalAfterMs: 60_000, // Consul's reaper: at least 1 min in practice (it runs every 30 s)
  verifyIntervalMs: 10_000, // re-registration check
  requestTimeoutMs: 10_000, // one agent API call
} as const;

function goDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${Math.max(1, Math.round(ms))}ms`;
}

/** First non-internal IPv4 address, else IPv6 (not link-local), else 127.0.0.1. */
export function detectAddress(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces()): string {
  const all = Object.values(interfaces).flatMap((list) => list ?? []);
  const v4 = all.find((i) => i.family === 'IPv4' && !i.internal && checkAddress(i.address) === undefined);
  if (v4) return v4.address;
  const v6 = all.find((i) => i.family === 'IPv6' && !i.internal && i.scopeid === 0 && checkAddress(i.address) === undefined);
  if (v6) return v6.address;
  return '127.0.0.1';
}

function defaultId(name: string, port: number): string {
  const host = hostname().replace(/[^A-Za-z0-9-]/g, '-').slice(0, 63) || 'host';
  return `${name}-${host}-${port}-${randomBytes(4).toString('hex')}`;
}

function isTtl(check: HttpCheckOptions | TtlCheckOptions): check is TtlCheckOptions {
  return 'ttlMs' in check;
}

/**
 * Consul's own rules for service meta keys (agent/structs: ValidateServiceMetadata):
 * 1-128 of [A-Za-z0-9_-], not starting with `consul-` (reserved). Everything else
 * (at most 64 pairs, clean string values of at most 512 characters, no
 * `__proto__`) is `labelProblems`, the rules discovery applies to what it reads.
 */
function consulMetaKeyProblems(meta: Readonly<Record<string, unknown>>): string[] {
  const problems: string[] = [];
  for (const key of Object.keys(meta)) {
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(key)) problems.push(`meta key ${describeValue(key)} must be 1-128 letters, digits, '_' or '-'`);
    else if (key.toLowerCase().startsWith('consul-')) problems.push(`meta key ${JSON.stringify(key)} uses the reserved prefix "consul-"`);
  }
  return problems;
}

/**
 * Checks tags and meta before anything is sent: Consul's key rules, and the same
 * rules discovery applies (`labelProblems`), so that a registered instance is one
 * inmesh's discovery accepts. One InvalidArgumentError names every problem, each
 * with its field and the (shortened) value.
 */
export function checkLabels(tags: unknown, meta: unknown): void {
  const tagProblems = labelProblems(tags, undefined);
  const metaProblems = labelProblems(undefined, meta);
  if (meta !== null && typeof meta === 'object') metaProblems.push(...consulMetaKeyProblems(meta as Record<string, unknown>));
  const which = [tagProblems.length > 0 ? 'tags' : '', metaProblems.length > 0 ? 'meta' : ''].filter(Boolean).join(' and ');
  if (which !== '') throw new InvalidArgumentError(`invalid service ${which}: ${[...tagProblems, ...metaProblems].join('; ')}`);
}

/** A URL for a message: credentials removed, shortened and escaped. */
function showUrl(url: URL | string): string {
  if (typeof url === 'string') return describeValue(hideUserinfo(url));
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return describeValue(copy.href);
}

/** Loopback: 127.0.0.0/8, ::1 (with or without brackets), `localhost`. */
function isLoopbackHost(host: string): boolean {
  const bare = host.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
  return bare === 'localhost' || bare === '::1' || (isIP(bare) === 4 && bare.startsWith('127.'));
}

/**
 * An HTTP check the agent may run without becoming a request-forgery tool.
 * Consul 1.8.7 follows redirects from a check URL (the CVE-2022-29153 class; its
 * `DisableRedirects` field only exists from 1.9.17 / 1.10.10 / 1.11.5), so the one
 * defence left to the registering side is where the check points: an http(s) URL
 * without userinfo, GET or HEAD, to the instance's own address, or to loopback
 * when the agent itself is reached on loopback (`agentHost`), the one case where
 * the agent's loopback is this instance's host. With an agent elsewhere, a
 * loopback URL (the instance's own address included, when it is a loopback one)
 * would make the agent call its own host's loopback services, so it is refused.
 * Returns the URL and method to send; throws InvalidArgumentError naming the
 * field and the URL (never its credentials).
 */
export function checkHttpCheck(check: HttpCheckOptions, ownAddress: string, agentHost: string): { url: string; method: 'GET' | 'HEAD' } {
  const raw: unknown = check.http;
  let url: URL;
  try {
    if (typeof raw !== 'string') throw new TypeError('not a string');
    url = new URL(raw);
  } catch {
    throw new InvalidArgumentError(`check.http must be a full http(s) URL, got ${typeof raw === 'string' ? showUrl(raw) : describeValue(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`check.http must be an http(s) URL, got ${showUrl(url)}`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new InvalidArgumentError(`check.http must not carry credentials (user:password@), got ${showUrl(url)}`);
  }
  // Both sides in the WHATWG URL parser's normal form (IPv6 compressed, lower case).
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const own = new URL(`http://${isIP(ownAddress) === 6 ? `[${ownAddress}]` : ownAddress}/`).hostname.replace(/^\[(.*)\]$/, '$1');
  const agentLocal = isLoopbackHost(agentHost);
  if (isLoopbackHost(host)) {
    if (!agentLocal) {
      throw new InvalidArgumentError(
        `check.http must not point at loopback when the Consul agent is not on loopback (agent ${describeValue(agentHost)}), got ${showUrl(url)}: ` +
          "the agent would call its own host's loopback services, not this instance; use the instance's own address" +
          (isLoopbackHost(own) ? ' (register a non-loopback address)' : ` (${ownAddress})`),
      );
    }
  } else if (host !== own) {
    throw new InvalidArgumentError(
      `check.http must point at the instance's own address (${ownAddress})${agentLocal ? ' or loopback' : ''}, got ${showUrl(url)}: ` +
        'the agent follows redirects from a check URL, so a check elsewhere can make it fetch any target',
    );
  }
  const method: unknown = check.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') throw new InvalidArgumentError(`check.method must be GET or HEAD, got ${describeValue(method)}`);
  return { url: url.href, method };
}

/** The port of a listening server, or an error saying why there is none. */
function serverPort(server: NonNullable<ServiceRegistrationOptions['server']>): number {
  const address = server.address();
  if (address === null) throw new InvalidArgumentError('options.server is not listening yet: register after listen() has called back (or pass port)');
  if (typeof address === 'string') throw new InvalidArgumentError(`options.server listens on a pipe or socket (${address}), not a TCP port: pass port`);
  return address.port;
}

function positive(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v <= 0) throw new InvalidArgumentError(`${what} must be a positive number of ms, got ${String(value)}`);
  return v;
}

export class ConsulRegistration {
  readonly id: string;
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly checkId: string | undefined;
  /** How many times the instance was registered again after the agent forgot it. */
  reregistrations = 0;
  #status: RegistrationState = 'new';
  readonly #http: ConsulHttp;
  readonly #preflight: () => Promise<void>;
  readonly #body: Record<string, unknown>;
  readonly #ttlMs: number | undefined;
  readonly #verifyMs: number;
  readonly #logger: Logger;
  #ttlTimer: NodeJS.Timeout | undefined;
  #verifyTimer: NodeJS.Timeout | undefined;
  #inflight: Promise<void> | undefined;

  constructor(options: ServiceRegistrationOptions) {
    if (typeof options.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(options.name)) {
      throw new InvalidArgumentError(`service name must be 1-128 letters, digits, '-', '_' or '.', got ${JSON.stringify(options.name)}`);
    }
    const port = options.port ?? (options.server === undefined ? undefined : serverPort(options.server));
    const portProblem = checkPort(port);
    if (portProblem) throw new InvalidArgumentError(`${portProblem}, got ${String(port)}${options.server === undefined ? '' : ' (from options.server)'}`);
    this.name = options.name;
    this.port = port as number;
    this.address = options.address ?? detectAddress();
    const addressProblem = checkAddress(this.address);
    if (addressProblem) throw new InvalidArgumentError(`registration address refused: ${addressProblem} (${JSON.stringify(this.address)})`);
    this.id = options.id ?? defaultId(this.name, this.port);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}$/.test(this.id)) {
      throw new InvalidArgumentError(`instance id must be letters, digits, '-', '_', '.' or ':', got ${JSON.stringify(this.id)}`);
    }
    const weight = options.weight ?? 1;
    if (!Number.isInteger(weight) || weight < 1) throw new InvalidArgumentError(`weight must be an integer >= 1, got ${String(weight)}`);
    this.#logger = safeLogger(options.logger ?? consoleLogger);
    this.#verifyMs = options.verifyIntervalMs ?? DEFAULTS.verifyIntervalMs;

    const meta: Record<string, string> = { ...options.meta };
    if (options.version !== undefined) meta.version = options.version;
    if (options.zone !== undefined) meta.zone = options.zone;
    checkLabels(options.tags, meta);

    // Exactly the fields of Consul 1.8.7's ServiceDefinition / CheckType.
    const body: Record<string, unknown> = {
      ID: this.id,
      Name: this.name,
      Tags: [...(options.tags ?? [])],
      Address: this.address,
      Port: this.port,
      Meta: meta,
      Weights: { Passing: weight, Warning: 1 },
    };
    const check = options.check === undefined ? { ttlMs: DEFAULTS.ttlMs } : options.check;
    if (check !== false) {
      this.checkId = `service:${this.id}`;
      const deregister = goDuration(positive(check.deregisterCriticalAfterMs, DEFAULTS.deregisterCriticalAfterMs, 'deregisterCriticalAfterMs'));
      if (isTtl(check)) {
        this.#ttlMs = positive(check.ttlMs, DEFAULTS.ttlMs, 'ttlMs');
        body.Check = {
          CheckID: this.checkId,
          Name: `${this.name} TTL`,
          TTL: goDuration(this.#ttlMs),
          DeregisterCriticalServiceAfter: deregister,
        };
      } else {
        const { url, method } = checkHttpCheck(check, this.address, options.connection?.host ?? CONSUL_DEFAULTS.host);
        body.Check = {
          CheckID: this.checkId,
          Name: `${this.name} HTTP`,
          HTTP: url,
          Method: method,
          Interval: goDuration(positive(check.intervalMs, DEFAULTS.intervalMs, 'check.intervalMs')),
          Timeout: goDuration(positive(check.timeoutMs, DEFAULTS.timeoutMs, 'check.timeoutMs')),
          DeregisterCriticalServiceAfter: deregister,
        };
      }
    } else {
      this.checkId = undefined;
    }
    this.#body = body;
    this.#http = new ConsulHttp(options.connection);
    this.#preflight = createPreflight(this.#http, this.#logger);
  }

  get state(): RegistrationState {
    return this.#status;
  }

  /** Registers (or registers again: the agent treats it as an update). Starts the TTL and verify timers. */
  async register(): Promise<void> {
    if (this.#status === 'deregistered') throw new RegistryError(`instance ${this.id} was deregistered; create a new registration`);
    // A namespace or partition the agent cannot honour is refused here, before anything is written.
    await this.#preflight();
    await this.#put();
    this.#status = 'registered';
    this.#startTimers();
  }

  async #put(): Promise<void> {
    await this.#http.request({ method: 'PUT', path: '/agent/service/register', body: this.#body, timeoutMs: DEFAULTS.requestTimeoutMs });
    if (this.#ttlMs !== undefined) await this.#pass();
  }

  async #pass(): Promise<void> {
    if (!this.checkId) return;
    await this.#http.request({
      method: 'PUT',
      path: '/agent/check/pass/{id}',
      params: { id: this.checkId },
      timeoutMs: DEFAULTS.requestTimeoutMs,
    });
  }

  #startTimers(): void {
    if (this.#ttlMs !== undefined && !this.#ttlTimer) {
      this.#ttlTimer = setInterval(() => void this.#keepAlive(), Math.max(50, Math.floor(this.#ttlMs / 3)));
      this.#ttlTimer.unref();
    }
    if (this.#verifyMs > 0 && !this.#verifyTimer) {
      this.#verifyTimer = setInterval(() => void this.verify(), this.#verifyMs);
      this.#verifyTimer.unref();
    }
  }

  #stopTimers(): void {
    if (this.#ttlTimer) clearInterval(this.#ttlTimer);
    if (this.#verifyTimer) clearInterval(this.#verifyTimer);
    this.#ttlTimer = undefined;
    this.#verifyTimer = undefined;
  }

  async #keepAlive(): Promise<void> {
    if (this.#status !== 'registered' || this.#inflight) return;
    try {
      await this.#pass();
    } catch (err) {
      const e = err as RegistryError;
      // 1.8.7 answers an update of a check it does not know with 500 "does not have associated TTL" (404 in later versions).
      if (e.statusCode === 404 || (e.statusCode === 500 && /TTL|unknown check/i.test(e.message))) {
        await this.#reregister('the agent no longer knows the TTL check');
      } else {
        this.#logger.warn(`TTL update for ${this.id} failed: ${e.message}`, { service: this.name, status: e.statusCode });
      }
    }
  }

  /** Confirms that the agent still knows the instance; registers it again if not. */
  async verify(): Promise<void> {
    if (this.#status !== 'registered' || this.#inflight) return;
    try {
      await this.#http.request({ method: 'GET', path: '/agent/service/{id}', params: { id: this.id }, timeoutMs: DEFAULTS.requestTimeoutMs });
    } catch (err) {
      const e = err as RegistryError;
      if (e.statusCode === 404) await this.#reregister('the agent no longer knows the service');
      else this.#logger.debug(`verifying ${this.id} failed: ${e.message}`, { service: this.name, status: e.statusCode });
    }
  }

  async #reregister(why: string): Promise<void> {
    if (this.#inflight) return this.#inflight;
    this.#inflight = (async () => {
      try {
        if (this.#status !== 'registered') return;
        await this.#put();
        this.reregistrations++;
        this.#logger.warn(`registered ${this.id} again: ${why}`, { service: this.name });
      } catch (err) {
        this.#logger.warn(`registering ${this.id} again failed: ${(err as Error).message}`, { service: this.name });
      } finally {
        this.#inflight = undefined;
      }
    })();
    return this.#inflight;
  }

  /**
   * Takes the instance out of rotation without removing it: maintenance mode (the
   * agent adds a critical check, so `?passing` queries drop it at once) and, with a
   * TTL check, a failed TTL. Registrations that forgot us are not renewed while draining.
   */
  async drain(reason = 'draining before shutdown'): Promise<void> {
    if (this.#status !== 'registered') return;
    this.#status = 'draining';
    if (this.#ttlTimer) clearInterval(this.#ttlTimer);
    this.#ttlTimer = undefined;
    await this.#http.request({
      method: 'PUT',
      path: '/agent/service/maintenance/{id}',
      params: { id: this.id },
      query: { enable: 'true', reason },
      timeoutMs: DEFAULTS.requestTimeoutMs,
    });
    if (this.#ttlMs !== undefined && this.checkId) {
      await this.#http
        .request({ method: 'PUT', path: '/agent/check/fail/{id}', params: { id: this.checkId }, query: { note: reason }, timeoutMs: DEFAULTS.requestTimeoutMs })
        .catch((err: unknown) => this.#logger.debug(`failing the TTL of ${this.id} failed: ${(err as Error).message}`));
    }
  }

  /** Removes the instance from the agent and stops every timer. Idempotent. */
  async deregister(): Promise<void> {
    if (this.#status === 'deregistered') return;
    this.#stopTimers();
    const was = this.#status;
    this.#status = 'deregistered';
    if (was === 'new') return;
    try {
      await this.#http.request({ method: 'PUT', path: '/agent/service/deregister/{id}', params: { id: this.id }, timeoutMs: DEFAULTS.requestTimeoutMs });
    } catch (err) {
      if ((err as RegistryError).statusCode !== 404) throw err;
    }
  }

  /**
   * drain(), wait `drainMs` for callers to move away, then deregister(). The
   * deregistration runs even when the drain call failed (the instance must not
   * stay registered because maintenance mode was refused); the drain error is
   * then logged, and a deregistration error thrown.
   */
  async leave(options: { drainMs?: number; reason?: string } = {}): Promise<void> {
    try {
      await this.drain(options.reason);
      const ms = options.drainMs ?? 0;
      if (ms > 0) await new Promise((r) => setTimeout(r, ms));
    } catch (err) {
      this.#logger.warn(`draining ${this.id} failed; deregistering anyway: ${(err as Error).message}`, { service: this.name });
    } finally {
      await this.deregister();
    }
  }

  /** What JSON.stringify shows (never the token). */
  toJSON(): Record<string, unknown> {
    return { id: this.id, name: this.name, address: this.address, port: this.port, checkId: this.checkId, state: this.#status, agent: this.#http.toJSON() };
  }

  /** Stops timers and closes connections; does NOT deregister (call leave() or deregister() first). */
  close(): void {
    this.#stopTimers();
    this.#http.destroy();
  }
}

/** Creates a ConsulRegistration and registers it. */
export async function registerService(options: ServiceRegistrationOptions): Promise<ConsulRegistration> {
  const registration = new ConsulRegistration(options);
  try {
    await registration.register();
  } catch (err) {
    registration.close();
    throw err;
  }
  return registration;
}
