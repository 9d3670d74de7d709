/**
 * Gateway API exporter: one GAMMA HTTPRoute per upstream, attached to the
 * upstream's Kubernetes Service (`parentRefs` kind Service), with a rule per
 * policy route and a last rule without matches (every request) that carries
 * the upstream's own call policy. Written for the experimental channel (the
 * CRD in test/fixtures/gateway-api-crds/): `timeouts`, `retry` and
 * `sessionPersistence` are Extended support there.
 *
 * HTTPRoute carries routing only: balancing, health, limits and breakers stay
 * in the mesh's own policy resources, and are reported dropped. A subset is a
 * Service of its own, named `<service>-<subset>`, which this exporter does not
 * write (Kubernetes selects pods by labels, not by Consul tags).
 */
import { RESOURCES_NOT_EXPRESSIBLE, scopedReporter } from './report.ts';
import { ExportError } from '../errors.ts';
import type { ResolvedCallPolicy, ResolvedHeaderMatch, ResolvedRoute, ResolvedUpstream, RetryOn } from '../policy/types.ts';
import { gatewayDuration } from './duration.ts';
import { policyFields } from './fields.ts';
import type { ExportedFile, ExportInput, Reporter, TargetExporter } from './types.ts';

const FILE = 'httproutes.yaml';
/** The policy has no port; a backendRef to a Service needs one. */
export const SERVICE_PORT = 80;
/** HTTPRoute allows 16 rules; the last one is the upstream's catch-all. */
const MAX_RULES = 16;
/** A rule name is a DNS subdomain (CRD pattern). */
const RULE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Status codes HTTPRoute retry.codes takes (400-599); implementations must support 500, 502, 503 and 504. */
const CORE_CODES = new Set([500, 502, 503, 504]);
const CONNECTION_CONDITIONS: readonly RetryOn[] = ['connect-failure', 'refused-stream', 'reset'];

const NO_POLICY = 'HTTPRoute carries routing only; balancing, health and limits stay in the mesh\'s own policy resource';
const NO_CONNECTION = 'HTTPRoute has no connection settings';

type Json = Record<string, unknown>;

/** RE2 (and POSIX ERE) escape of a literal. */
const escapeRegex = (text: string): string => text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');

const serviceOf = (u: Readonly<ResolvedUpstream>): string => u.discovery.service ?? u.name;

/** The status codes of `retry.codes` for the retry conditions, and whether that loses anything. */
export function retryCodes(retryOn: readonly RetryOn[], statusCodes: readonly number[]): { codes: number[]; lost: string[] } {
  const codes = new Set<number>();
  const lost: string[] = [];
  for (const condition of retryOn) {
    if (condition === 'gateway-error') [502, 503, 504].forEach((c) => codes.add(c));
    else if (condition === '5xx') for (let c = 500; c <= 599; c++) codes.add(c);
    else if (condition === 'retriable-4xx') codes.add(409);
    else if (condition === 'retriable-status-codes') statusCodes.forEach((c) => codes.add(c));
  }
  const conn = retryOn.filter((c) => CONNECTION_CONDITIONS.includes(c));
  if (conn.length > 0) lost.push(`${conn.join(', ')}: HTTPRoute retry lists status codes only (retrying connection errors is the implementation's choice)`);
  const sorted = [...codes].sort((a, b) => a - b);
  const outside = sorted.filter((c) => c < 400 || c > 599);
  if (outside.length > 0) lost.push(`codes ${outside.join(', ')} are outside the 400-599 that retry.codes takes`);
  const optional = sorted.filter((c) => c >= 400 && c <= 599 && !CORE_CODES.has(c));
  if (optional.length > 0) lost.push(`implementations need support only 500, 502, 503, 504 (${optional.length > 6 ? `${optional.length} other codes` : optional.join(', ')}: optional support)`);
  return { codes: sorted.filter((c) => c >= 400 && c <= 599), lost };
}

// ------------------------------------------------------------------ rules

interface Parts {
  readonly path: string;
  readonly to: string;
}

/** timeouts, retry, sessionPersistence and backendRefs of a rule; reports the call-level fields. */
function ruleAction(u: Readonly<ResolvedUpstream>, call: Readonly<ResolvedCallPolicy>, { path: p, to }: Parts, out: Reporter): Json {
  const rule: Json = {};
  const t = call.timeouts;
  const timeouts: Json = { request: gatewayDuration(t.request) };
  out.exact(`${p}.timeouts.request`, `${to}.timeouts.request${t.request === 0 ? ' "0s" (disables the timeout, as 0 in inmesh)' : ''}`);
  if (t.perTry === 0) {
    timeouts.backendRequest = gatewayDuration(0);
    out.exact(`${p}.timeouts.perTry`, `${to}.timeouts.backendRequest "0s" (no per-attempt timeout, as 0 in inmesh)`);
  } else {
    // The model refuses perTry above a non-zero request, as the CRD's CEL rule does.

    timeouts.backendRequest = gatewayDuration(t.perTry);
    out.exact(`${p}.timeouts.perTry`, `${to}.timeouts.backendRequest`);
  }
  rule.timeouts = timeouts;
  out.dropped(`${p}.timeouts.connect`, NO_CONNECTION);
  out.dropped(`${p}.timeouts.idle`, NO_CONNECTION);

  // Retries.
  const r = call.retries;
  const { codes, lost } = retryCodes(r.retryOn, r.retriableStatusCodes);
  if (r.attempts === 0) {
    const why = 'HTTPRoute retry.attempts is at least 1, so "no retries" cannot be written: the rule has no retry stanza and the implementation\'s default applies (Istio retries twice)';
    out.lossy(`${p}.retries.attempts`, why, `${to} (no retry)`);
    for (const f of ['retryOn', 'retriableStatusCodes', 'backoff.base', 'backoff.max', 'idempotentOnly']) out.dropped(`${p}.retries.${f}`, 'inert: no retries (attempts 0)');
  } else {
    const retry: Json = { attempts: r.attempts, codes, backoff: gatewayDuration(r.backoff.base) };
    rule.retry = retry;
    out.exact(`${p}.retries.attempts`, `${to}.retry.attempts`);
    if (lost.length > 0) out.lossy(`${p}.retries.retryOn`, lost.join('; '), `${to}.retry.codes`);
    else out.exact(`${p}.retries.retryOn`, `${to}.retry.codes`);
    if (r.retryOn.includes('retriable-status-codes')) out.exact(`${p}.retries.retriableStatusCodes`, `${to}.retry.codes`);
    else out.dropped(`${p}.retries.retriableStatusCodes`, 'inert: retryOn has no retriable-status-codes (in inmesh too)');
    out.lossy(`${p}.retries.backoff.base`, 'retry.backoff is a minimum wait between attempts; inmesh waits a random time from 0 (full jitter) growing exponentially', `${to}.retry.backoff`);
    out.dropped(`${p}.retries.backoff.max`, 'HTTPRoute has no backoff cap: implementations choose it');
    if (r.idempotentOnly) out.dropped(`${p}.retries.idempotentOnly`, 'HTTPRoute retries every method: it has no method condition on retries and cannot turn them off (attempts is at least 1)');
    else out.exact(`${p}.retries.idempotentOnly`, `${to}.retry (every method retried)`);
  }
  out.dropped(`${p}.retries.budget.percent`, 'no retry budget in this CRD (HTTPRoute experimental v1.6.1): the experimental XBackendTrafficPolicy retryConstraint is a separate CRD, not given, and a rate rather than a share of requests in flight');
  out.dropped(`${p}.retries.budget.minConcurrency`, 'no retry budget in this CRD (HTTPRoute experimental v1.6.1): the experimental XBackendTrafficPolicy is a separate CRD, not given');
  out.dropped(`${p}.retries.maxBodyBytes`, 'HTTPRoute has no buffer setting');
  out.dropped(`${p}.retries.maxRetryAfter`, 'HTTPRoute has no Retry-After setting');

  // Balancing: only a hash key has a neighbour, session persistence.
  const lb = call.loadBalancer;
  out.dropped(`${p}.loadBalancer.policy`, NO_POLICY);
  for (const f of ['choiceCount', 'minimumRingSize', 'ewmaDecay', 'ewmaDefaultRtt']) out.dropped(`${p}.loadBalancer.${f}`, NO_POLICY);
  const h = lb.hashOn;
  if (h !== undefined) {
    const affinity = 'session persistence pins a client to the backend it reached first (the implementation issues the session), rather than hashing the value onto a ring';
    if (h.cookie !== undefined) {
      rule.sessionPersistence = { type: 'Cookie', sessionName: h.cookie };
      out.lossy(`${p}.loadBalancer.hashOn.cookie`, `${affinity}; and the gateway sets the cookie, which inmesh never does`, `${to}.sessionPersistence (type Cookie)`);
    } else if (h.header !== undefined) {
      rule.sessionPersistence = { type: 'Header', sessionName: h.header };
      out.lossy(`${p}.loadBalancer.hashOn.header`, affinity, `${to}.sessionPersistence (type Header)`);
    } else {
      out.dropped(`${p}.loadBalancer.hashOn.queryParameter`, 'session persistence reads a cookie or a header only');
    }
  }

  // Backends.
  const service = serviceOf(u);
  if (call.split === undefined) {
    rule.backendRefs = [{ group: '', kind: 'Service', name: service, port: SERVICE_PORT }];
  } else {
    rule.backendRefs = call.split.map((s) => ({ group: '', kind: 'Service', name: `${service}-${s.subset}`, port: SERVICE_PORT, weight: s.weight }));
    call.split.forEach((s, i) => {
      out.lossy(`${p}.split.${i}.subset`, `a subset is a Service of its own: ${service}-${s.subset} must exist and select the subset's endpoints (not written here)`, `${to}.backendRefs[${i}].name`);
      out.exact(`${p}.split.${i}.weight`, `${to}.backendRefs[${i}].weight`);
    });
  }
  return rule;
}

function headerMatch(h: Readonly<ResolvedHeaderMatch>, hp: string, to: string, out: Reporter): Json | undefined {
  out.exact(`${hp}.name`, `${to}.headers[].name`);
  const regexSupport = 'type RegularExpression has implementation-specific support and dialect (RE2 in Envoy-based meshes)';
  if (h.exact !== undefined) {
    out.exact(`${hp}.exact`, `${to}.headers[] (type Exact)`);
    return { type: 'Exact', name: h.name, value: h.exact };
  }
  if (h.prefix !== undefined) {
    out.lossy(`${hp}.prefix`, `HTTPRoute has no prefix header match: written as the escaped prefix followed by .*; ${regexSupport}`, `${to}.headers[] (type RegularExpression)`);
    return { type: 'RegularExpression', name: h.name, value: `${escapeRegex(h.prefix)}.*` };
  }
  if (h.regex !== undefined) {
    out.lossy(`${hp}.regex`, regexSupport, `${to}.headers[] (type RegularExpression)`);
    return { type: 'RegularExpression', name: h.name, value: h.regex };
  }
  if (h.present === true) {
    out.lossy(`${hp}.present`, `HTTPRoute has no presence match: written as RegularExpression .*; ${regexSupport}`, `${to}.headers[] (type RegularExpression)`);
    return { type: 'RegularExpression', name: h.name, value: '.*' };
  }
  out.dropped(`${hp}.present`, `HTTPRoute cannot match the absence of a header: the rule also takes requests that carry ${h.name}`);
  return undefined;
}

function ruleMatches(route: Readonly<ResolvedRoute>, p: string, to: string, out: Reporter): Json[] {
  const m = route.match;
  const base: Json = {};
  if (m.path !== undefined) {
    base.path = { type: 'Exact', value: m.path };
    out.exact(`${p}.match.path`, `${to}.matches[].path (type Exact)`);
  } else if (m.pathPrefix !== undefined) {
    base.path = { type: 'PathPrefix', value: m.pathPrefix };
    const why = m.pathPrefix.endsWith('/')
      ? `PathPrefix matches whole segments and ignores a trailing /: it also takes ${m.pathPrefix.replace(/\/+$/, '') || '/'} itself`
      : `PathPrefix matches whole segments: ${m.pathPrefix}x no longer matches, ${m.pathPrefix}/x still does`;
    if (m.pathPrefix === '/') out.exact(`${p}.match.pathPrefix`, `${to}.matches[].path (type PathPrefix)`);
    else out.lossy(`${p}.match.pathPrefix`, why, `${to}.matches[].path (type PathPrefix)`);
  }
  const headers: Json[] = [];
  m.headers.forEach((h, j) => {
    const written = headerMatch(h, `${p}.match.headers.${j}`, `${to}.matches[]`, out);
    if (written !== undefined) headers.push(written);
  });
  if (headers.length > 0) base.headers = headers;
  if (m.methods === undefined || m.methods.length === 0) return [base];
  out.exact(`${p}.match.methods`, `${to}.matches[].method (one match per method)`);
  return m.methods.map((method) => ({ ...base, method }));
}

/** Paths a route can see, for the precedence check: an exact path or a prefix ('' = any). */
function pathOf(route: Readonly<ResolvedRoute>): { exact: boolean; value: string } {
  if (route.match.path !== undefined) return { exact: true, value: route.match.path };
  return { exact: false, value: route.match.pathPrefix ?? '' };
}

function mayOverlap(a: Readonly<ResolvedRoute>, b: Readonly<ResolvedRoute>): boolean {
  const ma = a.match.methods;
  const mb = b.match.methods;
  if (ma !== undefined && mb !== undefined && ma.length > 0 && mb.length > 0 && !ma.some((x) => mb.includes(x))) return false;
  const pa = pathOf(a);
  const pb = pathOf(b);
  if (pa.exact && pb.exact) return pa.value === pb.value;
  if (pa.exact) return pa.value.startsWith(pb.value);
  if (pb.exact) return pb.value.startsWith(pa.value);
  return pa.value.startsWith(pb.value) || pb.value.startsWith(pa.value);
}

/** Gateway API's precedence between two matching rules: exact path, longer prefix, a method, more headers. */
function precedes(a: Readonly<ResolvedRoute>, b: Readonly<ResolvedRoute>): boolean {
  const pa = pathOf(a);
  const pb = pathOf(b);
  if (pa.exact !== pb.exact) return pa.exact;
  if (pa.value.length !== pb.value.length) return pa.value.length > pb.value.length;
  const ma = (a.match.methods?.length ?? 0) > 0;
  const mb = (b.match.methods?.length ?? 0) > 0;
  if (ma !== mb) return ma;
  return a.match.headers.length > b.match.headers.length;
}

function httpRoute(u: Readonly<ResolvedUpstream>, namespace: string, out: Reporter): Json {
  const p = `upstreams.${u.name}`;
  const service = serviceOf(u);
  const file = `${FILE}: HTTPRoute ${u.name}`;
  if (u.routes.length + 1 > MAX_RULES) {
    throw new ExportError(`upstreams.${u.name}.routes: HTTPRoute takes at most ${MAX_RULES} rules, and ${u.routes.length} routes plus the catch-all rule need ${u.routes.length + 1}`);
  }
  out.exact(`${p}.name`, `${file} metadata.name`);
  out.exact(`${p}.discovery.service`, `${file} spec.parentRefs[0].name (GAMMA: the Service the route configures) and rules[].backendRefs[].name`);
  out.dropped(`${p}.discovery.registry`, 'backends are Kubernetes Services; the mesh discovers their endpoints');
  out.dropped(`${p}.discovery.datacenter`, 'one cluster: HTTPRoute has no datacenter');
  out.dropped(`${p}.discovery.endpoints`, 'backends are Services: static endpoints need a Service without selector and its own EndpointSlice');
  out.dropped(`${p}.discovery.file`, 'backends are Services: HTTPRoute has no file-based discovery');
  out.dropped(`${p}.discovery.tags`, `a tag filter is a Service of its own selecting those endpoints; ${service} is used as it is`);
  out.lossy(`${p}.discovery.passingOnly`, 'Kubernetes readiness decides which endpoints take traffic, with no warning state', `${file} (the Service's ready endpoints)`);
  for (const [name, subset] of Object.entries(u.subsets)) {
    const why = `a subset is a Service of its own, ${service}-${name}, whose selector must pick these endpoints (not written here: Kubernetes selects by labels, not Consul tags)`;
    if (subset.tags.length > 0) out.dropped(`${p}.subsets.${name}.tags`, why);
    for (const key of Object.keys(subset.meta)) out.dropped(`${p}.subsets.${name}.meta.${key}`, why);
  }

  const rules: Json[] = [];
  const used = new Set<string>();
  u.routes.forEach((route, i) => {
    const rp = `${p}.routes.${i}`;
    const to = `${file} spec.rules[${i}]`;
    const rule: Json = {};
    const overtaken = u.routes.slice(0, i).filter((earlier) => mayOverlap(earlier, route) && precedes(route, earlier));
    const nameOk = RULE_NAME.test(route.name) && !used.has(route.name);
    if (nameOk) {
      rule.name = route.name;
      used.add(route.name);
    }
    if (overtaken.length > 0) {
      out.lossy(
        `${rp}.name`,
        `Gateway API picks among matching rules by precedence (exact path, longer prefix, method, more headers), not in order: this rule wins over ${overtaken.map((r) => r.name).join(', ')} where both match`,
        `${to}${nameOk ? '.name' : ''}`,
      );
    } else if (nameOk) {
      out.exact(`${rp}.name`, `${to}.name`);
    } else {
      out.dropped(`${rp}.name`, 'a rule name must be a unique DNS subdomain (lower case, digits, - and .)');
    }
    rule.matches = ruleMatches(route, rp, to, out);
    rules.push({ ...rule, ...ruleAction(u, route, { path: rp, to }, out) });
  });
  // The upstream's own call policy: a rule without matches takes every request no other rule takes.
  const catchAll = `${file} spec.rules[${u.routes.length}] (no matches: every other request)`;
  rules.push(ruleAction(u, u, { path: p, to: catchAll }, out));

  out.droppedUnder(`${p}.outlierDetection`, NO_POLICY);
  out.droppedUnder(`${p}.limits`, NO_POLICY);
  out.droppedUnder(`${p}.circuitBreaker`, 'no sidecar mesh has an error-rate breaker; HTTPRoute carries routing only');
  out.droppedUnder(`${p}.rateLimit`, 'HTTPRoute has no rate limit');

  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: u.name, namespace },
    spec: { parentRefs: [{ group: '', kind: 'Service', name: service }], rules },
  };
}

function exportGatewayApi(input: ExportInput, report: Reporter): readonly ExportedFile[] {
  const out = scopedReporter(report, policyFields(input.policy));
  const routes = Object.values(input.policy.upstreams).map((u) => httpRoute(u, input.namespace, out));
  report.droppedUnder('defaults', 'Gateway API has no policy defaults: each HTTPRoute carries its resolved values, and a Service with no upstream entry gets the mesh\'s own defaults');
  report.droppedUnder('resources', RESOURCES_NOT_EXPRESSIBLE);
  if (input.service !== undefined) report.droppedUnder('inbound', 'HTTPRoute configures calls to a Service, not the server side of the caller\'s own service');
  return [
    {
      name: FILE,
      format: 'yaml',
      scope:
        `every caller of each Service: GAMMA applies an HTTPRoute in the Service's own namespace (here ${input.namespace}, parentRefs without a namespace) to all its callers; ` +
        `moved to a caller's namespace with parentRefs[].namespace set to the Service's, it applies to callers in that namespace only. backendRefs use port ${SERVICE_PORT} (the policy has no ports)`,
      documents: routes,
    },
  ];
}

export const gatewayApiExporter: TargetExporter = {
  target: 'gateway-api',
  // The HTTPRoute CRD of Gateway API v1.6 (experimental channel), as in test/fixtures/gateway-api-crds/.
  versions: ['v1.6-experimental'],
  export: exportGatewayApi,
};
