/**
 * explainPolicy(): a resolved policy written back as a policy document, every
 * default spelled out. What `inmesh explain` prints; the document validates and
 * resolves to the same policy (test/unit/policy/explain.test.ts).
 */
import { stringify } from 'yaml';
import { formatDuration } from './duration.ts';
import type { PolicyDocument } from './schema.ts';
import type {
  ResolvedCallPolicy,
  ResolvedCircuitBreaker,
  ResolvedInbound,
  ResolvedLoadBalancer,
  ResolvedPolicy,
  ResolvedResource,
  ResolvedRoute,
  ResolvedUpstream,
  ResolvedUpstreamPolicy,
} from './types.ts';

type Doc = Record<string, unknown>;

/** Drops undefined fields, so the YAML shows only what is set. */
function defined(fields: Doc): Doc {
  const out: Doc = {};
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) out[k] = v;
  return out;
}

function hashOnDoc(lb: ResolvedLoadBalancer): Doc | undefined {
  return lb.hashOn === undefined ? undefined : defined({ ...lb.hashOn });
}

/** An upstream's or a resource's breaker: the same fields, the same meaning. */
function circuitBreakerDoc(cb: ResolvedCircuitBreaker): Doc {
  return {
    enabled: cb.enabled,
    errorThresholdPercent: cb.errorThresholdPercent,
    minimumRequests: cb.minimumRequests,
    window: formatDuration(cb.window),
    halfOpenAfter: formatDuration(cb.halfOpenAfter),
  };
}

function callPolicyDoc(p: ResolvedCallPolicy): Doc {
  const r = p.retries;
  return {
    timeouts: {
      connect: formatDuration(p.timeouts.connect),
      request: formatDuration(p.timeouts.request),
      perTry: formatDuration(p.timeouts.perTry),
      idle: formatDuration(p.timeouts.idle),
    },
    retries: {
      attempts: r.attempts,
      retryOn: [...r.retryOn],
      retriableStatusCodes: [...r.retriableStatusCodes],
      backoff: { base: formatDuration(r.backoff.base), max: formatDuration(r.backoff.max) },
      idempotentOnly: r.idempotentOnly,
      budget: r.budget === undefined ? false : { percent: r.budget.percent, minConcurrency: r.budget.minConcurrency },
      maxBodyBytes: r.maxBodyBytes,
      maxRetryAfter: formatDuration(r.maxRetryAfter),
    },
  };
}

function upstreamPolicyDoc(p: ResolvedUpstreamPolicy): Doc {
  const lb = p.loadBalancer;
  const o = p.outlierDetection;
  const limitsOn = Number.isFinite(p.limits.maxRequests);
  return {
    discovery: defined({
      registry: p.discovery.registry,
      service: p.discovery.service,
      datacenter: p.discovery.datacenter,
      tags: [...p.discovery.tags],
      passingOnly: p.discovery.passingOnly,
      endpoints: [...p.discovery.endpoints],
      file: p.discovery.file,
    }),
    loadBalancer: defined({
      policy: lb.policy,
      choiceCount: lb.choiceCount,
      hashOn: hashOnDoc(lb),
      minimumRingSize: lb.minimumRingSize,
      ewma: { decay: formatDuration(lb.ewmaDecay), defaultRtt: formatDuration(lb.ewmaDefaultRtt) },
    }),
    ...callPolicyDoc(p),
    outlierDetection: {
      consecutive5xx: o.consecutive5xx,
      consecutiveGatewayErrors: o.consecutiveGatewayErrors,
      interval: formatDuration(o.interval),
      baseEjectionTime: formatDuration(o.baseEjectionTime),
      maxEjectionTime: formatDuration(o.maxEjectionTime),
      maxEjectionPercent: o.maxEjectionPercent,
      panicThresholdPercent: o.panicThresholdPercent,
    },
    // Limits off resolve to Infinity: the document says `enabled: false` instead.
    limits: limitsOn
      ? { enabled: true, ...p.limits }
      : { enabled: false, maxConnections: p.limits.maxConnections, maxRequestsPerConnection: p.limits.maxRequestsPerConnection },
    circuitBreaker: circuitBreakerDoc(p.circuitBreaker),
    rateLimit: p.rateLimit === undefined ? false : { ...p.rateLimit },
  };
}

function routeDoc(route: ResolvedRoute): Doc {
  const m = route.match;
  const hashOn = hashOnDoc(route.loadBalancer);
  return defined({
    name: route.name,
    match: defined({
      methods: m.methods === undefined ? undefined : [...m.methods],
      path: m.path,
      pathPrefix: m.pathPrefix,
      headers: m.headers.length === 0 ? undefined : m.headers.map((h) => defined({ ...h })),
    }),
    ...callPolicyDoc(route),
    loadBalancer: hashOn === undefined ? undefined : { hashOn },
  });
}

function upstreamDoc(u: ResolvedUpstream): Doc {
  return defined({ ...upstreamPolicyDoc(u), routes: u.routes.length === 0 ? undefined : u.routes.map(routeDoc) });
}

function inboundDoc(i: ResolvedInbound): Doc {
  return defined({
    rateLimit: i.rateLimit === undefined ? undefined : { ...i.rateLimit },
    maxConcurrent: i.maxConcurrent,
    timeouts: { request: formatDuration(i.timeouts.request) },
  });
}

function resourceDoc(r: ResolvedResource): Doc {
  const t = r.retries;
  return {
    timeouts: { request: formatDuration(r.timeouts.request), perTry: formatDuration(r.timeouts.perTry) },
    retries: {
      attempts: t.attempts,
      retryOn: [...t.retryOn],
      neverRetry: [...t.neverRetry],
      idempotent: t.idempotent,
      backoff: { base: formatDuration(t.backoff.base), max: formatDuration(t.backoff.max) },
      budget: t.budget === undefined ? false : { percent: t.budget.percent, minConcurrency: t.budget.minConcurrency },
    },
    // Limits off resolve to Infinity: the document says `enabled: false` instead.
    limits: Number.isFinite(r.limits.maxRequests) ? { enabled: true, ...r.limits } : { enabled: false },
    circuitBreaker: circuitBreakerDoc(r.circuitBreaker),
    rateLimit: r.rateLimit === undefined ? false : { ...r.rateLimit },
  };
}

/** The policy document that resolves to `policy`, every default written out. */
export function policyDocumentOf(policy: ResolvedPolicy): PolicyDocument {
  const upstreams: Doc = {};
  for (const [name, u] of Object.entries(policy.upstreams)) upstreams[name] = upstreamDoc(u);
  return {
    apiVersion: policy.apiVersion,
    defaults: upstreamPolicyDoc(policy.defaults),
    upstreams,
    inbound: inboundDoc(policy.inbound),
    ...(Object.keys(policy.resources).length === 0
      ? {}
      : { resources: Object.fromEntries(Object.entries(policy.resources).map(([name, r]) => [name, resourceDoc(r)])) }),
  } as PolicyDocument;
}

/** {@link policyDocumentOf} as readable YAML: what `inmesh explain` prints. */
export function explainPolicy(policy: ResolvedPolicy): string {
  return stringify(policyDocumentOf(policy), { lineWidth: 0 });
}
