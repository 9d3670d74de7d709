/**
 * Consul discovery: healthy instances from the agent's `/v1/health/service/:name`,
 * kept current by one blocking-query watch per query (consul-watch.ts), shared
 * by every subscriber (watch-hub.ts).
 *
 * While Consul is unreachable the last known good set is served and
 * `staleness()` grows; a watch never dies on a bad answer. The ACL token goes in
 * the `X-Consul-Token` header only (consul-http.ts).
 */
import { ConsulHttp, type ConsulConnectionOptions } from './consul-http.ts';
import { ConsulHealthWatch, validateWatchOptions, type ConsulWatchOptions } from './consul-watch.ts';
import { createPreflight } from './consul-preflight.ts';
import { consoleLogger, safeLogger } from './logger.ts';
import { WatchHub, type RegistrySubscription, type SubscribeOptions } from './watch-hub.ts';
import type { Endpoint, EndpointsListener, Logger, Registry, ResolveQuery } from './types.ts';

export interface ConsulRegistryOptions extends ConsulWatchOptions {
  /** How to reach the agent (the ConsulConnection shape from the config module). Default: 127.0.0.1:8500, plain HTTP, no token. */
  readonly connection?: ConsulConnectionOptions;
  /** Where warnings go (dropped entries, failures). Default: console, warnings and errors only. */
  readonly logger?: Logger;
}

export interface ConsulRegistryStats {
  /** Watches running now: one per distinct query. */
  watches: number;
  /** HTTP requests the watches have sent so far (closed watches included). */
  requests: number;
}

export class ConsulRegistry implements Registry {
  readonly kind = 'consul' as const;
  readonly allowLinkLocal: boolean;
  readonly #http: ConsulHttp;
  readonly #hub: WatchHub;
  readonly #logger: Logger;
  readonly #live = new Set<ConsulHealthWatch>();
  #finishedRequests = 0;
  readonly #preflight: () => Promise<void>;

  constructor(options: ConsulRegistryOptions = {}) {
    validateWatchOptions(options);
    this.allowLinkLocal = options.allowLinkLocal === true;
    this.#logger = safeLogger(options.logger ?? consoleLogger);
    this.#http = new ConsulHttp(options.connection);
    this.#preflight = createPreflight(this.#http, this.#logger);
    this.#hub = new WatchHub(
      'consul',
      (query) => {
        const watch = new ConsulHealthWatch(this.#http, query, options, this.#logger, () => this.preflight(), (w) => {
          if (this.#live.delete(w)) this.#finishedRequests += w.requests;
        });
        this.#live.add(watch);
        return watch;
      },
      this.#logger,
    );
  }

  /**
   * Checks what the agent cannot honour, once: a namespace (CONSUL_NAMESPACE)
   * needs Consul Enterprise, an admin partition (CONSUL_PARTITION) Enterprise
   * 1.11+. Rejects with a RegistryError (statusCode 400) naming the variable and
   * the agent's version. A network failure is not cached (the next call tries
   * again). Watches run it first; the mesh runs it on start() and first use.
   */
  preflight(): Promise<void> {
    return this.#preflight();
  }

  subscribe(query: ResolveQuery, listener: EndpointsListener, options?: SubscribeOptions): RegistrySubscription {
    return this.#hub.subscribe(query, listener, options);
  }

  resolve(query: ResolveQuery): Promise<readonly Endpoint[]> {
    return this.#hub.resolve(query);
  }

  stats(): ConsulRegistryStats {
    let requests = this.#finishedRequests;
    for (const w of this.#live) requests += w.requests;
    return { watches: this.#hub.watchCount, requests };
  }

  /** What JSON.stringify shows: the agent and the watch count, never the token. */
  toJSON(): Record<string, unknown> {
    return { kind: this.kind, agent: this.#http.toJSON(), watches: this.#hub.watchCount };
  }

  close(): Promise<void> {
    this.#hub.close();
    this.#http.destroy();
    return Promise.resolve();
  }
}
