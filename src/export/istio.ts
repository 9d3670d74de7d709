/**
 * Istio exporter: one file per upstream holding a DestinationRule (connection
 * pool, load balancer, outlier detection, retry budget, subsets) and a
 * VirtualService (routes with their matches, timeouts, retries and weighted
 * destinations), networking.istio.io. Every value is written explicitly,
 * since Istio's defaults differ from the model's (LEAST_REQUEST balancing, no
 * request timeout, 2 retries, panic threshold 0).
 *
 * Where Istio reads a value differently the exporter writes Istio's form and
 * says so in the report: `0s` is refused by the CRD's CEL rules (a zero
 * request or per-try timeout is written as no field, Istio's "none");
 * `http1MaxPendingRequests: 0` means unlimited in Istio (the model's 0, no
 * queue, becomes 1); `maxEjectionPercent: 0` means 10 % in Istio (written as
 * 1); the int32 pool fields take the model's "limits off" as 0 (Istio's unset,
 * Envoy's 2^32-1) and cap larger values at 2^31-1.
 *
 * Consul tags and meta become pod labels: a meta pair `k: v` is the label
 * `k: v` (exact when both are valid label syntax); a tag `t` becomes the label
 * `t: "true"` (a convention: Kubernetes labels have values, Consul tags do not,
 * so pods must be labelled to match; reported lossy).
 */
import { RESOURCES_NOT_EXPRESSIBLE, scopedReporter } from './report.ts';
import { ExportError } from '../errors.ts';
import { POLICY_DEFAULTS as D } from '../policy/defaults.ts';
import type {
  ResolvedCallPolicy,
  ResolvedHeaderMatch,
  ResolvedLoadBalancer,
  ResolvedPolicy,
  ResolvedSplitTarget,
  ResolvedUpstream,
} from '../policy/types.ts';
import { protoDuration } from './duration.ts';
import { policyFields } from './fields.ts';
import type { ExportedFile, ExportInput, Reporter, TargetExporter } from './types.ts';

const INT32_MAX = 2_147_483_647;
/** Envoy's max_ejection_time default, which Istio leaves in place (it has no field for it). */
const ENVOY_MAX_EJECTION_TIME = 300_000;
/** Envoy's retry back-off cap when only the base is given (Istio's single `backoff`). */
const ENVOY_BACKOFF_CAP_FACTOR = 10;

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

type Doc = Record<string, unknown>;

/** A Kubernetes object name from an upstream or route name. */
export function k8sName(name: string): string {
  const out = name.toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  if (out === '') throw new ExportError(`istio: ${JSON.stringify(name)} gives no valid Kubernetes name`);
  return out.slice(0, 253);
}

/** Istio subset labels for a tag/meta filter; `lossy` says why when the mapping is a convention. */
function subsetLabels(tags: readonly string[], meta: Readonly<Record<string, string>>, field: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const tag of tags) {
    if (!LABEL_NAME.test(tag)) throw new ExportError(`istio: ${field}: tag ${JSON.stringify(tag)} cannot be a Kubernetes label name`);
    labels[tag] = 'true';
  }
  for (const [k, v] of Object.entries(meta)) {
    if (!LABEL_KEY.test(k) || !LABEL_VALUE.test(v)) {
      throw new ExportError(`istio: ${field}: meta ${JSON.stringify(k)}: ${JSON.stringify(v)} is not a valid Kubernetes label`);
    }
    labels[k] = v;
  }
  return labels;
}

const TAG_LOSSY = 'a Consul tag has no value and a Kubernetes label does: tag `t` is written as the label `t: "true"`, so pods must carry that label';

/** Relative weights as Istio percentages (integers adding to 100), by largest remainder. */
export function percentWeights(weights: readonly number[]): { percents: number[]; exact: boolean } {
  const total = weights.reduce((a, b) => a + b, 0);
  if (total <= 0) throw new ExportError('istio: a split whose weights add up to 0 cannot be written');
  const raw = weights.map((w) => (w * 100) / total);
  const percents = raw.map(Math.floor);
  let left = 100 - percents.reduce((a, b) => a + b, 0);
  const order = raw.map((r, i) => ({ i, rest: r - Math.floor(r) })).sort((a, b) => b.rest - a.rest || a.i - b.i);
  for (const { i } of order) {
    if (left <= 0) break;
    percents[i] = (percents[i] ?? 0) + 1;
    left -= 1;
  }
  return { percents, exact: raw.every((r) => Number.isInteger(r)) };
}

function int32Pool(value: number, field: string, to: string, r: Reporter, zeroMeans: 'unlimited' | 'none'): number {
  if (value === Infinity) {
    r.exact(field, `${to}: 0, Istio's unset, which Envoy reads as 2^32-1 (limits off)`);
    return 0;
  }
  if (value === 0 && zeroMeans === 'none') {
    r.lossy(field, "0 (no queue) reads as unlimited in Istio: written as 1, the smallest queue Istio can express", to);
    return 1;
  }
  if (value > INT32_MAX) {
    r.lossy(field, `Istio's field is int32: ${value} is written as ${INT32_MAX}`, to);
    return INT32_MAX;
  }
  r.exact(field, to);
  return value;
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The `loadBalancer` of a trafficPolicy, reporting each field under `prefix`. */
function loadBalancer(lb: ResolvedLoadBalancer, prefix: string, to: string, r: Reporter): Doc {
  const unused = (field: keyof ResolvedLoadBalancer, def: unknown): void => {
    const f = `${prefix}.${field}`;
    if (sameValue(lb[field], def)) r.exact(f, `none: unused by ${lb.policy}, as in Istio`);
    else r.dropped(f, `used only by another balancer than ${lb.policy}; Istio has no place for it here`);
  };
  let out: Doc;
  switch (lb.policy) {
    case 'round_robin':
    case 'random':
      r.exact(`${prefix}.policy`, `${to}.simple`);
      out = { simple: lb.policy === 'random' ? 'RANDOM' : 'ROUND_ROBIN' };
      break;
    case 'least_request':
      r.exact(`${prefix}.policy`, `${to}.simple`);
      out = { simple: 'LEAST_REQUEST' };
      break;
    case 'peak_ewma':
      r.lossy(`${prefix}.policy`, 'Istio has no peak EWMA balancer: written as its nearest, LEAST_REQUEST', `${to}.simple`);
      out = { simple: 'LEAST_REQUEST' };
      break;
    case 'ring_hash': {
      const h = lb.hashOn;
      const hash: Doc = {};
      if (h?.header !== undefined) {
        hash['httpHeaderName'] = h.header.toLowerCase();
        r.exact(`${prefix}.hashOn.header`, `${to}.consistentHash.httpHeaderName`);
      } else if (h?.cookie !== undefined) {
        // No ttl: Istio then hashes on the cookie without generating it, as the model does.
        hash['httpCookie'] = { name: h.cookie };
        r.exact(`${prefix}.hashOn.cookie`, `${to}.consistentHash.httpCookie.name`);
      } else if (h?.queryParameter !== undefined) {
        hash['httpQueryParameterName'] = h.queryParameter;
        r.exact(`${prefix}.hashOn.queryParameter`, `${to}.consistentHash.httpQueryParameterName`);
      }
      if (Object.keys(hash).length === 0) {
        // A ring keyed by a random value per request spreads like random picks.
        r.lossy(`${prefix}.policy`, 'a ring hash without hashOn keys each request randomly: written as simple RANDOM', `${to}.simple`);
        r.dropped(`${prefix}.minimumRingSize`, 'no ring in Istio without a hash key');
        out = { simple: 'RANDOM' };
      } else {
        hash['ringHash'] = { minimumRingSize: lb.minimumRingSize };
        r.exact(`${prefix}.policy`, `${to}.consistentHash`);
        r.exact(`${prefix}.minimumRingSize`, `${to}.consistentHash.ringHash.minimumRingSize`);
        out = { consistentHash: hash };
      }
      break;
    }
  }
  if (lb.policy === 'least_request') {
    if (lb.choiceCount === 2) r.exact(`${prefix}.choiceCount`, `${to}.simple (Istio always compares 2)`);
    else r.lossy(`${prefix}.choiceCount`, `Istio always compares 2 candidates, not ${lb.choiceCount}`, `${to}.simple`);
  } else unused('choiceCount', D.loadBalancer.choiceCount);
  if (lb.policy !== 'ring_hash') {
    unused('minimumRingSize', D.loadBalancer.minimumRingSize);
    for (const k of ['header', 'cookie', 'queryParameter'] as const) r.dropped(`${prefix}.hashOn.${k}`, `used only by ring_hash, not by ${lb.policy}`);
  }
  if (lb.policy === 'peak_ewma') {
    r.dropped(`${prefix}.ewmaDecay`, 'Istio has no peak EWMA balancer');
    r.dropped(`${prefix}.ewmaDefaultRtt`, 'Istio has no peak EWMA balancer');
  } else {
    unused('ewmaDecay', D.loadBalancer.ewmaDecay);
    unused('ewmaDefaultRtt', D.loadBalancer.ewmaDefaultRtt);
  }
  return out;
}

/** Settings Istio keeps per destination (cluster), not per route. */
function clusterSettings(p: ResolvedCallPolicy): unknown {
  return { lb: p.loadBalancer, connect: p.timeouts.connect, idle: p.timeouts.idle, budget: p.retries.budget };
}

/** A whole trafficPolicy for an upstream (or for a route's own subset, `call` then being the route's policy). */
function trafficPolicy(u: ResolvedUpstream, call: ResolvedCallPolicy, prefix: string, to: string, r: Reporter): Doc {
  const up = `upstreams.${u.name}`;
  const tcp: Doc = {
    connectTimeout: protoDuration(call.timeouts.connect),
    maxConnections: int32Pool(u.limits.maxConnections, `${up}.limits.maxConnections`, `${to}.connectionPool.tcp.maxConnections`, r, 'unlimited'),
  };
  r.exact(`${prefix}.timeouts.connect`, `${to}.connectionPool.tcp.connectTimeout`);
  const http: Doc = {
    http1MaxPendingRequests: int32Pool(u.limits.maxPendingRequests, `${up}.limits.maxPendingRequests`, `${to}.connectionPool.http.http1MaxPendingRequests`, r, 'none'),
    http2MaxRequests: int32Pool(u.limits.maxRequests, `${up}.limits.maxRequests`, `${to}.connectionPool.http.http2MaxRequests`, r, 'unlimited'),
    maxRequestsPerConnection: int32Pool(
      u.limits.maxRequestsPerConnection,
      `${up}.limits.maxRequestsPerConnection`,
      `${to}.connectionPool.http.maxRequestsPerConnection (0 = unlimited there too)`,
      r,
      'unlimited',
    ),
    idleTimeout: protoDuration(call.timeouts.idle),
  };
  r.exact(`${prefix}.timeouts.idle`, `${to}.connectionPool.http.idleTimeout`);

  const o = u.outlierDetection;
  const od = `${up}.outlierDetection`;
  const outlier: Doc = {
    consecutive5xxErrors: o.consecutive5xx,
    consecutiveGatewayErrors: o.consecutiveGatewayErrors,
    interval: protoDuration(o.interval),
    baseEjectionTime: protoDuration(o.baseEjectionTime),
    maxEjectionPercent: o.maxEjectionPercent === 0 ? 1 : o.maxEjectionPercent,
    minHealthPercent: o.panicThresholdPercent,
  };
  r.exact(`${od}.consecutive5xx`, `${to}.outlierDetection.consecutive5xxErrors (0 = off there too)`);
  r.exact(`${od}.consecutiveGatewayErrors`, `${to}.outlierDetection.consecutiveGatewayErrors (0 = off there too)`);
  r.exact(`${od}.interval`, `${to}.outlierDetection.interval`);
  r.exact(`${od}.baseEjectionTime`, `${to}.outlierDetection.baseEjectionTime`);
  // The model always lets one endpoint be ejected; Envoy does so only with always_eject_one_host, which Istio does not set.
  const noOneHost = 'Istio cannot set always_eject_one_host: while the percent of the endpoints is less than one endpoint, Envoy ejects none, where the model ejects one';
  if (o.maxEjectionPercent === 0) {
    r.lossy(`${od}.maxEjectionPercent`, `Istio reads 0 as its default of 10 %: written as 1, the smallest it can express; ${noOneHost}`, `${to}.outlierDetection.maxEjectionPercent`);
  } else if (o.maxEjectionPercent === 100) r.exact(`${od}.maxEjectionPercent`, `${to}.outlierDetection.maxEjectionPercent`);
  else r.lossy(`${od}.maxEjectionPercent`, noOneHost, `${to}.outlierDetection.maxEjectionPercent`);
  r.exact(`${od}.panicThresholdPercent`, `${to}.outlierDetection.minHealthPercent (passed straight to Envoy's healthy_panic_threshold, 0 = never there too; Istio forces 0 for services it sends unready endpoints to)`);
  if (o.maxEjectionTime === ENVOY_MAX_EJECTION_TIME) r.exact(`${od}.maxEjectionTime`, "none: Istio has no field; Envoy's default of 300 s applies");
  else r.dropped(`${od}.maxEjectionTime`, "Istio has no ejection-time cap: Envoy's 300 s applies");

  const policy: Doc = {
    loadBalancer: loadBalancer(call.loadBalancer, `${prefix}.loadBalancer`, `${to}.loadBalancer`, r),
    connectionPool: { tcp, http },
    outlierDetection: outlier,
  };
  const budget = call.retries.budget;
  if (budget !== undefined) {
    policy['retryBudget'] = { percent: budget.percent, minRetryConcurrency: budget.minConcurrency };
    r.exact(`${prefix}.retries.budget.percent`, `${to}.retryBudget.percent`);
    r.exact(`${prefix}.retries.budget.minConcurrency`, `${to}.retryBudget.minRetryConcurrency`);
  }
  return policy;
}

function retryOnString(call: ResolvedCallPolicy): string {
  const parts: string[] = [...call.retries.retryOn];
  if (call.retries.retryOn.includes('retriable-status-codes')) parts.push(...call.retries.retriableStatusCodes.map(String));
  return parts.join(',');
}

/** The timeout and retries of one http[] entry, reporting the call-policy fields under `prefix`. */
function callFields(call: ResolvedCallPolicy, prefix: string, to: string, r: Reporter): Doc {
  const out: Doc = {};
  const t = call.timeouts;
  const rt = call.retries;
  if (t.request > 0) {
    out['timeout'] = protoDuration(t.request);
    r.exact(`${prefix}.timeouts.request`, `${to}.timeout`);
  } else r.exact(`${prefix}.timeouts.request`, `${to}.timeout left out: 0s is refused by Istio's CEL rule, and no timeout is Istio's default`);

  const retries: Doc = { attempts: rt.attempts };
  r.exact(`${prefix}.retries.attempts`, `${to}.retries.attempts (0 = no retries there too)`);
  if (rt.retryOn.length > 0) retries['retryOn'] = retryOnString(call);
  r.exact(`${prefix}.retries.retryOn`, `${to}.retries.retryOn`);
  if (rt.retryOn.includes('retriable-status-codes')) r.exact(`${prefix}.retries.retriableStatusCodes`, `${to}.retries.retryOn (the codes listed)`);
  else r.dropped(`${prefix}.retries.retriableStatusCodes`, 'unused: retryOn has no retriable-status-codes, and Istio would retry listed codes');
  if (t.perTry > 0) {
    retries['perTryTimeout'] = protoDuration(t.perTry);
    if (rt.attempts === 0 && (t.request === 0 || t.perTry < t.request)) {
      r.lossy(`${prefix}.timeouts.perTry`, 'Istio applies perTryTimeout only when it retries: with attempts 0 the one try is bounded by the request timeout alone', `${to}.retries.perTryTimeout`);
    } else r.exact(`${prefix}.timeouts.perTry`, `${to}.retries.perTryTimeout`);
  } else r.exact(`${prefix}.timeouts.perTry`, `${to}.retries.perTryTimeout left out: 0s is refused by Istio's CEL rule, and none is Istio's default`);
  retries['backoff'] = protoDuration(rt.backoff.base);
  r.exact(`${prefix}.retries.backoff.base`, `${to}.retries.backoff`);
  if (rt.backoff.max === rt.backoff.base * ENVOY_BACKOFF_CAP_FACTOR) r.exact(`${prefix}.retries.backoff.max`, `${to}.retries.backoff (Envoy caps at 10 × base)`);
  else r.dropped(`${prefix}.retries.backoff.max`, `Istio takes one backoff value and Envoy caps it at 10 × base (${rt.backoff.base * ENVOY_BACKOFF_CAP_FACTOR} ms)`);
  out['retries'] = retries;

  if (rt.idempotentOnly) r.dropped(`${prefix}.retries.idempotentOnly`, 'Istio retries every method the route matches: give the retrying route only idempotent methods');
  else r.exact(`${prefix}.retries.idempotentOnly`, `${to}.retries (Istio retries every method)`);
  r.dropped(`${prefix}.retries.maxBodyBytes`, 'Istio sets no per-route buffer limit');
  if (rt.maxRetryAfter === 0) r.exact(`${prefix}.retries.maxRetryAfter`, "none: Istio ignores Retry-After, as 0 does");
  else r.dropped(`${prefix}.retries.maxRetryAfter`, 'Istio does not honour Retry-After');
  return out;
}

function headerMatches(headers: readonly Readonly<ResolvedHeaderMatch>[], prefix: string, to: string, r: Reporter): { headers: Doc; without: Doc } {
  const withHeaders: Doc = {};
  const without: Doc = {};
  headers.forEach((h, i) => {
    const name = h.name.toLowerCase();
    const f = `${prefix}.${i}`;
    r.exact(`${f}.name`, `${to}.headers/withoutHeaders key (lower case: header names are case-insensitive)`);
    if (h.exact !== undefined) {
      withHeaders[name] = { exact: h.exact };
      r.exact(`${f}.exact`, `${to}.headers.${name}.exact`);
    } else if (h.prefix !== undefined) {
      withHeaders[name] = { prefix: h.prefix };
      r.exact(`${f}.prefix`, `${to}.headers.${name}.prefix`);
    } else if (h.regex !== undefined) {
      // Istio matches the whole value with RE2 (Envoy safe_regex), as the model does.
      withHeaders[name] = { regex: h.regex };
      r.exact(`${f}.regex`, `${to}.headers.${name}.regex`);
    } else if (h.present === true) {
      withHeaders[name] = { regex: '.*' };
      r.exact(`${f}.present`, `${to}.headers.${name}.regex ".*"`);
    } else if (h.present === false) {
      without[name] = { regex: '.*' };
      r.exact(`${f}.present`, `${to}.withoutHeaders.${name}.regex ".*"`);
    }
  });
  return { headers: withHeaders, without };
}

interface Built {
  readonly dr: Doc;
  readonly vs: Doc;
  readonly scope: string;
}

function exportUpstream(u: ResolvedUpstream, input: ExportInput, r: Reporter): Built {
  const up = `upstreams.${u.name}`;
  const ns = input.namespace;
  const service = u.discovery.service ?? u.name;
  const host = `${service}.${ns}.svc.cluster.local`;
  const name = k8sName(u.name);

  if (name === u.name) r.exact(`${up}.name`, 'DestinationRule/VirtualService metadata.name');
  else r.lossy(`${up}.name`, `not a valid Kubernetes name: written as ${name}`, 'DestinationRule/VirtualService metadata.name');
  // Discovery: Istio takes endpoints from Kubernetes.
  r.exact(`${up}.discovery.service`, 'DestinationRule/VirtualService host (the Kubernetes Service of that name)');
  r.dropped(`${up}.discovery.registry`, 'Istio discovers endpoints from Kubernetes (or a ServiceEntry): the Service must exist there');
  r.dropped(`${up}.discovery.datacenter`, 'one flat mesh: multi-cluster is not policy in Istio');
  r.dropped(`${up}.discovery.endpoints`, 'a ServiceEntry lists static endpoints, not a DestinationRule');
  r.dropped(`${up}.discovery.file`, 'Istio has no file-based discovery');
  if (u.discovery.passingOnly) r.lossy(`${up}.discovery.passingOnly`, "Kubernetes readiness stands in for Consul's passing checks", 'Istio sends only to ready endpoints');
  else r.dropped(`${up}.discovery.passingOnly`, 'Istio sends only to ready endpoints: no way to include failing ones');
  const baseLabels = subsetLabels(u.discovery.tags, {}, `${up}.discovery.tags`);
  r.lossy(`${up}.discovery.tags`, `added to every subset's labels (${TAG_LOSSY}); traffic not split over subsets reaches every endpoint of the Service`, 'DestinationRule subsets[].labels');

  const drTo = 'DestinationRule spec.trafficPolicy';
  const spec: Doc = { host, trafficPolicy: trafficPolicy(u, u, up, drTo, r) };
  const subsets: Doc[] = [];
  for (const [sname, s] of Object.entries(u.subsets)) {
    subsets.push({ name: sname, labels: { ...baseLabels, ...subsetLabels(s.tags, s.meta, `${up}.subsets.${sname}`) } });
    r.lossy(`${up}.subsets.${sname}.tags`, TAG_LOSSY, `DestinationRule subsets[${sname}].labels`);
    for (const k of Object.keys(s.meta)) r.exact(`${up}.subsets.${sname}.meta.${k}`, `DestinationRule subsets[${sname}].labels.${k}`);
  }

  const destinations = (split: readonly Readonly<ResolvedSplitTarget>[] | undefined, subset: string | undefined, prefix: string, to: string): Doc[] => {
    if (split === undefined) return [{ destination: subset === undefined ? { host } : { host, subset }, weight: 100 }];
    const { percents } = percentWeights(split.map((s) => s.weight));
    return split.map((s, i) => {
      r.exact(`${prefix}.${i}.subset`, `${to}.route[${i}].destination.subset`);
      const total = split.reduce((a, b) => a + b.weight, 0);
      const percent = percents[i] ?? 0;
      if (total === 100) r.exact(`${prefix}.${i}.weight`, `${to}.route[${i}].weight (percent)`);
      else if ((s.weight * 100) % total === 0) {
        r.lossy(`${prefix}.${i}.weight`, `the same share, but Istio weights are percentages adding to 100: weight ${s.weight} of ${total} is written as ${percent}`, `${to}.route[${i}].weight`);
      } else {
        r.lossy(`${prefix}.${i}.weight`, `Istio weights are integer percentages adding to 100: ${s.weight} of ${total} is rounded to ${percent} %`, `${to}.route[${i}].weight`);
      }
      return { destination: { host, subset: s.subset }, weight: percents[i] ?? 0 };
    });
  };

  // The exporter's own http[] and subset names must not collide with the policy's (the importer reads them back by name).
  for (const route of u.routes) {
    if (route.name === 'default' || route.name === 'other-callers') {
      throw new ExportError(`istio: ${up}.routes: a route named ${JSON.stringify(route.name)} collides with the VirtualService entry the exporter writes; rename the route`);
    }
  }
  for (const sname of Object.keys(u.subsets)) {
    if (sname.startsWith('route-')) throw new ExportError(`istio: ${up}.subsets.${sname}: names starting with "route-" are the exporter's own route subsets; rename the subset`);
  }
  const sourceLabels = input.service === undefined ? undefined : { app: input.service };
  const http: Doc[] = [];
  u.routes.forEach((route, i) => {
    const rp = `${up}.routes.${i}`;
    const to = `VirtualService http[${route.name}]`;
    r.exact(`${rp}.name`, `${to}.name`);
    const m = route.match;
    const { headers, without } = headerMatches(m.headers, `${rp}.match.headers`, `${to}.match[]`, r);
    const base: Doc = {};
    if (m.path !== undefined) {
      base['uri'] = { exact: m.path };
      r.exact(`${rp}.match.path`, `${to}.match[].uri.exact`);
    }
    if (m.pathPrefix !== undefined) {
      base['uri'] = { prefix: m.pathPrefix };
      r.exact(`${rp}.match.pathPrefix`, `${to}.match[].uri.prefix`);
    }
    if (Object.keys(headers).length > 0) base['headers'] = headers;
    if (Object.keys(without).length > 0) base['withoutHeaders'] = without;
    if (sourceLabels !== undefined) base['sourceLabels'] = sourceLabels;
    const match = m.methods === undefined ? [base] : m.methods.map((method) => ({ method: { exact: method }, ...base }));
    if (m.methods !== undefined) r.exact(`${rp}.match.methods`, `${to}.match[].method.exact (one match per method)`);

    // Settings Istio keeps per destination: the route's own subset carries them when they differ.
    let ownSubset: string | undefined;
    if (sameValue(clusterSettings(route), clusterSettings(u))) {
      const same = `the upstream's ${drTo}`;
      r.exact(`${rp}.timeouts.connect`, same);
      r.exact(`${rp}.timeouts.idle`, same);
      // The same verdicts as the upstream's balancer fields (a choiceCount Istio cannot write is lossy here too).
      loadBalancer(route.loadBalancer, `${rp}.loadBalancer`, `${same}.loadBalancer`, r);
      r.exact(`${rp}.retries.budget.percent`, same);
      r.exact(`${rp}.retries.budget.minConcurrency`, same);
    } else if (route.split === undefined) {
      ownSubset = `route-${k8sName(route.name)}`;
      const subTo = `DestinationRule subsets[${ownSubset}].trafficPolicy`;
      // Reported per field by trafficPolicy under the route's prefix; the upstream-level fields it repeats are reported once already.
      const quiet: Reporter = {
        exact: (f, to2) => f.startsWith(`${rp}.`) && r.exact(f, to2),
        lossy: (f, why, to2) => f.startsWith(`${rp}.`) && r.lossy(f, why, to2),
        dropped: (f, why) => f.startsWith(`${rp}.`) && r.dropped(f, why),
        droppedUnder: (prefix, why) => r.droppedUnder(prefix, why),
      };
      subsets.push({ name: ownSubset, ...(Object.keys(baseLabels).length > 0 ? { labels: { ...baseLabels } } : {}), trafficPolicy: trafficPolicy(u, route, rp, subTo, quiet) });
    } else {
      const why = 'Istio keeps balancing, connection and budget settings per destination: a route with a split uses the subsets\' settings (the upstream\'s)';
      r.droppedUnder(`${rp}.loadBalancer`, why);
      r.droppedUnder(`${rp}.timeouts.connect`, why);
      r.droppedUnder(`${rp}.timeouts.idle`, why);
      r.droppedUnder(`${rp}.retries.budget`, why);
    }
    http.push({
      name: route.name,
      match,
      route: destinations(route.split, ownSubset, `${rp}.split`, to),
      ...callFields(route, rp, to, r),
    });
  });
  const defaultTo = 'VirtualService http[default]';
  const last: Doc = { name: 'default' };
  if (sourceLabels !== undefined) last['match'] = [{ sourceLabels }];
  http.push({ ...last, route: destinations(u.split, undefined, `${up}.split`, defaultTo), ...callFields(u, up, defaultTo, r) });
  if (sourceLabels !== undefined) {
    // Other callers matching no entry would get a 404 from their sidecar: send them on with Istio's defaults.
    http.push({ name: 'other-callers', route: [{ destination: { host } }] });
  }

  if (subsets.length > 0) spec['subsets'] = subsets;
  const meta = { name, namespace: ns };
  const dr: Doc = { apiVersion: `networking.istio.io/${input.targetVersion}`, kind: 'DestinationRule', metadata: meta, spec };
  const vs: Doc = {
    apiVersion: `networking.istio.io/${input.targetVersion}`,
    kind: 'VirtualService',
    metadata: meta,
    spec: { hosts: [host], http },
  };
  let scope: string;
  if (input.service === undefined) {
    spec['exportTo'] = ['*'];
    (vs['spec'] as Doc)['exportTo'] = ['*'];
    scope = `every caller of ${host} in the mesh (exportTo "*"), not only the policy's callers`;
  } else {
    spec['exportTo'] = ['.'];
    spec['workloadSelector'] = { matchLabels: { app: input.service } };
    (vs['spec'] as Doc)['exportTo'] = ['.'];
    scope = `workloads labelled app=${input.service} in namespace ${ns} (DestinationRule workloadSelector, VirtualService sourceLabels); other callers in ${ns} keep Istio's defaults`;
  }
  return { dr, vs, scope };
}

function exportIstio(input: ExportInput, report: Reporter): ExportedFile[] {
  const policy: ResolvedPolicy = input.policy;
  const r = scopedReporter(report, policyFields(policy));
  report.droppedUnder(
    'defaults',
    "defaults apply to destinations not listed under upstreams; a wildcard-host DestinationRule would impose them on every caller of every service: each listed upstream carries the resolved values instead",
  );
  report.droppedUnder('resources', RESOURCES_NOT_EXPRESSIBLE);
  const files: ExportedFile[] = [];
  for (const u of Object.values(policy.upstreams)) {
    const up = `upstreams.${u.name}`;
    const built = exportUpstream(u, input, r);
    r.droppedUnder(`${up}.circuitBreaker`, "Istio has no error-rate breaker (its circuit breaking is the connection-pool limits; outlier detection ejects hosts)");
    r.droppedUnder(`${up}.rateLimit`, 'Istio needs an EnvoyFilter (local_ratelimit on the outbound cluster; shared: an external rate limit service)');
    files.push({ name: `${k8sName(u.name)}.yaml`, documents: [built.dr, built.vs], format: 'yaml', scope: built.scope });
  }
  report.droppedUnder('inbound', "Istio needs a Sidecar resource (inbound connection pool and timeout) and an EnvoyFilter (inbound rate limit); inmesh does not write them");
  return files;
}

export const istioExporter: TargetExporter = {
  target: 'istio',
  // networking.istio.io served versions in the CRD; v1 (the storage version) first, the default.
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  export: exportIstio,
};
