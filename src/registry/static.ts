/**
 * The static registry: fixed endpoint lists from code or from the environment.
 *
 * - code: `new StaticRegistry({ services: { orders: ['127.0.0.1:8080', { address, port, tags }] } })`
 * - env: `INMESH_ENDPOINTS_<SERVICE>=host:port,host:port` where `<SERVICE>` is the
 *   service name upper-cased with `-` and `.` turned into `_`
 *   (`payment-api` → `INMESH_ENDPOINTS_PAYMENT_API`). Code wins over env.
 *
 * Everything is parsed and validated in the constructor: a bad entry throws one
 * InvalidPolicyError (code INMESH_ERR_INVALID_CONFIG) that names the variable (or
 * `services.<name>[i]`) and the entry, for every problem at once.
 */
import { ErrorCodes, InvalidPolicyError, type PolicyIssue } from '../errors.ts';
import { endpointsVariable } from '../policy/validate.ts';
import { parseEntries, type EndpointEntry } from './entries.ts';
import { consoleLogger, safeLogger } from './logger.ts';
import { SnapshotFeed } from './snapshot-feed.ts';
import type { ValidateOptions } from './validate.ts';
import { WatchHub, type RegistrySubscription, type SubscribeOptions } from './watch-hub.ts';
import type { Endpoint, EndpointsListener, Logger, Registry, ResolveQuery } from './types.ts';

export const ENV_PREFIX = 'INMESH_ENDPOINTS_';

export interface StaticRegistryOptions extends ValidateOptions {
  /** Endpoint lists by service name. */
  readonly services?: Readonly<Record<string, readonly EndpointEntry[]>>;
  /** Where `INMESH_ENDPOINTS_*` are read from; `false` reads none. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>> | false;
  readonly logger?: Logger;
}

/** `payment-api` → `INMESH_ENDPOINTS_PAYMENT_API`. */
export function envVariableFor(service: string): string {
  // One rule with the policy validator, which accepts `registry: static` without
  // `endpoints` when this variable is set.
  return endpointsVariable(service);
}

export class StaticRegistry implements Registry {
  readonly kind = 'static' as const;
  readonly allowLinkLocal: boolean;
  readonly #byService = new Map<string, readonly Endpoint[]>();
  readonly #byEnvName = new Map<string, readonly Endpoint[]>();
  readonly #hub: WatchHub;

  constructor(options: StaticRegistryOptions = {}) {
    this.allowLinkLocal = options.allowLinkLocal === true;
    const issues: PolicyIssue[] = [];
    for (const [service, list] of Object.entries(options.services ?? {})) {
      this.#byService.set(service, Object.freeze(parseEntries(list, `services.${service}`, issues, options)));
    }
    const env = options.env === false ? {} : (options.env ?? process.env);
    for (const [name, value] of Object.entries(env)) {
      if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
      const entries = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
      this.#byEnvName.set(name, Object.freeze(parseEntries(entries, name, issues, options)));
    }
    if (issues.length > 0) throw new InvalidPolicyError('static endpoints', issues, ErrorCodes.INVALID_CONFIG);
    const feed = new SnapshotFeed((q) => this.#lookup(q.service) ?? []);
    this.#hub = new WatchHub('static', (q) => feed.source(q), safeLogger(options.logger ?? consoleLogger));
  }

  /** Whether endpoints are configured for `service` (in code or env). */
  has(service: string): boolean {
    return this.#lookup(service) !== undefined;
  }

  #lookup(service: string): readonly Endpoint[] | undefined {
    return this.#byService.get(service) ?? this.#byEnvName.get(envVariableFor(service));
  }

  subscribe(query: ResolveQuery, listener: EndpointsListener, options?: SubscribeOptions): RegistrySubscription {
    return this.#hub.subscribe(query, listener, options);
  }

  resolve(query: ResolveQuery): Promise<readonly Endpoint[]> {
    return this.#hub.resolve(query);
  }

  close(): Promise<void> {
    this.#hub.close();
    return Promise.resolve();
  }
}
