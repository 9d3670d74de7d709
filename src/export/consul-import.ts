/**
 * Consul config entries back to a policy document: the reverse of consul.ts,
 * for the round trip (export → write to Consul → read back → import → resolve)
 * and the caller's own service-defaults (UpstreamConfig, LocalRequestTimeoutMs),
 * and for teams that start from entries already in Consul. It reads what the
 * exporter writes (service-resolver, service-splitter, service-router; the
 * LoadBalancer and RetryOn of newer lines too). What a Consul sidecar never does
 * is imported as off (no error-rate breaker, no retry budget, Retry-After
 * ignored, every method retried); everything else Consul does not hold is left
 * to the model's defaults.
 */
import { ExportError } from '../errors.ts';
import { formatDuration } from '../policy/duration.ts';
import type { PolicyDocument } from '../policy/index.ts';
import { ALL_SUBSET, ENVOY_MAX_THRESHOLD, GATEWAY_ERROR_CODES } from './consul.ts';
import { parseGoDuration } from './duration.ts';

type Entry = Record<string, unknown>;
type Doc = Record<string, unknown>;

const text = (value: unknown): string => (typeof value === 'string' ? value : '');

/** A go-bexpr string literal: double-quoted (Go escapes) or a raw backtick string. */
const LITERAL = '"(?:[^"\\\\]|\\\\.)*"|`[^`]*`';
const TERM = new RegExp(`\\s*(?:(${LITERAL}) in Service\\.Tags|Service\\.Meta(?:\\.([A-Za-z0-9_]+)|\\[("(?:[^"\\\\]|\\\\.)*")\\]) == (${LITERAL}))\\s*(and\\b|$)`, 'y');

function unquote(literal: string): string {
  return literal.startsWith('`') ? literal.slice(1, -1) : (JSON.parse(literal) as string);
}

/** The tags and meta pairs of a subset Filter the exporter writes (`"t" in Service.Tags`, `Service.Meta.k == "v"` or `Service.Meta["k-2"] == "v"`, joined with and). */
function parseFilter(filter: string, where: string): { tags: string[]; meta: Record<string, string> } {
  const tags: string[] = [];
  const meta: Record<string, string> = {};
  TERM.lastIndex = 0;
  while (TERM.lastIndex < filter.length) {
    const at = TERM.lastIndex;
    const m = TERM.exec(filter);
    if (m === null) throw new ExportError(`${where}: the filter ${JSON.stringify(filter)} is not tag and meta matches joined with and (at ${at})`);
    const key = m[2] ?? (m[3] === undefined ? undefined : unquote(m[3]));
    if (m[1] !== undefined) tags.push(unquote(m[1]));
    else if (key !== undefined && m[4] !== undefined) meta[key] = unquote(m[4]);
    if (m[5] === '') break;
  }
  return { tags, meta };
}

function retriesOf(dest: Entry): Doc {
  const attempts = typeof dest.NumRetries === 'number' ? dest.NumRetries : 0;
  const codes = Array.isArray(dest.RetryOnStatusCodes) ? (dest.RetryOnStatusCodes as number[]) : [];
  const on = Array.isArray(dest.RetryOn) ? [...(dest.RetryOn as string[])] : [];
  if (dest.RetryOnConnectFailure === true && !on.includes('connect-failure')) on.unshift('connect-failure');
  if (attempts === 0 && on.length === 0 && codes.length === 0) return { attempts: 0 };
  const rest = codes.filter((c) => !(GATEWAY_ERROR_CODES as readonly number[]).includes(c));
  // 1.8.7 writes gateway-error as its three status codes.
  if (!Array.isArray(dest.RetryOn) && GATEWAY_ERROR_CODES.every((c) => codes.includes(c)) && rest.length === 0) {
    on.push('gateway-error');
    return { attempts, retryOn: on };
  }
  if (codes.length > 0) on.push('retriable-status-codes');
  return { attempts, retryOn: on, ...(codes.length > 0 ? { retriableStatusCodes: codes } : {}) };
}

function callOf(dest: Entry, where: string): Doc {
  // RequestTimeout 0 or absent is Envoy's 15 s in Consul.
  const request = dest.RequestTimeout === undefined ? 15_000 : parseGoDuration(dest.RequestTimeout, `${where}.RequestTimeout`);
  return { timeouts: { request: formatDuration(request === 0 ? 15_000 : request) }, retries: retriesOf(dest) };
}

function loadBalancerOf(lb: Entry): Doc {
  const out: Doc = { policy: lb.Policy };
  const least = lb.LeastRequestConfig as Entry | undefined;
  if (typeof least?.ChoiceCount === 'number') out.choiceCount = least.ChoiceCount;
  const ring = lb.RingHashConfig as Entry | undefined;
  if (typeof ring?.MinimumRingSize === 'number') out.minimumRingSize = ring.MinimumRingSize;
  const [hash] = Array.isArray(lb.HashPolicies) ? (lb.HashPolicies as Entry[]) : [];
  if (hash !== undefined) {
    const key = hash.Field === 'query_parameter' ? 'queryParameter' : String(hash.Field);
    out.hashOn = { [key]: hash.FieldValue };
  }
  return out;
}

/** A policy document with one upstream per service found in the entries. */
export function importConsulEntries(entries: readonly Entry[]): PolicyDocument {
  const upstreams: Record<string, Doc> = {};
  let inbound: Doc | undefined;
  // Consul has no error-rate breaker: the imported policy runs none either.
  const upstream = (name: string): Doc => (upstreams[name] ??= { discovery: { registry: 'consul', service: name }, circuitBreaker: { enabled: false } });
  for (const entry of entries) {
    const name = String(entry.Name);
    const where = `${String(entry.Kind)} ${name}`;
    if (entry.Kind === 'service-defaults') {
      // The caller's own entry (written with --service): its inbound timeout and its settings per upstream.
      if (typeof entry.LocalRequestTimeoutMs === 'number') inbound = { timeouts: { request: formatDuration(entry.LocalRequestTimeoutMs) } };
      const overrides = (entry.UpstreamConfig as Entry | undefined)?.Overrides;
      for (const o of Array.isArray(overrides) ? (overrides as Entry[]) : []) upstreamConfig(upstream(String(o.Name)), o, `${where} UpstreamConfig`);
    } else if (entry.Kind === 'service-resolver') {
      const u = upstream(name);
      const discovery = u.discovery as Doc;
      if (entry.ConnectTimeout !== undefined) u.timeouts = { ...(u.timeouts as Doc | undefined), connect: formatDuration(parseGoDuration(entry.ConnectTimeout, `${where} ConnectTimeout`)) };
      const redirect = entry.Redirect as Entry | undefined;
      if (typeof redirect?.Datacenter === 'string') discovery.datacenter = redirect.Datacenter;
      const subsets = (entry.Subsets ?? {}) as Record<string, Entry>;
      const all = subsets[ALL_SUBSET];
      const base = all === undefined ? { tags: [], meta: {} } : parseFilter(text(all.Filter), `${where} Subsets.${ALL_SUBSET}`);
      discovery.tags = base.tags;
      discovery.passingOnly = Object.values(subsets).some((s) => s.OnlyPassing === true);
      const own: Record<string, Doc> = {};
      for (const [subset, s] of Object.entries(subsets)) {
        if (subset === ALL_SUBSET) continue;
        const f = parseFilter(text(s.Filter), `${where} Subsets.${subset}`);
        own[subset] = { tags: f.tags.filter((t) => !base.tags.includes(t)), meta: f.meta };
      }
      if (Object.keys(own).length > 0) u.subsets = own;
      if (entry.LoadBalancer !== undefined) u.loadBalancer = loadBalancerOf(entry.LoadBalancer as Entry);
    } else if (entry.Kind === 'service-splitter') {
      upstream(name).split = ((entry.Splits ?? []) as Entry[]).map((s) => ({ subset: s.ServiceSubset, weight: s.Weight }));
    } else if (entry.Kind === 'service-router') {
      const u = upstream(name);
      const routes = [...((entry.Routes ?? []) as Entry[])];
      const last = routes.at(-1);
      const lastMatch = ((last?.Match as Entry | undefined)?.HTTP ?? {}) as Entry;
      if (last !== undefined && Object.keys(lastMatch).length === 1 && lastMatch.PathPrefix === '/') {
        routes.pop();
        const call = callOf((last.Destination ?? {}) as Entry, `${where} catch-all route`);
        u.timeouts = { ...(u.timeouts as Doc | undefined), ...(call.timeouts as Doc) };
        // What a Consul sidecar does: it retries every method, ignores Retry-After, keeps no budget.
        u.retries = { ...(call.retries as Doc), idempotentOnly: false, maxRetryAfter: '0s', budget: false };
      }
      u.routes = routes.map((route, i) => routeOf(route, `${where} Routes[${i}]`));
    }
  }
  const doc: PolicyDocument = { apiVersion: 'inmesh/v1', upstreams, ...(inbound === undefined ? {} : { inbound }) };
  return doc;
}

/** One UpstreamConfig override: outlier detection and limits of calls to that upstream. */
function upstreamConfig(u: Doc, o: Entry, where: string): void {
  const check = (o.PassiveHealthCheck ?? {}) as Entry;
  const od: Doc = {};
  if (check.EnforcingConsecutive5xx === 0) od.consecutive5xx = 0;
  else if (typeof check.MaxFailures === 'number') od.consecutive5xx = check.MaxFailures;
  if (check.Interval !== undefined) od.interval = formatDuration(parseGoDuration(check.Interval, `${where} Interval`));
  if (typeof check.MaxEjectionPercent === 'number') od.maxEjectionPercent = check.MaxEjectionPercent;
  if (check.BaseEjectionTime !== undefined) od.baseEjectionTime = formatDuration(parseGoDuration(check.BaseEjectionTime, `${where} BaseEjectionTime`));
  u.outlierDetection = od;
  const limits = (o.Limits ?? {}) as Entry;
  const l: Doc = {};
  // Envoy's largest threshold is how the exporter writes "limits off".
  if (limits.MaxPendingRequests === ENVOY_MAX_THRESHOLD || limits.MaxConcurrentRequests === ENVOY_MAX_THRESHOLD) l.enabled = false;
  else {
    if (typeof limits.MaxPendingRequests === 'number') l.maxPendingRequests = limits.MaxPendingRequests;
    if (typeof limits.MaxConcurrentRequests === 'number') l.maxRequests = limits.MaxConcurrentRequests;
  }
  if (typeof limits.MaxConnections === 'number') l.maxConnections = limits.MaxConnections;
  u.limits = l;
}

function routeOf(route: Entry, where: string): Doc {
  const http = ((route.Match as Entry | undefined)?.HTTP ?? {}) as Entry;
  const match: Doc = {};
  if (typeof http.PathExact === 'string') match.path = http.PathExact;
  if (typeof http.PathPrefix === 'string') match.pathPrefix = http.PathPrefix;
  if (Array.isArray(http.Methods)) match.methods = http.Methods;
  if (Array.isArray(http.Header)) {
    match.headers = (http.Header as Entry[]).map((h) => {
      const name = String(h.Name);
      if (h.Exact !== undefined) return { name, exact: h.Exact };
      if (h.Prefix !== undefined) return { name, prefix: h.Prefix };
      if (h.Regex !== undefined) return { name, regex: h.Regex };
      return { name, present: h.Invert !== true };
    });
  }
  const dest = (route.Destination ?? {}) as Entry;
  return {
    match,
    ...callOf(dest, where),
    ...(typeof dest.ServiceSubset === 'string' && dest.ServiceSubset !== '' ? { split: [{ subset: dest.ServiceSubset, weight: 1 }] } : {}),
  };
}
