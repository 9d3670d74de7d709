/**
 * What the admin endpoint (src/admin/) reads of a mesh: each document built
 * from the read-only accessors of the mesh's parts (the resolved config and
 * policy, `UpstreamRuntime.state()`, the inbound side's `inFlight`), never
 * from their private fields. Upstreams declared in the policy but not yet
 * started are listed from the policy alone: reading the admin endpoint never
 * starts a registry watch.
 */
import type { AdminInbound, AdminResource, AdminSource, AdminUpstream, ConfigDump } from '../admin/types.ts';
import type { ResourceState } from '../guard/guard.ts';
import type { UpstreamRuntime } from '../client/upstream.ts';
import type { ResolvedConfig } from '../config/load.ts';
import type { ResolvedPolicy, ResolvedUpstream } from '../policy/types.ts';

export interface AdminSourceParts {
  readonly config: ResolvedConfig;
  readonly policy: ResolvedPolicy;
  /** Runtimes started so far, by upstream name. */
  readonly started: () => ReadonlyMap<string, UpstreamRuntime>;
  /** The inbound side's in-flight count: undefined while no server is wrapped; `{ inFlight: undefined }` when nothing is counted. */
  readonly inbound: () => { readonly inFlight: number | undefined } | undefined;
  readonly closing: () => boolean;
  /** The state of the resources whose chain is built (empty before the first guarded call). */
  readonly resources: () => readonly ResourceState[];
  readonly redact: (text: string) => string;
}

const REDACTED = '[redacted]';

export function meshAdminSource(parts: AdminSourceParts): AdminSource {
  return {
    configDump: () => configDump(parts.config, parts.policy),
    clusters: () => clusters(parts),
    inbound: () => inbound(parts),
    resources: () => resources(parts),
    redact: parts.redact,
  };
}

function configDump(config: ResolvedConfig, policy: ResolvedPolicy): ConfigDump {
  const c = config.consul;
  const s = config.service;
  return {
    service: s === undefined ? null : { name: s.name, address: s.address ?? null, port: s.port ?? null },
    policyFile: config.policyFile ?? null,
    consul: {
      host: c.host,
      port: c.port,
      secure: c.secure,
      token: c.token === undefined ? null : REDACTED,
      auth: c.auth === undefined ? null : REDACTED,
      datacenter: c.datacenter ?? null,
      namespace: c.namespace ?? null,
      partition: c.partition ?? null,
      tls: {
        caFile: c.caFile ?? null,
        caPath: c.caPath ?? null,
        certFile: c.certFile ?? null,
        keyFile: c.keyFile ?? null,
        serverName: c.tlsServerName ?? null,
        verify: c.tlsVerify ?? true,
      },
    },
    redis: { configured: config.redisUrl !== undefined, url: config.redisUrl === undefined ? null : REDACTED },
    telemetry: { enabled: config.telemetry.enabled, serviceName: config.telemetry.serviceName ?? null },
    policy,
  };
}

function finite(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}

function clusters(parts: AdminSourceParts): AdminUpstream[] {
  const started = parts.started();
  const out: AdminUpstream[] = [];
  const seen = new Set<string>();
  // Declared upstreams first, in policy order; then upstreams started from a host name alone (Consul DNS names, static services).
  for (const u of Object.values(parts.policy.upstreams)) {
    seen.add(u.name);
    out.push(upstreamOf(u, started.get(u.name)));
  }
  for (const [name, rt] of started) if (!seen.has(name)) out.push(upstreamOf(rt.upstream, rt));
  return out;
}

function upstreamOf(u: Readonly<ResolvedUpstream>, rt: UpstreamRuntime | undefined): AdminUpstream {
  const budget = u.retries.budget;
  const base = {
    name: u.name,
    service: u.discovery.service ?? u.name,
    registry: u.discovery.registry,
  };
  const limitsPolicy = { maxRequests: finite(u.limits.maxRequests), maxPendingRequests: finite(u.limits.maxPendingRequests) };
  if (rt === undefined) {
    return {
      ...base,
      started: false,
      discovery: null,
      panic: null,
      circuitBreaker: { enabled: u.circuitBreaker.enabled, state: null },
      limits: { ...limitsPolicy, inFlight: null, pending: null },
      retryBudget: budget === undefined ? null : { percent: budget.percent, minConcurrency: budget.minConcurrency, active: null, retriesInFlight: null, limit: null },
      endpoints: [],
    };
  }
  const st = rt.state();
  const d = st.discovery;
  const now = performance.now();
  const e = d.lastError;
  return {
    ...base,
    service: d.service,
    registry: d.registry,
    started: true,
    discovery: {
      endpoints: d.endpoints,
      available: d.available,
      stalenessMs: finite(d.stalenessMs),
      lastError: e === undefined ? null : { name: e.name, code: e.code ?? null, message: e.message, statusCode: e.statusCode ?? null },
    },
    panic: st.panic,
    circuitBreaker: { enabled: u.circuitBreaker.enabled, state: st.breaker ?? null },
    limits: { ...limitsPolicy, inFlight: st.limit?.inFlight ?? null, pending: st.limit?.pending ?? null },
    retryBudget:
      budget === undefined
        ? null
        : {
            percent: budget.percent,
            minConcurrency: budget.minConcurrency,
            active: st.retryBudget?.active ?? null,
            retriesInFlight: st.retryBudget?.retriesInFlight ?? null,
            limit: st.retryBudget?.limit ?? null,
          },
    endpoints: st.endpoints.map((s) => ({
      id: s.id,
      address: s.endpoint.address,
      port: s.endpoint.port,
      activeRequests: s.active,
      ejected: s.ejected,
      ejectedForMs: s.ejected ? Math.max(0, Math.ceil(s.ejectedUntil - now)) : 0,
      timesEjected: s.timesEjected,
      ejections: s.ejections,
      consecutive5xx: s.consecutive5xx,
      consecutiveGatewayErrors: s.consecutiveGatewayErrors,
    })),
  };
}

function inbound(parts: AdminSourceParts): AdminInbound {
  const p = parts.policy.inbound;
  const side = parts.inbound();
  const rl = p.rateLimit;
  return {
    wrapped: side !== undefined,
    closing: parts.closing(),
    maxConcurrent: p.maxConcurrent,
    inFlight: side?.inFlight ?? null,
    rateLimit: rl === undefined ? null : { requestsPerSecond: rl.requestsPerSecond, burst: rl.burst, shared: parts.config.redisUrl !== undefined },
    requestTimeoutMs: p.timeouts.request,
  };
}

/** Every resource of the policy, with its breaker, limit, rate-limit and budget state once its chain is built. */
function resources(parts: AdminSourceParts): AdminResource[] {
  const states = new Map(parts.resources().map((s) => [s.name, s]));
  return Object.values(parts.policy.resources).map((r): AdminResource => {
    const st = states.get(r.name);
    const limited = Number.isFinite(r.limits.maxRequests);
    const budget = r.retries.budget;
    return {
      name: r.name,
      started: st !== undefined,
      timeouts: { requestMs: r.timeouts.request, perTryMs: r.timeouts.perTry },
      circuitBreaker: { enabled: r.circuitBreaker.enabled, state: st?.breaker ?? null },
      limits: {
        maxRequests: finite(r.limits.maxRequests),
        maxPendingRequests: finite(r.limits.maxPendingRequests),
        inFlight: st !== undefined && limited ? st.inFlight : null,
        pending: st !== undefined && limited ? st.pending : null,
      },
      rateLimit: st?.rateLimit ?? (r.rateLimit === undefined ? null : { ...r.rateLimit }),
      retryBudget:
        budget === undefined
          ? null
          : {
              percent: budget.percent,
              minConcurrency: budget.minConcurrency,
              active: st?.retryBudget?.active ?? null,
              retriesInFlight: st?.retryBudget?.retries ?? null,
              limit: st?.retryBudget?.limit ?? null,
            },
    };
  });
}
