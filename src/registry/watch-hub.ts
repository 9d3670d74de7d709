/**
 * One shared watch per query, however many subscribers: the part every registry
 * has in common. A registry supplies a `WatchSource` per query (a Consul blocking
 * query loop, a view into a file, a fixed list); the hub keeps the last good set,
 * its age, the first-answer promise, and calls listeners only on an actual change
 * (canonical comparison). Listeners run inside try/catch: a throwing listener is
 * logged and cannot break the watch or the other listeners.
 */
import { channel } from 'node:diagnostics_channel';
import { ClosedError, RegistryError } from '../errors.ts';
import { canonicalEndpoints } from './validate.ts';
import type { Endpoint, EndpointsListener, Logger, Registry, ResolveQuery, SubscribeOptions, Subscription } from './types.ts';

/** `inmesh:registry:update` carries `{ registry, service, count }` on every emitted change. */
const updateChannel = channel('inmesh:registry:update');

/** A query with every default applied; the hub's key is built from it. */
export interface NormalizedQuery {
  readonly service: string;
  readonly datacenter: string | undefined;
  /** Sorted, without duplicates. */
  readonly tags: readonly string[];
  readonly passingOnly: boolean;
}

export interface WatchSink {
  /**
   * A successful answer (already validated). `emptyHint`: with an empty set, the
   * likely reason the registry sees no instance (e.g. no ACL token), if it knows one.
   */
  update(endpoints: readonly Endpoint[], emptyHint?: string): void;
  /** A failed attempt: the last good set stays. */
  fail(error: Error): void;
}

export interface WatchSource {
  start(sink: WatchSink): void;
  stop(): void;
}

export type { SubscribeOptions };

/** A Subscription with the watch's last error. */
export interface RegistrySubscription extends Subscription {
  /** The last failure of the shared watch, undefined after a successful answer. */
  lastError(): Error | undefined;
  /** With an empty set: the likely reason the registry sees no instance (e.g. no ACL token), if it knows one. */
  emptyHint(): string | undefined;
}

interface Subscriber {
  listener: EndpointsListener;
  onError: ((error: Error) => void) | undefined;
}

export function normalizeQuery(query: ResolveQuery): NormalizedQuery {
  if (typeof query.service !== 'string' || query.service.length === 0) {
    throw new RegistryError('a registry query needs a service name');
  }
  return {
    service: query.service,
    datacenter: query.datacenter === '' ? undefined : query.datacenter,
    tags: [...new Set(query.tags ?? [])].sort(),
    passingOnly: query.passingOnly ?? true,
  };
}

export function queryKey(q: NormalizedQuery): string {
  return JSON.stringify([q.service, q.datacenter ?? '', q.tags, q.passingOnly]);
}

class SharedWatch implements WatchSink {
  endpoints: readonly Endpoint[] = Object.freeze([]);
  #canonical = '';
  #answered = false;
  #healthy = false;
  #lastOkAt: number | undefined;
  error: Error | undefined;
  emptyHint: string | undefined;
  readonly subscribers = new Set<Subscriber>();
  #settle!: () => void;
  readonly ready: Promise<void>;
  #stopped = false;

  readonly #source: WatchSource;
  readonly #kind: string;
  readonly #logger: Logger;
  readonly query: NormalizedQuery;

  constructor(query: NormalizedQuery, source: WatchSource, kind: string, logger: Logger) {
    this.query = query;
    this.#source = source;
    this.#kind = kind;
    this.#logger = logger;
    this.ready = new Promise((resolve) => (this.#settle = resolve));
  }

  start(): void {
    this.#source.start(this);
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#source.stop();
    this.#settle();
  }

  get hasAnswered(): boolean {
    return this.#answered;
  }

  get everSucceeded(): boolean {
    return this.#lastOkAt !== undefined;
  }

  staleness(): number {
    if (this.#lastOkAt === undefined) return Number.POSITIVE_INFINITY;
    return this.#healthy ? 0 : Date.now() - this.#lastOkAt;
  }

  update(endpoints: readonly Endpoint[], emptyHint?: string): void {
    if (this.#stopped) return;
    this.emptyHint = endpoints.length === 0 ? emptyHint : undefined;
    this.#lastOkAt = Date.now();
    this.#healthy = true;
    this.error = undefined;
    const canonical = canonicalEndpoints(endpoints);
    const first = !this.#answered;
    this.#answered = true;
    this.#settle();
    if (!first && canonical === this.#canonical) return;
    this.#canonical = canonical;
    this.endpoints = Object.freeze([...endpoints]);
    if (updateChannel.hasSubscribers) {
      updateChannel.publish({ registry: this.#kind, service: this.query.service, count: endpoints.length });
    }
    for (const s of [...this.subscribers]) this.call(s, this.endpoints);
  }

  fail(error: Error): void {
    if (this.#stopped) return;
    this.#healthy = false;
    this.error = error;
    this.#answered = true;
    this.#settle();
    for (const s of [...this.subscribers]) {
      if (!s.onError) continue;
      try {
        s.onError(error);
      } catch (err) {
        this.#logger.error('registry error listener threw', { service: this.query.service, error: String(err) });
      }
    }
  }

  call(s: Subscriber, endpoints: readonly Endpoint[]): void {
    try {
      s.listener(endpoints);
    } catch (err) {
      this.#logger.error('registry listener threw', { service: this.query.service, error: String(err) });
    }
  }
}

/** The shared-watch bookkeeping behind every Registry implementation. */
export class WatchHub {
  readonly #watches = new Map<string, SharedWatch>();
  readonly #kind: Registry['kind'];
  readonly #createSource: (query: NormalizedQuery) => WatchSource;
  readonly #logger: Logger;
  #closed = false;

  constructor(kind: Registry['kind'], createSource: (query: NormalizedQuery) => WatchSource, logger: Logger) {
    this.#kind = kind;
    this.#createSource = createSource;
    this.#logger = logger;
  }

  /** Number of watches running now (one per distinct query). */
  get watchCount(): number {
    return this.#watches.size;
  }

  /** Every running watch (for registries that push to all of them, e.g. a reloaded file). */
  queries(): NormalizedQuery[] {
    return [...this.#watches.values()].map((w) => w.query);
  }

  subscribe(query: ResolveQuery, listener: EndpointsListener, options: SubscribeOptions = {}): RegistrySubscription {
    if (this.#closed) throw new ClosedError(`${this.#kind} registry`);
    if (typeof listener !== 'function') throw new RegistryError('subscribe needs a listener function');
    const q = normalizeQuery(query);
    const key = queryKey(q);
    let watch = this.#watches.get(key);
    const isNew = watch === undefined;
    if (!watch) {
      watch = new SharedWatch(q, this.#createSource(q), this.#kind, this.#logger);
      this.#watches.set(key, watch);
    }
    const w = watch;
    const sub: Subscriber = { listener, onError: options.onError };
    w.subscribers.add(sub);
    if (isNew) {
      w.start();
    } else if (w.hasAnswered && w.everSucceeded) {
      queueMicrotask(() => {
        if (w.subscribers.has(sub)) w.call(sub, w.endpoints);
      });
    }
    let open = true;
    return {
      get endpoints() {
        return w.endpoints;
      },
      staleness: () => w.staleness(),
      ready: () => w.ready,
      lastError: () => w.error,
      emptyHint: () => w.emptyHint,
      close: () => {
        if (!open) return;
        open = false;
        w.subscribers.delete(sub);
        if (w.subscribers.size === 0 && this.#watches.get(key) === w) {
          this.#watches.delete(key);
          w.stop();
        }
      },
    };
  }

  async resolve(query: ResolveQuery): Promise<readonly Endpoint[]> {
    const sub = this.subscribe(query, () => undefined);
    try {
      await sub.ready();
      const error = sub.lastError();
      if (error && sub.staleness() === Number.POSITIVE_INFINITY) throw error;
      return sub.endpoints;
    } finally {
      sub.close();
    }
  }

  close(): void {
    this.#closed = true;
    for (const w of this.#watches.values()) w.stop();
    this.#watches.clear();
  }
}
