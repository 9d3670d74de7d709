/**
 * resolvePolicy(): document → ResolvedPolicy. Layers, last wins, merged per
 * block field by field (arrays and `hashOn` replace as a whole):
 *
 *   built-in defaults (defaults.ts) ← document `defaults` ← `upstreams.<name>` ← route
 *
 * Durations become milliseconds, `discovery.service` defaults to the upstream's
 * key, and the result is deep-frozen and JSON-serialisable. Route matchers are
 * compiled once here, so matchRoute() on the request path allocates nothing.
 */
import { stringify } from 'yaml';
import { POLICY_DEFAULTS as D } from './defaults.ts';
import { formatDuration, parseDuration } from './duration.ts';
import type { PolicyDocument, RouteDocument, UpstreamPolicyDocument } from './schema.ts';
import type {
  ResolvedCallPolicy,
  ResolvedDiscovery,
  ResolvedHashOn,
  ResolvedHeaderMatch,
  ResolvedInbound,
  ResolvedLimits,
  ResolvedLoadBalancer,
  ResolvedPolicy,
  ResolvedRateLimit,
  ResolvedRetries,
  ResolvedRetryBudget,
  ResolvedRoute,
  ResolvedRouteMatch,
  ResolvedTimeouts,
  ResolvedUpstream,
  ResolvedUpstreamPolicy,
} from './types.ts';
import { parsePolicy, type ParsePolicyOptions } from './validate.ts';

type Layer = UpstreamPolicyDocument | RouteDocument;

/** The last defined value among the layers, else the fallback. */
function pick<L, T>(layers: readonly L[], get: (layer: L) => T | undefined, fallback: T): T {
  for (let i = layers.length - 1; i >= 0; i--) {
    const layer = layers[i];
    if (layer === undefined) continue;
    const value = get(layer);
    if (value !== undefined) return value;
  }
  return fallback;
}

function ms(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = parseDuration(text);
  // parsePolicy has run: an unparsable duration cannot reach this point.
  if (value === undefined) throw new TypeError(`unvalidated duration ${JSON.stringify(text)}`);
  return value;
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return value;
}

// ---------------------------------------------------------------- blocks

function resolveDiscovery(layers: readonly UpstreamPolicyDocument[], name: string | undefined): ResolvedDiscovery {
  return {
    registry: pick(layers, (l) => l.discovery?.registry, D.discovery.registry),
    service: pick<UpstreamPolicyDocument, string | undefined>(layers, (l) => l.discovery?.service, name),
    datacenter: pick<UpstreamPolicyDocument, string | undefined>(layers, (l) => l.discovery?.datacenter, undefined),
    tags: [...pick<UpstreamPolicyDocument, readonly string[]>(layers, (l) => l.discovery?.tags, D.discovery.tags)],
    passingOnly: pick(layers, (l) => l.discovery?.passingOnly, D.discovery.passingOnly),
    endpoints: [...pick<UpstreamPolicyDocument, readonly string[]>(layers, (l) => l.discovery?.endpoints, D.discovery.endpoints)],
    file: pick<UpstreamPolicyDocument, string | undefined>(layers, (l) => l.discovery?.file, undefined),
  };
}

function resolveHashOn(hashOn: Partial<Record<keyof ResolvedHashOn, string | undefined>> | undefined): ResolvedHashOn | undefined {
  if (hashOn === undefined) return undefined;
  if (hashOn.header !== undefined) return { header: hashOn.header.toLowerCase() };
  if (hashOn.cookie !== undefined) return { cookie: hashOn.cookie };
  if (hashOn.queryParameter !== undefined) return { queryParameter: hashOn.queryParameter };
  return undefined;
}

function resolveLoadBalancer(upstreamLayers: readonly UpstreamPolicyDocument[]): ResolvedLoadBalancer {
  const policy = pick(upstreamLayers, (l) => l.loadBalancer?.policy, D.loadBalancer.policy);
  return {
    policy,
    choiceCount: pick(upstreamLayers, (l) => l.loadBalancer?.choiceCount, D.loadBalancer.choiceCount),
    // hashOn replaces as a whole (a route's cookie must not merge with an upstream's header),
    // and means something only for ring_hash.
    hashOn: policy === 'ring_hash' ? resolveHashOn(pick(upstreamLayers, (l) => l.loadBalancer?.hashOn, undefined)) : undefined,
    minimumRingSize: pick(upstreamLayers, (l) => l.loadBalancer?.minimumRingSize, D.loadBalancer.minimumRingSize),
    ewmaDecay: pick(upstreamLayers, (l) => ms(l.loadBalancer?.ewma?.decay), D.loadBalancer.ewmaDecay),
    ewmaDefaultRtt: pick(upstreamLayers, (l) => ms(l.loadBalancer?.ewma?.defaultRtt), D.loadBalancer.ewmaDefaultRtt),
  };
}

function resolveTimeouts(layers: readonly Layer[]): ResolvedTimeouts {
  return {
    connect: pick(layers, (l) => ms(l.timeouts?.connect), D.timeouts.connect),
    request: pick(layers, (l) => ms(l.timeouts?.request), D.timeouts.request),
    perTry: pick(layers, (l) => ms(l.timeouts?.perTry), D.timeouts.perTry),
    idle: pick(layers, (l) => ms(l.timeouts?.idle), D.timeouts.idle),
  };
}

function resolveBudget(layers: readonly Layer[]): ResolvedRetryBudget | undefined {
  let budget: ResolvedRetryBudget | undefined = { percent: D.retries.budgetPercent, minConcurrency: D.retries.budgetMinConcurrency };
  for (const layer of layers) {
    const written = layer.retries?.budget;
    if (written === undefined) continue;
    if (written === false) {
      budget = undefined;
      continue;
    }
    const base: ResolvedRetryBudget = budget ?? { percent: D.retries.budgetPercent, minConcurrency: D.retries.budgetMinConcurrency };
    budget = {
      percent: written.percent ?? base.percent,
      minConcurrency: written.minConcurrency ?? base.minConcurrency,
    };
  }
  return budget;
}

function resolveRetries(layers: readonly Layer[]): ResolvedRetries {
  return {
    attempts: pick(layers, (l) => l.retries?.attempts, D.retries.attempts),
    retryOn: [...pick<Layer, readonly ResolvedRetries['retryOn'][number][]>(layers, (l) => l.retries?.retryOn, D.retries.retryOn)],
    retriableStatusCodes: [...pick<Layer, readonly number[]>(layers, (l) => l.retries?.retriableStatusCodes, D.retries.retriableStatusCodes)],
    backoff: {
      base: pick(layers, (l) => ms(l.retries?.backoff?.base), D.retries.backoffBase),
      max: pick(layers, (l) => ms(l.retries?.backoff?.max), D.retries.backoffMax),
    },
    idempotentOnly: pick(layers, (l) => l.retries?.idempotentOnly, D.retries.idempotentOnly),
    budget: resolveBudget(layers),
    maxBodyBytes: pick(layers, (l) => l.retries?.maxBodyBytes, D.retries.maxBodyBytes),
    maxRetryAfter: pick(layers, (l) => ms(l.retries?.maxRetryAfter), D.retries.maxRetryAfter),
  };
}

function resolveRateLimit(layers: readonly UpstreamPolicyDocument[]): ResolvedRateLimit | undefined {
  let state: { requestsPerSecond?: number | undefined; burst?: number | undefined; shared?: boolean | undefined } | undefined;
  for (const layer of layers) {
    const written = layer.rateLimit;
    if (written === undefined) continue;
    if (written === false) {
      state = undefined;
      continue;
    }
    state = {
      requestsPerSecond: written.requestsPerSecond ?? state?.requestsPerSecond,
      burst: written.burst ?? state?.burst,
      shared: written.shared ?? state?.shared,
    };
  }
  if (state?.requestsPerSecond === undefined) return undefined;
  return {
    requestsPerSecond: state.requestsPerSecond,
    burst: state.burst ?? Math.max(1, Math.ceil(state.requestsPerSecond)),
    shared: state.shared ?? D.rateLimit.shared,
  };
}

function resolveLimits(layers: readonly UpstreamPolicyDocument[]): ResolvedLimits {
  // `enabled: false` resolves to the thresholds at their max (Infinity), which is
  // what the limit layer (resilience/limits.ts) reads as "no layer"; the pool
  // settings (maxConnections, maxRequestsPerConnection) are not request limits and stay.
  const enabled = pick(layers, (l) => l.limits?.enabled, D.limits.enabled);
  return {
    maxConnections: pick(layers, (l) => l.limits?.maxConnections, D.limits.maxConnections),
    maxPendingRequests: enabled ? pick(layers, (l) => l.limits?.maxPendingRequests, D.limits.maxPendingRequests) : Infinity,
    maxRequests: enabled ? pick(layers, (l) => l.limits?.maxRequests, D.limits.maxRequests) : Infinity,
    maxRequestsPerConnection: pick(layers, (l) => l.limits?.maxRequestsPerConnection, D.limits.maxRequestsPerConnection),
  };
}

function resolveUpstreamPolicy(layers: readonly UpstreamPolicyDocument[], name: string | undefined): ResolvedUpstreamPolicy {
  return {
    discovery: resolveDiscovery(layers, name),
    loadBalancer: resolveLoadBalancer(layers),
    timeouts: resolveTimeouts(layers),
    retries: resolveRetries(layers),
    outlierDetection: {
      consecutive5xx: pick(layers, (l) => l.outlierDetection?.consecutive5xx, D.outlierDetection.consecutive5xx),
      consecutiveGatewayErrors: pick(layers, (l) => l.outlierDetection?.consecutiveGatewayErrors, D.outlierDetection.consecutiveGatewayErrors),
      interval: pick(layers, (l) => ms(l.outlierDetection?.interval), D.outlierDetection.interval),
      baseEjectionTime: pick(layers, (l) => ms(l.outlierDetection?.baseEjectionTime), D.outlierDetection.baseEjectionTime),
      maxEjectionTime: pick(layers, (l) => ms(l.outlierDetection?.maxEjectionTime), D.outlierDetection.maxEjectionTime),
      maxEjectionPercent: pick(layers, (l) => l.outlierDetection?.maxEjectionPercent, D.outlierDetection.maxEjectionPercent),
      panicThresholdPercent: pick(layers, (l) => l.outlierDetection?.panicThresholdPercent, D.outlierDetection.panicThresholdPercent),
    },
    limits: resolveLimits(layers),
    circuitBreaker: {
      enabled: pick(layers, (l) => l.circuitBreaker?.enabled, D.circuitBreaker.enabled),
      errorThresholdPercent: pick(layers, (l) => l.circuitBreaker?.errorThresholdPercent, D.circuitBreaker.errorThresholdPercent),
      minimumRequests: pick(layers, (l) => l.circuitBreaker?.minimumRequests, D.circuitBreaker.minimumRequests),
      window: pick(layers, (l) => ms(l.circuitBreaker?.window), D.circuitBreaker.window),
      halfOpenAfter: pick(layers, (l) => ms(l.circuitBreaker?.halfOpenAfter), D.circuitBreaker.halfOpenAfter),
    },
    rateLimit: resolveRateLimit(layers),
  };
}

function resolveRoute(
  route: RouteDocument,
  index: number,
  layers: readonly UpstreamPolicyDocument[],
  upstream: ResolvedUpstreamPolicy,
): ResolvedRoute {
  const all: readonly Layer[] = [...layers, route];
  const match = route.match;
  const headers: ResolvedHeaderMatch[] = (match?.headers ?? []).map((h) => {
    const out: ResolvedHeaderMatch = { name: h.name.toLowerCase() };
    if (h.exact !== undefined) out.exact = h.exact;
    if (h.prefix !== undefined) out.prefix = h.prefix;
    if (h.regex !== undefined) out.regex = h.regex;
    if (h.present !== undefined) out.present = h.present;
    return out;
  });
  const resolvedMatch: ResolvedRouteMatch = {
    methods: match?.methods === undefined ? undefined : [...match.methods],
    path: match?.path,
    pathPrefix: match?.pathPrefix,
    headers,
  };
  const hashOn = route.loadBalancer?.hashOn;
  return {
    name: route.name ?? `route-${index}`,
    match: resolvedMatch,
    // A route without its own block shares the upstream's (frozen) object.
    timeouts: route.timeouts === undefined ? upstream.timeouts : resolveTimeouts(all),
    retries: route.retries === undefined ? upstream.retries : resolveRetries(all),
    loadBalancer:
      hashOn === undefined ? upstream.loadBalancer : { ...upstream.loadBalancer, hashOn: resolveHashOn(hashOn) },
  };
}

function resolveInbound(doc: PolicyDocument['inbound']): ResolvedInbound {
  const rate = doc?.rateLimit;
  return {
    rateLimit:
      rate?.requestsPerSecond === undefined
        ? undefined
        : { requestsPerSecond: rate.requestsPerSecond, burst: rate.burst ?? Math.max(1, Math.ceil(rate.requestsPerSecond)) },
    maxConcurrent: doc?.maxConcurrent ?? D.inbound.maxConcurrent,
    timeouts: { request: ms(doc?.timeouts?.request) ?? D.inbound.request },
  };
}

// ---------------------------------------------------------------- route matching

// Plain constants, not an enum: the docs script runs these files with type stripping only.
const HeaderKind = { Exact: 0, Prefix: 1, Regex: 2, Present: 3 } as const;
type HeaderKind = (typeof HeaderKind)[keyof typeof HeaderKind];

interface CompiledHeader {
  name: string;
  kind: HeaderKind;
  value: string;
  regex: RegExp | undefined;
  present: boolean;
}

interface CompiledRoute {
  route: Readonly<ResolvedRoute>;
  methods: readonly string[] | undefined;
  path: string | undefined;
  pathPrefix: string | undefined;
  headers: readonly CompiledHeader[];
}

const compiledRoutes = new WeakMap<object, readonly CompiledRoute[]>();

function compileRoutes(upstream: Readonly<ResolvedUpstream>): readonly CompiledRoute[] {
  const compiled = upstream.routes.map(
    (route): CompiledRoute => ({
      route,
      methods: route.match.methods,
      path: route.match.path,
      pathPrefix: route.match.pathPrefix,
      headers: route.match.headers.map((h): CompiledHeader => {
        if (h.exact !== undefined) return { name: h.name, kind: HeaderKind.Exact, value: h.exact, regex: undefined, present: true };
        if (h.prefix !== undefined) return { name: h.name, kind: HeaderKind.Prefix, value: h.prefix, regex: undefined, present: true };
        if (h.regex !== undefined)
          // Anchored like Envoy's safe_regex and Istio's regex: the whole value must match.
          return { name: h.name, kind: HeaderKind.Regex, value: h.regex, regex: new RegExp(`^(?:${h.regex})$`), present: true };
        return { name: h.name, kind: HeaderKind.Present, value: '', regex: undefined, present: h.present ?? true };
      }),
    }),
  );
  compiledRoutes.set(upstream, compiled);
  return compiled;
}

/** Header values as Node gives them (lower-case names); arrays for repeated headers. */
export type MatchHeaders = Readonly<Record<string, string | readonly string[] | number | undefined>>;

function sameMethod(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    // ASCII letters only differ by 0x20 between cases.
    if (x !== y && (x | 0x20) !== (y | 0x20)) return false;
  }
  return true;
}

function headerValue(headers: MatchHeaders, name: string): string | readonly string[] | number | undefined {
  const direct = headers[name];
  if (direct !== undefined) return direct;
  for (const key in headers) {
    if (key.length === name.length && key.toLowerCase() === name) return headers[key];
  }
  return undefined;
}

function valueMatches(header: CompiledHeader, value: string): boolean {
  switch (header.kind) {
    case HeaderKind.Exact:
      return value === header.value;
    case HeaderKind.Prefix:
      return value.startsWith(header.value);
    case HeaderKind.Regex:
      return header.regex?.test(value) ?? false;
    case HeaderKind.Present:
      return true;
  }
}

function headerMatches(header: CompiledHeader, headers: MatchHeaders | undefined): boolean {
  const value = headers === undefined ? undefined : headerValue(headers, header.name);
  if (header.kind === HeaderKind.Present) return (value !== undefined) === header.present;
  if (value === undefined) return false;
  if (typeof value === 'string') return valueMatches(header, value);
  if (typeof value === 'number') return valueMatches(header, String(value));
  for (const item of value) if (valueMatches(header, item)) return true;
  return false;
}

function routeMatches(route: CompiledRoute, method: string, path: string, headers: MatchHeaders | undefined): boolean {
  if (route.methods !== undefined) {
    let found = false;
    for (const m of route.methods) {
      if (sameMethod(m, method)) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  if (route.path !== undefined || route.pathPrefix !== undefined) {
    const query = path.indexOf('?');
    const length = query === -1 ? path.length : query;
    if (route.path !== undefined && !(length === route.path.length && path.startsWith(route.path))) return false;
    if (route.pathPrefix !== undefined && !(length >= route.pathPrefix.length && path.startsWith(route.pathPrefix))) return false;
  }
  for (const header of route.headers) if (!headerMatches(header, headers)) return false;
  return true;
}

/**
 * The call policy for one request: the first route (in document order) whose
 * match holds, else the upstream's own. `path` may carry a query string (it is
 * ignored). No allocation when the upstream has no routes or none matches.
 */
export function matchRoute(
  upstream: Readonly<ResolvedUpstream>,
  method: string,
  path: string,
  headers?: MatchHeaders,
): Readonly<ResolvedCallPolicy> {
  if (upstream.routes.length === 0) return upstream;
  const routes = compiledRoutes.get(upstream) ?? compileRoutes(upstream);
  for (const route of routes) if (routeMatches(route, method, path, headers)) return route.route;
  return upstream;
}

// ---------------------------------------------------------------- resolve

export type ResolvePolicyOptions = ParsePolicyOptions;

/**
 * Validates (see parsePolicy) and resolves a policy document. The result is
 * deep-frozen: read it, never mutate it (mutation throws in strict mode).
 */
export function resolvePolicy(doc: PolicyDocument, source = 'policy', options: ResolvePolicyOptions = {}): ResolvedPolicy {
  const valid = parsePolicy(doc, source, options);
  const base: UpstreamPolicyDocument = valid.defaults ?? {};
  const defaults = resolveUpstreamPolicy([base], undefined);
  const upstreams: Record<string, ResolvedUpstream> = {};
  for (const [name, upstream] of Object.entries(valid.upstreams ?? {})) {
    const layers: UpstreamPolicyDocument[] = [base, upstream];
    const policy = resolveUpstreamPolicy(layers, name);
    upstreams[name] = {
      name,
      ...policy,
      routes: (upstream.routes ?? []).map((route, index) => resolveRoute(route, index, layers, policy)),
    };
  }
  const resolved: ResolvedPolicy = {
    apiVersion: 'inmesh/v1',
    defaults,
    upstreams,
    inbound: resolveInbound(valid.inbound),
  };
  deepFreeze(resolved);
  for (const upstream of Object.values(resolved.upstreams)) if (upstream.routes.length > 0) compileRoutes(upstream);
  return resolved;
}

// ---------------------------------------------------------------- lookup

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
      routes: [],
    };
    return host === undefined ? base : withHost({ ...base, discovery: { ...base.discovery, service: undefined } }, name, host);
  });
}

/** upstreamFor(), else defaultUpstream(). */
export function upstreamOrDefault(policy: ResolvedPolicy, name: string): Readonly<ResolvedUpstream> {
  return upstreamFor(policy, name) ?? defaultUpstream(policy, name);
}

// ---------------------------------------------------------------- explain

const DURATION_KEYS = new Set([
  'connect',
  'request',
  'perTry',
  'idle',
  'maxRetryAfter',
  'interval',
  'baseEjectionTime',
  'maxEjectionTime',
  'window',
  'halfOpenAfter',
  'ewmaDecay',
  'ewmaDefaultRtt',
]);

function explainView(value: unknown, key: string, parent: string): unknown {
  if (typeof value === 'number' && (DURATION_KEYS.has(key) || (parent === 'backoff' && (key === 'base' || key === 'max'))))
    return formatDuration(value);
  if (Array.isArray(value)) return value.map((item: unknown) => explainView(item, '', key));
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue;
      out[k] = explainView(v, k, key);
    }
    return out;
  }
  return value;
}

/**
 * A readable YAML rendering of a resolved policy, durations written back as
 * strings ("15s"), fields that are not set left out. What `inmesh explain` prints.
 */
export function explainPolicy(policy: ResolvedPolicy): string {
  return stringify(explainView(policy, '', ''), { lineWidth: 0 });
}
