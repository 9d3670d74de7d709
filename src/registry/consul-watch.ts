/**
 * The Consul blocking-query loop for one query: `/v1/health/service/:name`.
 *
 * Rules (Consul's "Blocking Queries" page, and node-consul lib/watch.js):
 * - the first request is a plain read; then `index` = the last `X-Consul-Index`
 *   and `wait` (default 60 s);
 * - an index that goes backwards (agent restart, snapshot restore) resets to 0,
 *   so the next read is a plain one; so does any failed request (a restarted
 *   agent would otherwise hold a query whose index it has not reached for the
 *   whole wait); an index of 0 is never used for blocking (1 instead);
 * - the client timeout sits above `wait + wait/16` (Consul's jitter) plus a margin;
 * - pacing (`paceMs`, Consul's advice: rate-limit the loop rather than sleep a
 *   fixed time): query starts are at least `minIntervalMs` apart, so a service
 *   that changes every few milliseconds costs at most one query per interval and
 *   the changes in between are read together by the next query; a single change
 *   after a quiet period goes through at once (its query started long ago);
 * - a blocking query that comes back early with nothing changed (the index did
 *   not advance: it went backwards, is 0, or the agent or a proxy does not
 *   block) counts as idle: the interval doubles with each idle answer up to
 *   `idleIntervalMs`, and drops back to `minIntervalMs` on the first answer that
 *   blocked normally (a new index, or the whole wait);
 * - a failure (network error, 5xx, a body that is not a list) backs off
 *   `min(backoffMaxMs, base * 2^n)`, jittered by ±20 %: while the agent is down it
 *   is asked about once per `backoffMaxMs`, and found again within about that
 *   long of answering; a 4xx (ACL refusal, bad request) waits about
 *   `refusedPauseMs` (`pause/2 + random(0, pause/2)`, jittered so that many
 *   watches refused together do not retry together): it will not fix itself in
 *   a tight loop;
 * - nothing ends the loop but stop(): whatever a round throws (a user logger that
 *   throws included) is caught, and the next round is always scheduled;
 * - a blocking query that the agent gate ends early, to give its place to a
 *   plain read (agent-gate.ts), is queued again with the same index: no failure,
 *   no back-off, no log;
 * - every answer is validated entry by entry (validate.ts): bad entries are
 *   dropped with a warning (once per entry while it stays bad), a body that is
 *   not a list is one failed round, never the end of the watch;
 * - an empty answer before any instance was seen, with no ACL token set, is
 *   what default-deny ACLs answer to an anonymous read: a warning says so once,
 *   and the hint goes with the watch's answers (NoEndpointsError names it).
 */
import { InvalidArgumentError, RegistryError } from '../errors.ts';
import { agentGate, type AgentGate } from './agent-gate.ts';
import type { ConsulHttp, ConsulResponse } from './consul-http.ts';
import { header } from './consul-http.ts';
import { describeValue } from '../internal/describe.ts';
import { MAX_TAGS, validateEndpoint, type ValidateOptions } from './validate.ts';
import type { NormalizedQuery, WatchSink, WatchSource } from './watch-hub.ts';
import type { Endpoint, Logger } from './types.ts';

export interface ConsulWatchOptions extends ValidateOptions {
  /** Blocking wait per query. Default 60 000 ms (Consul caps it at 10 min). */
  readonly waitMs?: number;
  /** Minimum time between the starts of two queries (at most 5 queries/s per watch). Default 200 ms. */
  readonly minIntervalMs?: number;
  /** The interval that blocking queries coming back early with nothing changed slow the watch to. Default 1 000 ms. */
  readonly idleIntervalMs?: number;
  /** First back-off step after an error. Default 250 ms. */
  readonly backoffBaseMs?: number;
  /** Back-off cap after network errors and 5xx: the pace at which a down agent is asked. Default 1 000 ms. */
  readonly backoffMaxMs?: number;
  /** The pause after a 4xx (ACL refusal, bad request): pause/2 to pause. Default 30 000 ms. */
  readonly refusedPauseMs?: number;
  /** Read from any server (`?stale`), not only the leader. Default false. */
  readonly stale?: boolean;
  /** Use the agent cache (`?cached`; background-refreshed, blocking supported). Default false. */
  readonly cached?: boolean;
  /**
   * Watch queries in flight at once per agent, for every registry of the process
   * that talks to it (agent-gate.ts): well below the agent's
   * `limits.http_max_conns_per_client` (200 by default), which closes the
   * connections above it. The rest wait in a fair queue, plain reads first;
   * blocking queries hold at most `maxBlockingQueries - 1` places, so that a
   * watch's first read never waits out a blocking query. Default 64.
   */
  readonly maxBlockingQueries?: number;
  /**
   * The blocking wait while more watches share an agent than there are places
   * for blocking queries, so that the places rotate through every watch. Default 5 000 ms.
   */
  readonly contendedWaitMs?: number;
  /** Jitter source in [0, 1) for the back-off (tests). Default Math.random. */
  readonly random?: () => number;
}

export const CONSUL_WATCH_DEFAULTS = {
  waitMs: 60_000, // Consul's default is 5 min; 1 min keeps idle connections honest behind NATs
  minIntervalMs: 200, // at most 5 queries/s per watch while the data keeps changing
  idleIntervalMs: 1_000, // at most 1 query/s while blocking queries come back early with nothing changed
  backoffBaseMs: 250, // first retry after an error within 200-300 ms
  backoffMaxMs: 1_000, // a down agent is asked about once a second, and found again within about a second
  refusedPauseMs: 30_000, // node-consul's back-off cap: a 4xx waits 15-30 s
  timeoutMarginMs: 5_000, // on top of wait + wait/16
  maxBlockingQueries: 64, // per agent; a third of the agent's default http_max_conns_per_client (200)
  contendedWaitMs: 5_000, // blocking wait while more watches than places share an agent
} as const;

interface HealthEntry {
  Node?: { Node?: unknown; Address?: unknown; Datacenter?: unknown };
  Service?: { ID?: unknown; Address?: unknown; Port?: unknown; Tags?: unknown; Meta?: unknown; Weights?: { Passing?: unknown } };
}

/**
 * Checks the watch options, naming the field and the value: `waitMs` 1 s to
 * 10 min (Consul's range), `minIntervalMs` >= 0, `idleIntervalMs` >= `minIntervalMs`,
 * `backoffBaseMs` > 0, `backoffMaxMs` >= `backoffBaseMs`, `refusedPauseMs` > 0,
 * `maxBlockingQueries` an integer 1-10000,
 * `contendedWaitMs` 1 s to 10 min. Throws InvalidArgumentError. `where` names
 * the options in the message (`createMesh({ consulWatch })` passes `consulWatch`).
 */
export function validateWatchOptions(options: ConsulWatchOptions, where = 'Consul watch options'): void {
  if (typeof options !== 'object' || (options as unknown) === null) {
    throw new InvalidArgumentError(`invalid ${where}: must be an object, got ${describeValue(options)}`);
  }
  const problems: string[] = [];
  const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  const { waitMs, minIntervalMs, idleIntervalMs, backoffBaseMs, backoffMaxMs, refusedPauseMs, maxBlockingQueries, contendedWaitMs, random } = options;
  if (waitMs !== undefined && !(num(waitMs) && waitMs >= 1_000 && waitMs <= 600_000))
    problems.push(`waitMs must be from 1000 to 600000 ms (1 s to 10 min, Consul's range), got ${String(waitMs)}`);
  if (minIntervalMs !== undefined && !(num(minIntervalMs) && minIntervalMs >= 0))
    problems.push(`minIntervalMs must be a number of ms >= 0, got ${String(minIntervalMs)}`);
  const min = num(minIntervalMs) ? minIntervalMs : CONSUL_WATCH_DEFAULTS.minIntervalMs;
  if (idleIntervalMs !== undefined && !(num(idleIntervalMs) && idleIntervalMs >= min))
    problems.push(`idleIntervalMs must be a number of ms >= minIntervalMs (${min}), got ${String(idleIntervalMs)}`);
  if (backoffBaseMs !== undefined && !(num(backoffBaseMs) && backoffBaseMs > 0))
    problems.push(`backoffBaseMs must be a number of ms > 0, got ${String(backoffBaseMs)}`);
  const base = num(backoffBaseMs) ? backoffBaseMs : CONSUL_WATCH_DEFAULTS.backoffBaseMs;
  if (backoffMaxMs !== undefined && !(num(backoffMaxMs) && backoffMaxMs >= base))
    problems.push(`backoffMaxMs must be a number of ms >= backoffBaseMs (${base}), got ${String(backoffMaxMs)}`);
  if (refusedPauseMs !== undefined && !(num(refusedPauseMs) && refusedPauseMs > 0))
    problems.push(`refusedPauseMs must be a number of ms > 0, got ${String(refusedPauseMs)}`);
  if (maxBlockingQueries !== undefined && !(Number.isInteger(maxBlockingQueries) && maxBlockingQueries >= 1 && maxBlockingQueries <= 10_000))
    problems.push(`maxBlockingQueries must be an integer from 1 to 10000, got ${String(maxBlockingQueries)}`);
  if (contendedWaitMs !== undefined && !(num(contendedWaitMs) && contendedWaitMs >= 1_000 && contendedWaitMs <= 600_000))
    problems.push(`contendedWaitMs must be from 1000 to 600000 ms, got ${String(contendedWaitMs)}`);
  if (random !== undefined && typeof random !== 'function') problems.push(`random must be a function, got ${typeof random}`);
  if (problems.length > 0) throw new InvalidArgumentError(`invalid ${where}: ${problems.join('; ')}`);
}

/** The client timeout of a query: above `wait` plus Consul's jitter (wait/16), plus a margin; a plain read gets 10 s + the margin. */
export function queryTimeoutMs(blocking: boolean, waitMs: number): number {
  return (blocking ? waitMs + Math.ceil(waitMs / 16) : 10_000) + CONSUL_WATCH_DEFAULTS.timeoutMarginMs;
}

/**
 * The watch's pace, in one place: how long to wait before the next query.
 * - after an answer (`failures` 0): `interval - sinceLastStart`, where the
 *   interval is `minIntervalMs`, doubled per idle answer in a row (`idle`, a
 *   blocking query that came back early with nothing changed) up to
 *   `idleIntervalMs`; a query whose predecessor started longer ago than the
 *   interval goes at once;
 * - after the n-th failure in a row: `min(backoffMaxMs, base * 2^(n-1))`,
 *   jittered by ±20 % (`random` in [0, 1)), or about `refusedPauseMs` after a
 *   4xx (`refused`), never sooner than the interval above allows.
 */
export function paceMs(
  state: { readonly idle: number; readonly failures: number; readonly refused: boolean; readonly sinceLastStartMs: number },
  options: { readonly minIntervalMs: number; readonly idleIntervalMs: number; readonly backoffBaseMs: number; readonly backoffMaxMs: number; readonly refusedPauseMs: number; readonly random: () => number },
): number {
  const { minIntervalMs: min, idleIntervalMs: idleMax } = options;
  const interval = state.idle > 0 ? Math.min(idleMax, Math.max(min, idleMax / 16) * 2 ** Math.min(state.idle, 30)) : min;
  const paced = Math.max(0, interval - state.sinceLastStartMs);
  if (state.failures === 0) return paced;
  if (state.refused) return Math.max(paced, options.refusedPauseMs / 2 + (options.random() * options.refusedPauseMs) / 2);
  const ceiling = Math.min(options.backoffMaxMs, options.backoffBaseMs * 2 ** Math.min(state.failures - 1, 30));
  return Math.max(paced, ceiling * (0.8 + 0.4 * options.random()));
}

/** Go duration text for `wait`. */
function goDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

export class ConsulHealthWatch implements WatchSource {
  #sink: WatchSink | undefined;
  #stopped = false;
  #index = 0n;
  #failures = 0;
  /** Blocking queries in a row that came back early with nothing changed (paceMs). */
  #idle = 0;
  #lastStart = 0;
  #timer: NodeJS.Timeout | undefined;
  #abort: AbortController | undefined;
  #hadInstances = false;
  #warnedEmpty = false;
  #warnedNoToken = false;
  /** Entries dropped as invalid in the last answer: warned about once while they stay so. */
  #dropped = new Set<string>();
  /** Endpoint ids whose tags were cut to 64 in the last answer: warned about once while they stay so. */
  #tagsCut = new Set<string>();
  /** Requests sent so far (for tests and stats). */
  requests = 0;
  readonly #waitMs: number;
  readonly #pace: Parameters<typeof paceMs>[1];
  readonly #gate: AgentGate;
  readonly #maxQueries: number;
  readonly #contendedWaitMs: number;

  readonly #http: ConsulHttp;
  readonly #query: NormalizedQuery;
  readonly #options: ConsulWatchOptions;
  readonly #logger: Logger;
  readonly #preflight: () => Promise<void>;
  readonly #onStop: (watch: ConsulHealthWatch) => void;

  constructor(
    http: ConsulHttp,
    query: NormalizedQuery,
    options: ConsulWatchOptions,
    logger: Logger,
    /** Runs before the first query of every round until it succeeds once (namespace check). */
    preflight: () => Promise<void>,
    onStop: (watch: ConsulHealthWatch) => void = () => undefined,
  ) {
    this.#http = http;
    this.#query = query;
    this.#options = options;
    this.#logger = logger;
    this.#preflight = preflight;
    this.#onStop = onStop;
    this.#waitMs = options.waitMs ?? CONSUL_WATCH_DEFAULTS.waitMs;
    this.#pace = {
      minIntervalMs: options.minIntervalMs ?? CONSUL_WATCH_DEFAULTS.minIntervalMs,
      idleIntervalMs: options.idleIntervalMs ?? Math.max(CONSUL_WATCH_DEFAULTS.idleIntervalMs, options.minIntervalMs ?? 0),
      backoffBaseMs: options.backoffBaseMs ?? CONSUL_WATCH_DEFAULTS.backoffBaseMs,
      backoffMaxMs: options.backoffMaxMs ?? Math.max(CONSUL_WATCH_DEFAULTS.backoffMaxMs, options.backoffBaseMs ?? 0),
      refusedPauseMs: options.refusedPauseMs ?? CONSUL_WATCH_DEFAULTS.refusedPauseMs,
      random: options.random ?? Math.random,
    };
    this.#maxQueries = options.maxBlockingQueries ?? CONSUL_WATCH_DEFAULTS.maxBlockingQueries;
    this.#contendedWaitMs = Math.min(this.#waitMs, options.contendedWaitMs ?? CONSUL_WATCH_DEFAULTS.contendedWaitMs);
    this.#gate = agentGate(`${http.secure ? 'https' : 'http'}://${http.address}`);
  }

  start(sink: WatchSink): void {
    this.#sink = sink;
    this.#gate.join(this, this.#maxQueries);
    this.#schedule();
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#onStop(this);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort?.abort();
    this.#gate.leave(this);
  }

  /** A method, not the field, so that TypeScript does not narrow it across awaits. */
  #isStopped(): boolean {
    return this.#stopped;
  }

  /** Schedules the next round after the pause paceMs gives (`refused`: the last failure was a 4xx). */
  #schedule(refused = false): number {
    if (this.#stopped) return 0;
    const delay = paceMs({ idle: this.#idle, failures: this.#failures, refused, sinceLastStartMs: Date.now() - this.#lastStart }, this.#pace);
    // Never two loops: a round that failed after scheduling replaces its timer.
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#round().catch((err: unknown) => {
        this.#crashed(err);
      });
    }, delay);
    return delay;
  }

  /**
   * Last line of defence: something in a round threw outside the request (a
   * listener path, a logger). The loop goes on after a back-off; the error is
   * reported once through the (safe) logger, never rethrown.
   */
  #crashed(err: unknown): void {
    if (this.#stopped) return;
    try {
      this.#failed(err instanceof Error ? err : new RegistryError(String(err)));
    } catch {
      this.#failures++;
    }
    if (this.#timer === undefined) this.#schedule();
  }

  async #round(): Promise<void> {
    if (this.#stopped) return;
    const abort = new AbortController();
    this.#abort = abort;
    let res: ConsulResponse;
    let release: (() => void) | undefined;
    // An object, so that TypeScript does not narrow the flag that the gate's callback sets.
    const turn = { preempted: false };
    let sent = 0n;
    try {
      await this.#preflight();
      if (this.#isStopped()) return;
      const blocking = this.#index > 0n;
      sent = blocking ? this.#index : 0n;
      // A place among the agent's watch queries (agent-gate.ts); undefined once stopped.
      // A blocking query the gate ends early for a plain read keeps its index: not a failure.
      release = await this.#gate.acquire(blocking ? 'block' : 'read', abort.signal, () => {
        turn.preempted = true;
        abort.abort();
      });
      if (release === undefined || this.#isStopped()) return;
      this.#lastStart = Date.now();
      const query: Record<string, string | readonly string[]> = {};
      if (this.#query.passingOnly) query.passing = '1';
      if (this.#query.tags.length > 0) query.tag = this.#query.tags;
      const dc = this.#query.datacenter ?? this.#http.datacenter;
      if (dc) query.dc = dc;
      if (this.#options.stale) query.stale = '';
      if (this.#options.cached) query.cached = '';
      // While more watches share the agent than it has places, a short wait lets the places rotate.
      const waitMs = this.#gate.contended ? this.#contendedWaitMs : this.#waitMs;
      if (blocking) {
        query.index = this.#index.toString();
        query.wait = goDuration(waitMs);
      }
      this.requests++;
      res = await this.#http.request({
        method: 'GET',
        path: '/health/service/{service}',
        params: { service: this.#query.service },
        query,
        timeoutMs: queryTimeoutMs(blocking, waitMs),
        signal: abort.signal,
      });
    } catch (err) {
      if (this.#isStopped()) return;
      if (turn.preempted) {
        // The gate took the place back for a plain read: queue again with the same index.
        this.#schedule();
        return;
      }
      this.#failed(err instanceof Error ? err : new RegistryError(String(err)));
      return;
    } finally {
      release?.();
      if (this.#abort === abort) this.#abort = undefined;
    }
    if (this.#isStopped()) return;

    const body = res.body;
    if (!Array.isArray(body)) {
      this.#failed(new RegistryError(`consul answered a non-list body for service ${this.#query.service}: ${describeValue(body)}`));
      return;
    }
    this.#advanceIndex(header(res, 'x-consul-index'), sent, Date.now() - this.#lastStart);
    const endpoints = this.#toEndpoints(body as HealthEntry[]);
    this.#failures = 0;
    const hint = this.#checkEmpty(endpoints.length, body.length);
    this.#sink?.update(endpoints, hint);
    this.#schedule();
  }

  /**
   * Takes the answer's index. `sent` is the index the query blocked on (0 for a
   * plain read): a blocking query that came back before half its wait without a
   * newer index did not block (idle, paceMs); one with a newer index, or after
   * its wait, blocked normally.
   */
  #advanceIndex(text: string | undefined, sent: bigint, elapsedMs: number): void {
    let next = 0n;
    if (text !== undefined && /^\d{1,20}$/.test(text)) next = BigInt(text);
    if (sent > 0n) {
      const early = elapsedMs < this.#waitMs / 2;
      this.#idle = next <= sent && early ? this.#idle + 1 : 0;
    }
    if (next < this.#index) {
      // Went backwards (restart, restore): start over with a plain read. Logged once per idle streak.
      if (this.#idle <= 1) this.#logger.info('consul index went backwards, resetting the watch', { service: this.#query.service });
      this.#index = 0n;
      return;
    }
    this.#index = next > 0n ? next : 1n;
  }

  #toEndpoints(entries: HealthEntry[]): Endpoint[] {
    const out: Endpoint[] = [];
    const seen = new Set<string>();
    const tagsCut = new Set<string>();
    const dropped = new Set<string>();
    // Warns about a dropped entry once while it stays dropped (for the same reason).
    const drop = (key: string, message: string, fields: Record<string, unknown>): void => {
      dropped.add(key);
      if (!this.#dropped.has(key)) this.#logger.warn(message, fields);
    };
    for (const entry of entries) {
      const svc = (entry as HealthEntry | null)?.Service;
      const node = (entry as HealthEntry | null)?.Node;
      if (!svc || typeof svc !== 'object') {
        drop('\0no-service', 'dropped a Consul health entry without a Service', { service: this.#query.service });
        continue;
      }
      // An empty Service.Address means "use the node's address".
      const address = svc.Address === '' || svc.Address === undefined ? node?.Address : svc.Address;
      // Service IDs are unique per agent only: two nodes may both run an instance "web".
      // The endpoint id is `<node>/<service id>`, unique in the datacenter.
      const result = validateEndpoint(
        {
          id: typeof svc.ID === 'string' && svc.ID !== '' ? `${typeof node?.Node === 'string' ? node.Node : ''}/${svc.ID}` : svc.ID,
          address,
          port: svc.Port,
          tags: svc.Tags,
          meta: svc.Meta,
          weight: svc.Weights?.Passing,
          datacenter: node?.Datacenter,
        },
        this.#options,
      );
      if (!result.ok) {
        const id = describeValue(svc.ID);
        drop(`${describeValue(node?.Node)}/${id}\0${result.reason}`, `dropped a Consul endpoint of ${this.#query.service}: ${result.reason}`, {
          service: this.#query.service,
          id,
        });
        continue;
      }
      const e = result.endpoint;
      if (result.tagsCut !== undefined) {
        tagsCut.add(e.id);
        if (!this.#tagsCut.has(e.id)) {
          this.#logger.warn(
            `kept the first ${MAX_TAGS} of ${MAX_TAGS + result.tagsCut} tags of a Consul endpoint of ${this.#query.service} (inmesh reads at most ${MAX_TAGS} tags per instance)`,
            { service: this.#query.service, id: e.id },
          );
        }
      }
      // Against every tag the entry has (Consul filtered on them), not only the kept ones.
      const allTags: readonly unknown[] = Array.isArray(svc.Tags) ? svc.Tags : e.tags;
      if (!this.#query.tags.every((t) => allTags.includes(t))) continue;
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      out.push(e);
    }
    this.#tagsCut = tagsCut;
    this.#dropped = dropped;
    return out;
  }

  /** Warns about suspicious empty answers; returns the hint for an empty set (NoEndpointsError), if any. */
  #checkEmpty(valid: number, total: number): string | undefined {
    if (valid > 0) {
      this.#hadInstances = true;
      this.#warnedEmpty = false;
      return undefined;
    }
    if (!this.#hadInstances && total === 0 && !this.#http.hasToken) {
      const hint = `consul answered no instances of ${this.#query.service} and no ACL token is set: under default-deny ACLs an anonymous read sees none (set CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE)`;
      if (!this.#warnedNoToken) {
        this.#warnedNoToken = true;
        this.#logger.warn(hint, { service: this.#query.service });
      }
      return hint;
    }
    if (this.#hadInstances && !this.#warnedEmpty && total === 0) {
      this.#warnedEmpty = true;
      this.#logger.warn(
        `consul reports no ${this.#query.passingOnly ? 'passing ' : ''}instances of ${this.#query.service}, which had instances before` +
          (this.#http.hasToken
            ? ' (under default-deny ACLs a token that lost service:read looks exactly like "no instances": check the token\'s policy)'
            : ' (under default-deny ACLs a missing token looks exactly like "no instances": check CONSUL_HTTP_TOKEN / CONSUL_HTTP_TOKEN_FILE)'),
        { service: this.#query.service },
      );
    }
    return undefined;
  }

  #failed(error: Error): void {
    this.#failures++;
    // The agent may have restarted with a lower index: a blocking read with the old,
    // higher index would then hang for the whole wait. Start over with a plain read.
    this.#index = 0n;
    const status = error instanceof RegistryError ? error.statusCode : undefined;
    const clientError = status !== undefined && status >= 400 && status < 500 && status !== 429;
    const delay = this.#schedule(clientError);
    // A watch that cannot reach Consul keeps its last good set; log the first failure loudly, the rest quietly.
    const fields = { service: this.#query.service, status, failures: this.#failures, retryInMs: Math.round(delay) };
    if (this.#failures === 1 || clientError) this.#logger.warn(`consul watch failed: ${error.message}`, fields);
    else this.#logger.debug(`consul watch failed: ${error.message}`, fields);
    this.#sink?.fail(error);
  }
}
