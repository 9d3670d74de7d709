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
import { deepFreeze } from '../internal/deep-freeze.ts';
import { POLICY_DEFAULTS as D } from './defaults.ts';
import { parseDuration } from './duration.ts';
import { compileRoutes } from './routes.ts';
import type { PolicyDocument, ResourceDocument, RouteDocument, SplitTargetDocument, SubsetDocument, UpstreamPolicyDocument } from './schema.ts';
import type {
  ResolvedDiscovery,
  ResolvedHashOn,
  ResolvedHeaderMatch,
  ResolvedInbound,
  ResolvedLimits,
  ResolvedLoadBalancer,
  ResolvedPolicy,
  ResolvedRateLimit,
  ResolvedResource,
  ResolvedRetries,
  ResolvedRetryBudget,
  ResolvedRoute,
  ResolvedRouteMatch,
  ResolvedSplitTarget,
  ResolvedSubset,
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

/** Subsets by name, in a null-prototype object (a subset named `constructor` is an own key like any other). */
function resolveSubsets(doc: Readonly<Record<string, SubsetDocument>> | undefined): Record<string, ResolvedSubset> {
  const subsets = Object.create(null) as Record<string, ResolvedSubset>;
  for (const [name, subset] of Object.entries(doc ?? {})) {
    subsets[name] = { tags: [...(subset.tags ?? D.discovery.tags)], meta: { ...subset.meta } };
  }
  return subsets;
}

/** A split as written, weights defaulted; undefined when none is written. Zero weights stay (export needs them). */
function resolveSplit(doc: readonly SplitTargetDocument[] | undefined): ResolvedSplitTarget[] | undefined {
  return doc?.map((target) => ({ subset: target.subset, weight: target.weight ?? D.split.weight }));
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
    // Splits are written per upstream and per route, never in defaults (subsets belong to one upstream).
    split: undefined,
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
    // A route's split replaces the upstream's as a whole.
    split: route.split === undefined ? upstream.split : resolveSplit(route.split),
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
/**
 * One resource: built-in defaults ← `resources.<name>` (document `defaults`
 * are for upstreams and do not apply). The rate limit, breaker and budget
 * resolve as an upstream's do.
 */
function resolveResource(name: string, doc: ResourceDocument): ResolvedResource {
  const R = D.resources;
  const r = doc.retries;
  const budget = r?.budget;
  const enabled = doc.limits?.enabled ?? D.limits.enabled;
  const cb = doc.circuitBreaker;
  return {
    name,
    timeouts: { request: ms(doc.timeouts?.request) ?? R.request, perTry: ms(doc.timeouts?.perTry) ?? R.perTry },
    retries: {
      attempts: r?.attempts ?? R.attempts,
      retryOn: [...(r?.retryOn ?? R.retryOn)],
      neverRetry: [...(r?.neverRetry ?? R.neverRetry)],
      backoff: { base: ms(r?.backoff?.base) ?? D.retries.backoffBase, max: ms(r?.backoff?.max) ?? D.retries.backoffMax },
      idempotent: r?.idempotent ?? R.idempotent,
      budget:
        budget === false
          ? undefined
          : { percent: budget?.percent ?? D.retries.budgetPercent, minConcurrency: budget?.minConcurrency ?? D.retries.budgetMinConcurrency },
    },
    limits: {
      maxRequests: enabled ? (doc.limits?.maxRequests ?? R.maxRequests) : Infinity,
      maxPendingRequests: enabled ? (doc.limits?.maxPendingRequests ?? R.maxPendingRequests) : Infinity,
    },
    circuitBreaker: {
      enabled: cb?.enabled ?? D.circuitBreaker.enabled,
      errorThresholdPercent: cb?.errorThresholdPercent ?? D.circuitBreaker.errorThresholdPercent,
      minimumRequests: cb?.minimumRequests ?? D.circuitBreaker.minimumRequests,
      window: ms(cb?.window) ?? D.circuitBreaker.window,
      halfOpenAfter: ms(cb?.halfOpenAfter) ?? D.circuitBreaker.halfOpenAfter,
    },
    rateLimit: resolveRateLimit([{ rateLimit: doc.rateLimit }]),
  };
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
  // No prototype: an upstream named `constructor` or `toString` is an own key like any other.
  const upstreams = Object.create(null) as Record<string, ResolvedUpstream>;
  for (const [name, upstream] of Object.entries(valid.upstreams ?? {})) {
    const layers: UpstreamPolicyDocument[] = [base, upstream];
    const policy: ResolvedUpstreamPolicy = { ...resolveUpstreamPolicy(layers, name), split: resolveSplit(upstream.split) };
    upstreams[name] = {
      name,
      ...policy,
      subsets: resolveSubsets(upstream.subsets),
      routes: (upstream.routes ?? []).map((route, index) => resolveRoute(route, index, layers, policy)),
    };
  }
  const resources = Object.create(null) as Record<string, ResolvedResource>;
  for (const [name, resource] of Object.entries(valid.resources ?? {})) resources[name] = resolveResource(name, resource);
  const resolved: ResolvedPolicy = {
    apiVersion: 'inmesh/v1',
    defaults,
    upstreams,
    inbound: resolveInbound(valid.inbound),
    resources,
  };
  deepFreeze(resolved);
  for (const upstream of Object.values(resolved.upstreams)) if (upstream.routes.length > 0) compileRoutes(upstream);
  return resolved;
}
