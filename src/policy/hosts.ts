/**
 * Upstream lookup by host name: a declared upstream, a Consul DNS host
 * (`[tag.]service.service[.datacenter].consul`) that narrows a declared one,
 * or the document's defaults applied to an undeclared name.
 */
import { deepFreeze } from '../internal/deep-freeze.ts';
import type { ResolvedPolicy, ResolvedUpstream } from './types.ts';

/** `[tag.]service.service[.datacenter].consul`, Consul's DNS form. */
const CONSUL_HOST = /^(?:([^.]+)\.)?([^.]+)\.service(?:\.([^.]+))?\.consul\.?$/i;

export interface ConsulHost {
  service: string;
  tag: string | undefined;
  datacenter: string | undefined;
}

/** Parses a Consul DNS host name (`orders.service.consul`, `v2.orders.service.dc1.consul`). */
export function parseConsulHost(host: string): ConsulHost | undefined {
  const match = CONSUL_HOST.exec(host);
  if (match === null) return undefined;
  return { tag: match[1], service: match[2] ?? '', datacenter: match[3] };
}

const MAX_CACHED = 1024;
const derivedCache = new WeakMap<ResolvedPolicy, Map<string, Readonly<ResolvedUpstream>>>();

function cached(policy: ResolvedPolicy, key: string, build: () => ResolvedUpstream): Readonly<ResolvedUpstream> {
  let cache = derivedCache.get(policy);
  if (cache === undefined) {
    cache = new Map();
    derivedCache.set(policy, cache);
  }
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  const built = deepFreeze(build());
  if (cache.size < MAX_CACHED) cache.set(key, built);
  return built;
}

function withHost(upstream: Readonly<ResolvedUpstream>, name: string, host: ConsulHost): ResolvedUpstream {
  return {
    ...upstream,
    name,
    discovery: {
      ...upstream.discovery,
      service: upstream.discovery.service ?? host.service,
      datacenter: host.datacenter ?? upstream.discovery.datacenter,
      tags: host.tag === undefined ? upstream.discovery.tags : [...new Set([...upstream.discovery.tags, host.tag])],
    },
  };
}

/**
 * The declared upstream for a name used as a host, else undefined. A Consul
 * DNS host (`orders.service.consul`) finds the upstream declared as `orders`;
 * a tag or datacenter in the host narrows its discovery.
 */
export function upstreamFor(policy: ResolvedPolicy, name: string): Readonly<ResolvedUpstream> | undefined {
  if (Object.hasOwn(policy.upstreams, name)) return policy.upstreams[name];
  const host = parseConsulHost(name);
  if (host === undefined || !Object.hasOwn(policy.upstreams, host.service)) return undefined;
  const declared = policy.upstreams[host.service];
  if (declared === undefined) return undefined;
  if (host.tag === undefined && host.datacenter === undefined) return declared;
  return cached(policy, name, () => withHost(declared, name, host));
}

/**
 * The document's defaults applied to an undeclared name. A Consul DNS host
 * (`v2.orders.service.dc1.consul`) sets discovery service, tag and datacenter.
 * Cached per policy, so calling it per request is cheap.
 */
export function defaultUpstream(policy: ResolvedPolicy, name: string): Readonly<ResolvedUpstream> {
  return cached(policy, `\u0000default:${name}`, () => {
    const host = parseConsulHost(name);
    const base: ResolvedUpstream = {
      name,
      ...policy.defaults,
      discovery: { ...policy.defaults.discovery, service: name },
      subsets: Object.create(null) as ResolvedUpstream['subsets'],
      routes: [],
    };
    return host === undefined ? base : withHost({ ...base, discovery: { ...base.discovery, service: undefined } }, name, host);
  });
}

/** upstreamFor(), else defaultUpstream(). */
export function upstreamOrDefault(policy: ResolvedPolicy, name: string): Readonly<ResolvedUpstream> {
  return upstreamFor(policy, name) ?? defaultUpstream(policy, name);
}
