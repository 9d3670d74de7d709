/**
 * Which hosts are mesh services, and the one upstream runtime of each (nothing
 * else is touched):
 * 1. upstreams declared in the policy (`http://orders/...`), also under their
 *    Consul DNS form (`orders.service.consul`, `v2.orders.service.dc2.consul`);
 * 2. services with static endpoints (the `{ static }` registry option,
 *    `INMESH_ENDPOINTS_<SERVICE>`);
 * 3. any Consul DNS name (`<svc>.service[.<dc>].consul`, optionally `<tag>.` first):
 *    the policy's defaults apply, the datacenter/tag come from the name.
 * Every other host passes through.
 */
import type { UpstreamRuntime } from '../client/upstream.ts';
import { ClosedError, InvalidArgumentError } from '../errors.ts';
import { defaultUpstream, parseConsulHost, upstreamFor } from '../policy/index.ts';
import type { ResolvedPolicy, ResolvedUpstream } from '../policy/types.ts';

/** Host-name aliases remembered at most (a cache of the lookup: cleared when full). */
const HOST_CACHE_LIMIT = 4096;

export interface UpstreamHostsOptions {
  readonly policy: ResolvedPolicy;
  /** Whether a service has static endpoints (so its host is a mesh service). */
  readonly isStatic: (service: string) => boolean;
  /** The most upstreams at once. */
  readonly maxUpstreams: number;
  readonly createRuntime: (upstream: Readonly<ResolvedUpstream>) => UpstreamRuntime;
}

export class UpstreamHosts {
  readonly #options: UpstreamHostsOptions;
  readonly #hosts = new Map<string, UpstreamRuntime>();
  /** By upstream name: one runtime per upstream, even when its resolved policy object is built anew. */
  readonly #runtimes = new Map<string, UpstreamRuntime>();
  #closed = false;

  constructor(options: UpstreamHostsOptions) {
    this.#options = options;
  }

  /** Whether a host name is a mesh service. A pure lookup: it starts no upstream and never throws. */
  isMeshHost(hostname: string): boolean {
    return this.#hosts.has(hostname) || this.#upstreamOf(hostname) !== undefined;
  }

  /** The resolved upstream a host name stands for, or undefined when it is not a mesh service. */
  #upstreamOf(hostname: string): Readonly<ResolvedUpstream> | undefined {
    const host = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
    const { policy, isStatic } = this.#options;
    const upstream = upstreamFor(policy, host);
    if (upstream !== undefined) return upstream;
    if (isStatic(host) || parseConsulHost(host) !== undefined) return defaultUpstream(policy, host);
    return undefined;
  }

  /** The upstream runtime of a host name (started on first use), or undefined when it is not a mesh service. */
  runtimeFor(hostname: string): UpstreamRuntime | undefined {
    const hit = this.#hosts.get(hostname);
    if (hit !== undefined) return hit;
    const upstream = this.#upstreamOf(hostname);
    if (upstream === undefined) return undefined;
    if (this.#closed) throw new ClosedError();
    let rt = this.#runtimes.get(upstream.name);
    if (rt === undefined) {
      const max = this.#options.maxUpstreams;
      if (this.#runtimes.size >= max) {
        throw new InvalidArgumentError(
          `maxUpstreams: this mesh already runs ${this.#runtimes.size} upstreams (the limit), so "${upstream.name}" gets none; raise maxUpstreams if that many are meant`,
        );
      }
      rt = this.#options.createRuntime(upstream);
      this.#runtimes.set(upstream.name, rt);
    }
    // Aliases of one upstream (a trailing dot, tag or datacenter forms) must not grow the cache for good.
    if (this.#hosts.size >= HOST_CACHE_LIMIT) this.#hosts.clear();
    this.#hosts.set(hostname, rt);
    return rt;
  }

  /** The upstream runtimes started so far, by upstream name (read-only view; starts nothing). */
  started(): ReadonlyMap<string, UpstreamRuntime> {
    return this.#runtimes;
  }

  /** Stops every runtime; later lookups of a mesh host throw ClosedError. */
  async close(): Promise<void> {
    this.#closed = true;
    const runtimes = [...this.#runtimes.values()];
    this.#runtimes.clear();
    this.#hosts.clear();
    await Promise.all(runtimes.map((rt) => rt.close()));
  }
}
