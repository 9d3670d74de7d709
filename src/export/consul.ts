/**
 * The Consul exporter: a resolved policy as Consul config entries, for each
 * destination service in the order Consul needs them (service-defaults with
 * protocol http, service-resolver, service-splitter, service-router), one entry
 * per JSON file (the form `consul config write` and `PUT /v1/config` take).
 *
 * Config entries are set per destination service and apply to every caller of
 * it; only `UpstreamConfig` (1.10+) and the inbound settings live in the caller's
 * own service-defaults, written when `--service` names the caller.
 *
 * Consul reads several zero values as "Envoy's default" rather than "none":
 * - `RequestTimeout` 0 is Envoy's 15 s route timeout, so the model's "no
 *   deadline" is written as the model's longest duration and reported lossy;
 * - `NumRetries` 0 with a retry condition still retries once (Envoy's
 *   num_retries default), so no retries is written as no condition at all;
 * - PassiveHealthCheck `MaxFailures` 0 is Envoy's 5, so "no 5xx ejection" is
 *   written as `EnforcingConsecutive5xx: 0`.
 * Fields a version lacks are reported `dropped: needs Consul X`; where the model
 * value equals the Envoy default that Consul leaves in place, it is exact.
 */
import { RESOURCES_NOT_EXPRESSIBLE } from './report.ts';
import { isDeepStrictEqual } from 'node:util';
import { ExportError } from '../errors.ts';
import { MAX_DURATION_MS } from '../policy/duration.ts';
import { parsePolicy, resolvePolicy } from '../policy/index.ts';
import type { ResolvedCallPolicy, ResolvedLoadBalancer, ResolvedRetries, ResolvedUpstream, RetryOn } from '../policy/types.ts';
import { applyConsul } from './consul-apply.ts';
import { CONSUL_VERSIONS, FEATURE_SINCE, type ConsulFeatures } from './consul-versions.ts';
import { goDuration } from './duration.ts';
import { policyFields } from './fields.ts';
import type { ExportedFile, ExportInput, Reporter, TargetExporter } from './types.ts';

/** Name of the resolver subset that holds the upstream's own tag filter / passing-only setting. */
export const ALL_SUBSET = 'all';
/** Envoy's largest threshold (uint32): the nearest to the model's "limits off". */
export const ENVOY_MAX_THRESHOLD = 4_294_967_295;
/** Status codes Envoy's `gateway-error` condition retries. */
export const GATEWAY_ERROR_CODES = [502, 503, 504] as const;

/**
 * Envoy's own values, which Consul leaves in place when a config entry does not
 * set the field (Envoy's cluster, outlier-detection and route defaults).
 */
const ENVOY = {
  lbPolicy: 'round_robin',
  requestTimeout: 15_000, // ms; route timeout
  backoffBase: 25, // ms; retry_back_off.base_interval
  backoffMax: 250, // ms; 10 × base
  consecutive5xx: 5,
  consecutiveGatewayErrors: 0, // enforcing_consecutive_gateway_failure defaults to 0: never ejects
  interval: 10_000, // ms
  baseEjectionTime: 30_000, // ms
  maxEjectionTime: 300_000, // ms
  maxEjectionPercent: 10,
  panicThresholdPercent: 50,
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRequestsPerConnection: 0, // unlimited
} as const;

interface Verdict {
  verdict: 'exact' | 'lossy' | 'dropped';
  why: string;
  to: string;
}

/** The reporter, remembering each verdict so that a route inheriting a per-destination value can repeat it. */
class Tally {
  readonly seen = new Map<string, Verdict>();
  readonly #report: Reporter;
  readonly fields: ReadonlyMap<string, unknown>;

  constructor(report: Reporter, fields: ReadonlyMap<string, unknown>) {
    this.#report = report;
    this.fields = fields;
  }

  exact(field: string, to: string): void {
    if (!this.fields.has(field)) return;
    this.seen.set(field, { verdict: 'exact', why: '', to });
    this.#report.exact(field, to);
  }

  lossy(field: string, why: string, to: string): void {
    if (!this.fields.has(field)) return;
    this.seen.set(field, { verdict: 'lossy', why, to });
    this.#report.lossy(field, why, to);
  }

  dropped(field: string, why: string): void {
    if (!this.fields.has(field)) return;
    this.seen.set(field, { verdict: 'dropped', why, to: '' });
    this.#report.dropped(field, why);
  }

  /** Every field under `prefix` not reported yet. */
  under(prefix: string): string[] {
    return [...this.fields.keys()].filter((f) => (f === prefix || f.startsWith(`${prefix}.`)) && !this.seen.has(f));
  }

  /** Reports each field under `to` as its counterpart under `from` was reported (same value, held per destination). */
  repeat(from: string, to: string, note: string): void {
    for (const field of this.under(to)) {
      const source = this.seen.get(from + field.slice(to.length));
      if (source === undefined) this.dropped(field, `${note}; the destination has no such value`);
      else if (source.verdict === 'exact') this.exact(field, `${source.to} (${note})`);
      else if (source.verdict === 'lossy') this.lossy(field, source.why, `${source.to} (${note})`);
      else this.dropped(field, source.why);
    }
  }

  /**
   * A field that has no effect in inmesh either (e.g. choiceCount under
   * round_robin): exact when it holds the value an import gives back, else dropped.
   */
  inert(field: string, value: unknown, fallback: unknown, why: string): void {
    if (isDeepStrictEqual(value, fallback)) this.exact(field, `nothing to write: ${why}`);
    else this.dropped(field, `${why}, and Consul has nowhere to keep the value`);
  }

  /** A field Consul cannot set: exact when the model asks for Envoy's own default, which Consul leaves in place. */
  envoyDefault(field: string, value: unknown, envoy: unknown, why: string): void {
    if (isDeepStrictEqual(value, envoy)) this.exact(field, "nothing to write: Envoy's default, which Consul leaves in place");
    else this.dropped(field, why);
  }
}

const needs = (feature: keyof ConsulFeatures, where: string): string => `needs Consul ${FEATURE_SINCE[feature]} (${where})`;

/** The resolved upstream every field falls back to (built-in defaults only): what an import gives back for an unset field. */
let builtIn: Readonly<ResolvedUpstream> | undefined;
function builtInUpstream(): Readonly<ResolvedUpstream> {
  builtIn ??= resolvePolicy(parsePolicy({ apiVersion: 'inmesh/v1', upstreams: { x: {} } }, 'built-in defaults')).upstreams.x as Readonly<ResolvedUpstream>;
  return builtIn;
}

/**
 * A string literal of Consul's filter language (go-bexpr). Its double-quoted
 * form takes no escaped quote (1.8.7 answers `invalid syntax`), so a value with a
 * double quote is written as a raw backtick string; a value with both cannot be
 * written at all.
 */
export function filterLiteral(value: string, field: string): string {
  if (!value.includes('"')) return JSON.stringify(value);
  if (!value.includes('`')) return `\`${value}\``;
  throw new ExportError(`${field}: ${JSON.stringify(value)} holds both " and \`, which Consul's filter language cannot quote`);
}

/** `Service.Meta.<key>`, or the index form `Service.Meta["<key>"]` for a key that is not an identifier of the filter language. */
export function metaSelector(key: string): string {
  return /^[A-Za-z0-9_]+$/.test(key) ? `Service.Meta.${key}` : `Service.Meta[${JSON.stringify(key)}]`;
}

function fileName(service: string, step: number, kind: string): string {
  return `${service}.${step}-${kind}.json`;
}

interface Context {
  readonly version: string;
  readonly features: ConsulFeatures;
  readonly tally: Tally;
  /** UpstreamConfig.Overrides for the caller's own service-defaults (1.10+, with --service). */
  readonly overrides: Record<string, unknown>[];
  readonly caller: string | undefined;
}

export const consulExporter: TargetExporter = {
  target: 'consul',
  versions: Object.keys(CONSUL_VERSIONS),
  export(input: ExportInput, report: Reporter): readonly ExportedFile[] {
    const features = CONSUL_VERSIONS[input.targetVersion] as ConsulFeatures;
    const tally = new Tally(report, policyFields(input.policy));
    const ctx: Context = { version: input.targetVersion, features, tally, overrides: [], caller: input.service };
    report.droppedUnder(
      'defaults',
      "Consul has no per-caller defaults: each destination's entries carry the values its upstream inherits (reported under upstreams.*)",
    );
    report.droppedUnder('resources', RESOURCES_NOT_EXPRESSIBLE);
    const files: ExportedFile[] = [];
    const names = new Map<string, string>();
    for (const [key, upstream] of Object.entries(input.policy.upstreams)) {
      const service = upstream.discovery.service ?? key;
      const other = names.get(service);
      if (other !== undefined) throw new ExportError(`upstreams.${key}.discovery.service: upstreams ${other} and ${key} both name Consul service ${service}, which has one set of config entries`);
      if (service === input.service) throw new ExportError(`--service ${service}: the caller is also one of its own upstreams; Consul holds one service-defaults per service`);
      names.set(service, key);
      files.push(...exportUpstream(key, service, upstream, ctx));
    }
    const own = exportCaller(input, ctx);
    return own === undefined ? files : [own, ...files];
  },
  apply: applyConsul,
};

function exportCaller(input: ExportInput, ctx: Context): ExportedFile | undefined {
  const { tally, features } = ctx;
  const service = input.service;
  if (service === undefined) return undefined;
  const inbound = input.policy.inbound;
  const name = fileName(service, 0, 'service-defaults');
  const entry: Record<string, unknown> = { Kind: 'service-defaults', Name: service, Protocol: 'http' };
  tally.under('inbound.rateLimit').forEach((f) =>
    tally.dropped(f, 'needs Consul 1.17+ Enterprise (service-defaults RateLimits.InstanceLevel), newer than every version this exporter writes'),
  );
  if (inbound.maxConcurrent === 0) tally.exact('inbound.maxConcurrent', 'nothing to write: unlimited, as Consul');
  else tally.dropped('inbound.maxConcurrent', 'Consul limits inbound connections (service-defaults MaxInboundConnections, 1.13+), not requests in flight');
  const request = inbound.timeouts.request;
  if (features.localRequestTimeout) {
    entry.LocalRequestTimeoutMs = request === 0 ? MAX_DURATION_MS : request;
    if (request === 0) tally.lossy('inbound.timeouts.request', "Consul reads 0 as Envoy's 15 s: no deadline is written as the longest the model allows (24h)", `${name} LocalRequestTimeoutMs`);
    else tally.exact('inbound.timeouts.request', `${name} LocalRequestTimeoutMs`);
  } else {
    tally.envoyDefault('inbound.timeouts.request', request, ENVOY.requestTimeout, needs('localRequestTimeout', 'service-defaults LocalRequestTimeoutMs'));
  }
  if (ctx.overrides.length > 0) entry.UpstreamConfig = { Overrides: ctx.overrides };
  if (entry.LocalRequestTimeoutMs === undefined && entry.UpstreamConfig === undefined) return undefined;
  return {
    name,
    documents: [entry],
    format: 'json',
    scope: `service ${service} itself (the caller): its inbound settings and its own settings towards each upstream`,
  };
}

function exportUpstream(key: string, service: string, upstream: Readonly<ResolvedUpstream>, ctx: Context): ExportedFile[] {
  const { tally } = ctx;
  const p = `upstreams.${key}`;
  const scope = `every caller of service ${service} in the datacenter (Consul config entries are per destination service, not per caller)`;
  const file = (step: number, kind: string, entry: Record<string, unknown>): ExportedFile => ({
    name: fileName(service, step, kind),
    documents: [entry],
    format: 'json',
    scope,
  });
  const out: ExportedFile[] = [file(1, 'service-defaults', { Kind: 'service-defaults', Name: service, Protocol: 'http' })];

  const resolverName = fileName(service, 2, 'service-resolver');
  out.push(file(2, 'service-resolver', resolver(p, service, upstream, resolverName, ctx)));

  const splitterName = fileName(service, 3, 'service-splitter');
  const splits = upstream.split === undefined ? undefined : splitter(p, upstream.split, splitterName, tally);
  if (splits !== undefined) out.push(file(3, 'service-splitter', { Kind: 'service-splitter', Name: service, Splits: splits }));

  const routerName = fileName(service, 4, 'service-router');
  // The catch-all route carries the upstream's own request timeout and retries
  // (without it, unmatched calls would get Envoy's 15 s and no retries). It is
  // built first: the routes repeat the verdicts of what they inherit from it.
  const catchAll = {
    Match: { HTTP: { PathPrefix: '/' } },
    Destination: { Service: service, ...callPolicy(p, upstream, undefined, `${routerName} Routes[${upstream.routes.length}] (catch-all).Destination`, ctx) },
  };
  const routes = upstream.routes.map((route, i) => {
    const rp = `${p}.routes.${i}`;
    const to = `${routerName} Routes[${i}]`;
    tally.dropped(`${rp}.name`, 'Consul routes have no name');
    const match = routeMatch(rp, route.match, `${to}.Match.HTTP`, tally);
    const destination: Record<string, unknown> = { Service: service };
    // Per-destination values: a route can only repeat them.
    for (const part of ['timeouts.connect', 'loadBalancer'] as const) {
      const [a, b] = part === 'loadBalancer' ? [route.loadBalancer, upstream.loadBalancer] : [route.timeouts.connect, upstream.timeouts.connect];
      if (isDeepStrictEqual(a, b)) tally.repeat(`${p}.${part}`, `${rp}.${part}`, 'per destination, every route');
      else for (const f of tally.under(`${rp}.${part}`)) tally.dropped(f, 'Consul sets this per destination (service-resolver), not per route');
    }
    if (route.split !== undefined) {
      const [only] = route.split;
      if (isDeepStrictEqual(route.split, upstream.split)) {
        for (const f of tally.under(`${rp}.split`)) tally.exact(f, `${splitterName} (the route's Destination names no subset, so the splitter applies)`);
      } else if (route.split.length === 1 && only !== undefined && only.weight > 0) {
        destination.ServiceSubset = only.subset;
        tally.exact(`${rp}.split.0.subset`, `${to}.Destination.ServiceSubset`);
        tally.exact(`${rp}.split.0.weight`, `${to}.Destination.ServiceSubset (all of the route's calls)`);
      } else {
        for (const f of tally.under(`${rp}.split`)) tally.dropped(f, "a Consul route sends to one subset or through the service's own splitter, not to a split of its own");
      }
    }
    Object.assign(destination, callPolicy(rp, route, upstream, `${to}.Destination`, ctx));
    return { Match: { HTTP: match }, Destination: destination };
  });
  routes.push(catchAll);
  out.push(file(4, 'service-router', { Kind: 'service-router', Name: service, Routes: routes }));

  upstreamSettings(p, service, upstream, ctx);
  return out;
}

function resolver(p: string, service: string, upstream: Readonly<ResolvedUpstream>, to: string, ctx: Context): Record<string, unknown> {
  const { tally } = ctx;
  const d = upstream.discovery;
  const entry: Record<string, unknown> = { Kind: 'service-resolver', Name: service, ConnectTimeout: goDuration(upstream.timeouts.connect) };
  tally.exact(`${p}.timeouts.connect`, `${to} ConnectTimeout`);
  tally.exact(`${p}.discovery.service`, `${to} Name (and every entry's Name)`);
  if (upstream.name === service) tally.exact(`${p}.name`, `${to} Name (the upstream is named after its Consul service)`);
  else tally.dropped(`${p}.name`, `Consul knows the upstream by its service name ${service} only`);
  if (d.registry === 'consul') tally.exact(`${p}.discovery.registry`, 'the Consul catalog, which the entries resolve against');
  else tally.dropped(`${p}.discovery.registry`, `Consul sends only to instances registered in its catalog, not to a ${d.registry} registry: register them`);
  for (const f of ['endpoints', 'file']) tally.dropped(`${p}.discovery.${f}`, 'Consul sends only to instances registered in its catalog: register them');

  const base = d.tags.map((t) => `${filterLiteral(t, `${p}.discovery.tags`)} in Service.Tags`);
  const subsets: Record<string, Record<string, unknown>> = {};
  const subset = (terms: string[]): Record<string, unknown> => ({ Filter: terms.join(' and '), ...(d.passingOnly ? { OnlyPassing: true } : {}) });
  for (const [name, s] of Object.entries(upstream.subsets)) {
    // The model's subset names are Consul's (policy/schema.ts); one name is the exporter's own.
    if (name === ALL_SUBSET) throw new ExportError(`${p}.subsets.${name}: '${ALL_SUBSET}' is the subset the Consul exporter writes for the upstream's own filter; rename the subset`);
    const sp = `${p}.subsets.${name}`;
    const terms = [
      ...base,
      ...s.tags.map((t) => `${filterLiteral(t, `${sp}.tags`)} in Service.Tags`),
      ...Object.entries(s.meta).map(([k, v]) => `${metaSelector(k)} == ${filterLiteral(v, `${sp}.meta.${k}`)}`),
    ];
    subsets[name] = subset(terms);
    tally.exact(`${p}.subsets.${name}.tags`, `${to} Subsets.${name}.Filter`);
    for (const k of Object.keys(s.meta)) tally.exact(`${p}.subsets.${name}.meta.${k}`, `${to} Subsets.${name}.Filter`);
  }
  if (base.length > 0 || d.passingOnly) {
    subsets[ALL_SUBSET] = subset(base);
    entry.DefaultSubset = ALL_SUBSET;
  }
  if (Object.keys(subsets).length > 0) entry.Subsets = subsets;
  tally.exact(`${p}.discovery.tags`, `${to} Subsets.*.Filter ("<tag>" in Service.Tags on every subset)`);
  if (d.passingOnly) tally.exact(`${p}.discovery.passingOnly`, `${to} Subsets.*.OnlyPassing`);
  else tally.lossy(`${p}.discovery.passingOnly`, 'Consul never sends to instances whose checks are critical (it sends to passing and warning ones); inmesh with passingOnly false sends to every instance', to);
  if (d.datacenter !== undefined) {
    entry.Redirect = { Datacenter: d.datacenter };
    tally.exact(`${p}.discovery.datacenter`, `${to} Redirect.Datacenter`);
  }
  const lb = loadBalancer(p, upstream.loadBalancer, to, ctx);
  if (lb !== undefined) entry.LoadBalancer = lb;
  return entry;
}

function loadBalancer(p: string, lb: Readonly<ResolvedLoadBalancer>, to: string, ctx: Context): Record<string, unknown> | undefined {
  const { tally, features } = ctx;
  const l = `${p}.loadBalancer`;
  const def = builtInUpstream().loadBalancer;
  const inertUnless = (policy: string, field: keyof ResolvedLoadBalancer): void => {
    if (lb.policy !== policy && !tally.seen.has(`${l}.${field}`)) tally.inert(`${l}.${field}`, lb[field], def[field], `applies to ${policy} only and the policy is ${lb.policy} (inmesh ignores it too)`);
  };
  if (!features.loadBalancer) {
    tally.envoyDefault(`${l}.policy`, lb.policy, ENVOY.lbPolicy, needs('loadBalancer', 'service-resolver LoadBalancer'));
    for (const [policy, field] of [['least_request', 'choiceCount'], ['ring_hash', 'minimumRingSize'], ['peak_ewma', 'ewmaDecay'], ['peak_ewma', 'ewmaDefaultRtt']] as const) {
      inertUnless(policy, field);
    }
    inertUnless('ring_hash', 'hashOn');
    for (const f of tally.under(l)) tally.dropped(f, needs('loadBalancer', 'service-resolver LoadBalancer'));
    return undefined;
  }
  const out: Record<string, unknown> = {};
  if (lb.policy === 'peak_ewma') {
    out.Policy = 'least_request';
    tally.lossy(`${l}.policy`, 'Consul has no peak EWMA balancer: written as least_request, the nearest', `${to} LoadBalancer.Policy`);
    for (const f of ['ewmaDecay', 'ewmaDefaultRtt']) tally.dropped(`${l}.${f}`, 'Consul has no peak EWMA balancer');
  } else {
    out.Policy = lb.policy;
    tally.exact(`${l}.policy`, `${to} LoadBalancer.Policy`);
  }
  if (out.Policy === 'least_request') {
    out.LeastRequestConfig = { ChoiceCount: lb.choiceCount };
    tally.exact(`${l}.choiceCount`, `${to} LoadBalancer.LeastRequestConfig.ChoiceCount`);
  }
  if (lb.policy === 'ring_hash') {
    out.RingHashConfig = { MinimumRingSize: lb.minimumRingSize };
    tally.exact(`${l}.minimumRingSize`, `${to} LoadBalancer.RingHashConfig.MinimumRingSize`);
    const h = lb.hashOn;
    if (h !== undefined) {
      const [field, value] = h.header !== undefined ? ['header', h.header] : h.cookie !== undefined ? ['cookie', h.cookie] : ['query_parameter', h.queryParameter];
      out.HashPolicies = [{ Field: field, FieldValue: value }];
      for (const f of tally.under(`${l}.hashOn`)) tally.exact(f, `${to} LoadBalancer.HashPolicies[0]`);
    }
  }
  for (const [policy, field] of [['least_request', 'choiceCount'], ['ring_hash', 'minimumRingSize'], ['peak_ewma', 'ewmaDecay'], ['peak_ewma', 'ewmaDefaultRtt']] as const) {
    inertUnless(policy, field);
  }
  inertUnless('ring_hash', 'hashOn');
  return out;
}

/** service-splitter Splits: the model's relative weights as percentages of 100 with Consul's 0.01 resolution. */
function splitter(p: string, split: ResolvedCallPolicy['split'] & object, to: string, tally: Tally): Record<string, unknown>[] {
  const total = split.reduce((sum, s) => sum + s.weight, 0);
  const exactShare = split.map((s) => (s.weight * 100) / total);
  const shares = exactShare.map((v) => Math.round(v * 100) / 100);
  // Consul wants the percentages to add up to exactly 100: the rounding error goes to the largest entry.
  const error = Math.round((100 - shares.reduce((a, b) => a + b, 0)) * 100) / 100;
  if (error !== 0) {
    const largest = shares.indexOf(Math.max(...shares));
    shares[largest] = Math.round(((shares[largest] as number) + error) * 100) / 100;
  }
  return split.map((s, i) => {
    const at = `${to} Splits[${i}]`;
    tally.exact(`${p}.split.${i}.subset`, `${at}.ServiceSubset`);
    const share = shares[i] as number;
    if (Math.abs(share - (exactShare[i] as number)) < 1e-9) tally.exact(`${p}.split.${i}.weight`, `${at}.Weight (${share} %)`);
    else tally.lossy(`${p}.split.${i}.weight`, `${s.weight}/${total} is ${(exactShare[i] as number).toFixed(4)} %; Consul takes percentages to 0.01 that add up to 100`, `${at}.Weight (${share} %)`);
    return { Weight: share, ServiceSubset: s.subset };
  });
}

function routeMatch(rp: string, match: ResolvedUpstream['routes'][number]['match'], to: string, tally: Tally): Record<string, unknown> {
  const http: Record<string, unknown> = {};
  if (match.path !== undefined) {
    http.PathExact = match.path;
    tally.exact(`${rp}.match.path`, `${to}.PathExact`);
  }
  if (match.pathPrefix !== undefined) {
    http.PathPrefix = match.pathPrefix;
    tally.exact(`${rp}.match.pathPrefix`, `${to}.PathPrefix`);
  }
  if (match.methods !== undefined && match.methods.length > 0) {
    http.Methods = [...match.methods];
    tally.exact(`${rp}.match.methods`, `${to}.Methods`);
  }
  if (match.headers.length > 0) {
    http.Header = match.headers.map((h, j) => {
      const at = `${to}.Header[${j}]`;
      const hp = `${rp}.match.headers.${j}`;
      tally.exact(`${hp}.name`, `${at}.Name`);
      if (h.exact !== undefined) {
        tally.exact(`${hp}.exact`, `${at}.Exact`);
        return { Name: h.name, Exact: h.exact };
      }
      if (h.prefix !== undefined) {
        tally.exact(`${hp}.prefix`, `${at}.Prefix`);
        return { Name: h.name, Prefix: h.prefix };
      }
      if (h.regex !== undefined) {
        // RE2, anchored, as Envoy's safe_regex: the model validates the same syntax (policy/regex.ts).
        tally.exact(`${hp}.regex`, `${at}.Regex`);
        return { Name: h.name, Regex: h.regex };
      }
      if (h.present === false) {
        // Consul answers `Present: false` with an error: absence is presence inverted.
        tally.exact(`${hp}.present`, `${at}.Present true + Invert true`);
        return { Name: h.name, Present: true, Invert: true };
      }
      tally.exact(`${hp}.present`, `${at}.Present`);
      return { Name: h.name, Present: true };
    });
  }
  // A route that matches everything still needs one matcher in Consul.
  if (Object.keys(http).length === 0) http.PathPrefix = '/';
  return http;
}

/**
 * Destination fields for one call policy (a route, or the upstream's catch-all).
 * `upstream` is the policy a route inherits from (undefined for the upstream
 * itself): an inert field that equals the inherited value repeats its verdict,
 * since an import gives the inherited value back.
 */
function callPolicy(p: string, call: Readonly<ResolvedCallPolicy>, upstream: Readonly<ResolvedCallPolicy> | undefined, to: string, ctx: Context): Record<string, unknown> {
  const { tally } = ctx;
  const out: Record<string, unknown> = {};
  const t = call.timeouts;
  if (t.request === 0) {
    out.RequestTimeout = goDuration(MAX_DURATION_MS);
    tally.lossy(`${p}.timeouts.request`, "Consul reads 0 as Envoy's 15 s route timeout: no deadline is written as the longest the model allows (24h)", `${to}.RequestTimeout`);
  } else {
    out.RequestTimeout = goDuration(t.request);
    tally.exact(`${p}.timeouts.request`, `${to}.RequestTimeout`);
  }
  if (t.perTry === 0) tally.exact(`${p}.timeouts.perTry`, 'nothing to write: Consul sets no per-try timeout, which is what 0 means');
  else tally.dropped(`${p}.timeouts.perTry`, 'Consul has no per-try timeout (service-router has RequestTimeout only)');
  tally.dropped(
    `${p}.timeouts.idle`,
    "Consul config entries have no connection idle timeout (service-router IdleTimeout, 1.15+, is a stream-idle timeout, another thing)",
  );
  Object.assign(out, retries(p, call.retries, upstream?.retries, to, ctx));
  return out;
}

function retries(p: string, r: Readonly<ResolvedRetries>, inherited: Readonly<ResolvedRetries> | undefined, to: string, ctx: Context): Record<string, unknown> {
  const { tally, features } = ctx;
  const rp = `${p}.retries`;
  const fallback = inherited ?? builtInUpstream().retries;
  const inert = (field: keyof ResolvedRetries, why: string): void => {
    if (inherited !== undefined && isDeepStrictEqual(r[field], inherited[field])) tally.repeat(`${p.replace(/\.routes\.\d+$/, '')}.retries.${field}`, `${rp}.${field}`, 'inherited');
    else tally.inert(`${rp}.${field}`, r[field], fallback[field], why);
  };
  const out: Record<string, unknown> = {};
  if (r.attempts === 0) {
    // NumRetries 0 with a retry condition still retries once (Envoy's num_retries
    // default): no retries is no condition at all, so Consul writes no retry policy.
    out.NumRetries = 0;
    tally.exact(`${rp}.attempts`, `${to}.NumRetries 0 with no retry condition (with one, Consul would still retry once)`);
    inert('retryOn', 'no retries, so no conditions');
    inert('retriableStatusCodes', 'no retries, so no status codes');
  } else {
    out.NumRetries = r.attempts;
    tally.exact(`${rp}.attempts`, `${to}.NumRetries`);
    const withCodes = r.retryOn.includes('retriable-status-codes');
    const codes: number[] = withCodes ? [...r.retriableStatusCodes] : [];
    if (features.retryOn) {
      const on = r.retryOn.filter((c) => c !== 'retriable-status-codes');
      if (on.length > 0) out.RetryOn = on;
      tally.exact(`${rp}.retryOn`, `${to}.RetryOn${withCodes ? ' (retriable-status-codes: RetryOnStatusCodes)' : ''}`);
    } else {
      const missing: RetryOn[] = [];
      for (const c of r.retryOn) {
        if (c === 'connect-failure') out.RetryOnConnectFailure = true;
        else if (c === 'gateway-error') codes.push(...GATEWAY_ERROR_CODES.filter((g) => !codes.includes(g)));
        else if (c !== 'retriable-status-codes') missing.push(c);
      }
      if (missing.length === 0) tally.exact(`${rp}.retryOn`, `${to}.RetryOnConnectFailure / RetryOnStatusCodes (gateway-error: 502, 503, 504)`);
      else tally.lossy(`${rp}.retryOn`, `${missing.join(', ')}: ${needs('retryOn', 'service-router Destination.RetryOn')}; Consul ${ctx.version} retries on connect failures and status codes only`, `${to}.RetryOnConnectFailure / RetryOnStatusCodes`);
    }
    if (codes.length > 0) out.RetryOnStatusCodes = codes;
    if (!withCodes) inert('retriableStatusCodes', 'used only with retryOn retriable-status-codes');
    else if (codes.length === r.retriableStatusCodes.length) tally.exact(`${rp}.retriableStatusCodes`, `${to}.RetryOnStatusCodes`);
    else tally.lossy(`${rp}.retriableStatusCodes`, "merged with gateway-error's 502, 503, 504 into one list", `${to}.RetryOnStatusCodes`);
  }
  tally.envoyDefault(`${rp}.backoff.base`, r.backoff.base, ENVOY.backoffBase, "Consul sets no retry backoff: Envoy's 25 ms base applies");
  tally.envoyDefault(`${rp}.backoff.max`, r.backoff.max, ENVOY.backoffMax, "Consul sets no retry backoff: Envoy's 250 ms cap applies");
  if (r.idempotentOnly) tally.dropped(`${rp}.idempotentOnly`, 'Envoy retries every method the route matches; give non-idempotent methods a route with attempts 0');
  else tally.exact(`${rp}.idempotentOnly`, 'nothing to write: Envoy retries every method, as idempotentOnly false');
  for (const f of tally.under(`${rp}.budget`)) tally.dropped(f, "Consul has no retry budget (Envoy's max_retries threshold of 3 applies)");
  tally.dropped(`${rp}.maxBodyBytes`, "Consul sets no replay buffer limit (Envoy buffers up to the connection's buffer limit)");
  if (r.maxRetryAfter === 0) tally.exact(`${rp}.maxRetryAfter`, 'nothing to write: Consul ignores Retry-After, which is what 0 means');
  else tally.dropped(`${rp}.maxRetryAfter`, 'Consul does not honour Retry-After');
  return out;
}

/** Outlier detection, limits, breaker and rate limit: the caller's UpstreamConfig (1.10+) or nothing. */
function upstreamSettings(p: string, service: string, upstream: Readonly<ResolvedUpstream>, ctx: Context): void {
  const { tally, features, caller } = ctx;
  const o = upstream.outlierDetection;
  const l = upstream.limits;
  const write = features.upstreamConfig && caller !== undefined;
  const callerFile = caller === undefined ? '' : fileName(caller, 0, 'service-defaults');
  const at = `${callerFile} UpstreamConfig.Overrides[${ctx.overrides.length}]`;
  const missing = features.upstreamConfig
    ? "Consul holds it in the caller's own service-defaults (UpstreamConfig.Overrides): give --service NAME"
    : needs('upstreamConfig', "the caller's service-defaults UpstreamConfig");
  const od = `${p}.outlierDetection`;
  const lp = `${p}.limits`;
  if (write) {
    const check: Record<string, unknown> = { Interval: goDuration(o.interval) };
    if (o.consecutive5xx === 0) {
      // MaxFailures 0 is Envoy's 5: ejection on 5xx is turned off by not enforcing it.
      check.EnforcingConsecutive5xx = 0;
      tally.exact(`${od}.consecutive5xx`, `${at}.PassiveHealthCheck.EnforcingConsecutive5xx 0 (MaxFailures 0 would be Envoy's 5)`);
    } else {
      check.MaxFailures = o.consecutive5xx;
      check.EnforcingConsecutive5xx = 100;
      tally.exact(`${od}.consecutive5xx`, `${at}.PassiveHealthCheck.MaxFailures`);
    }
    tally.exact(`${od}.interval`, `${at}.PassiveHealthCheck.Interval`);
    check.MaxEjectionPercent = o.maxEjectionPercent;
    if (o.maxEjectionPercent === 0) tally.lossy(`${od}.maxEjectionPercent`, "inmesh always lets one endpoint be ejected; what Envoy does with 0 % depends on its version (newer ones eject none unless always_eject_one_host, which Consul does not set)", `${at}.PassiveHealthCheck.MaxEjectionPercent`);
    else tally.exact(`${od}.maxEjectionPercent`, `${at}.PassiveHealthCheck.MaxEjectionPercent`);
    check.BaseEjectionTime = goDuration(o.baseEjectionTime);
    tally.exact(`${od}.baseEjectionTime`, `${at}.PassiveHealthCheck.BaseEjectionTime`);
    const limits: Record<string, unknown> = {};
    for (const [field, key] of [['maxConnections', 'MaxConnections'], ['maxPendingRequests', 'MaxPendingRequests'], ['maxRequests', 'MaxConcurrentRequests']] as const) {
      const v = l[field];
      limits[key] = Number.isFinite(v) ? v : ENVOY_MAX_THRESHOLD;
      if (Number.isFinite(v)) tally.exact(`${lp}.${field}`, `${at}.Limits.${key}`);
      else tally.lossy(`${lp}.${field}`, `limits off: written as ${ENVOY_MAX_THRESHOLD}, Envoy's largest threshold`, `${at}.Limits.${key}`);
    }
    ctx.overrides.push({ Name: service, PassiveHealthCheck: check, Limits: limits });
  } else {
    tally.envoyDefault(`${od}.consecutive5xx`, o.consecutive5xx, ENVOY.consecutive5xx, missing);
    tally.envoyDefault(`${od}.interval`, o.interval, ENVOY.interval, missing);
    const eject = features.upstreamConfig ? missing : needs('ejectionTuning', 'PassiveHealthCheck MaxEjectionPercent / BaseEjectionTime');
    tally.envoyDefault(`${od}.maxEjectionPercent`, o.maxEjectionPercent, ENVOY.maxEjectionPercent, eject);
    tally.envoyDefault(`${od}.baseEjectionTime`, o.baseEjectionTime, ENVOY.baseEjectionTime, eject);
    for (const field of ['maxConnections', 'maxPendingRequests', 'maxRequests'] as const) tally.envoyDefault(`${lp}.${field}`, l[field], ENVOY[field], missing);
  }
  tally.envoyDefault(`${od}.consecutiveGatewayErrors`, o.consecutiveGatewayErrors, ENVOY.consecutiveGatewayErrors, 'Consul configures ejection on consecutive 5xx only');
  tally.envoyDefault(`${od}.maxEjectionTime`, o.maxEjectionTime, ENVOY.maxEjectionTime, "Consul sets no cap on the ejection time (Envoy's 300 s applies)");
  tally.envoyDefault(`${od}.panicThresholdPercent`, o.panicThresholdPercent, ENVOY.panicThresholdPercent, "Consul sets no panic threshold (Envoy's 50 % applies)");
  tally.envoyDefault(`${lp}.maxRequestsPerConnection`, l.maxRequestsPerConnection, ENVOY.maxRequestsPerConnection, 'Consul has no per-connection request cap');

  const cb = upstream.circuitBreaker;
  const def = builtInUpstream().circuitBreaker;
  if (cb.enabled) {
    for (const f of tally.under(`${p}.circuitBreaker`)) tally.dropped(f, "Consul has no error-rate breaker (inmesh's own; outlier detection is the nearest)");
  } else {
    tally.exact(`${p}.circuitBreaker.enabled`, 'nothing to write: off, and Consul has no error-rate breaker');
    for (const field of ['errorThresholdPercent', 'minimumRequests', 'window', 'halfOpenAfter'] as const) {
      tally.inert(`${p}.circuitBreaker.${field}`, cb[field], def[field], 'the breaker is off');
    }
  }
  for (const f of tally.under(`${p}.rateLimit`)) {
    tally.dropped(f, "Consul has no limit on a caller's outbound requests (service-defaults RateLimits, 1.17+ Enterprise, limits the destination's inbound requests)");
  }
}
