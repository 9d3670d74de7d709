/**
 * Reads the DestinationRules and VirtualServices the Istio exporter writes
 * back into a policy document (the round trip of the exporter's tests, and a
 * start for a team moving the other way). It reads the shapes istio.ts
 * writes: one DestinationRule and one VirtualService per upstream, named
 * alike; `route-<name>` subsets carry a route's own balancer; the http entry
 * `default` is the upstream's own call policy; `other-callers` is skipped.
 * Istio's labels become subset meta, a label whose value is "true" a tag.
 */
import { ExportError } from '../errors.ts';

type Doc = Record<string, unknown>;

const SIMPLE_LB: Record<string, string> = { ROUND_ROBIN: 'round_robin', RANDOM: 'random', LEAST_REQUEST: 'least_request' };

function obj(v: unknown): Doc {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Doc) : {};
}

/** A protobuf duration ("1.500s") as the model writes it ("1500ms"). */
function ms(proto: unknown, field: string): string {
  const m = typeof proto === 'string' ? /^(\d+)(?:\.(\d{1,9}))?s$/.exec(proto) : null;
  if (m === null) throw new ExportError(`istio import: ${field}: ${JSON.stringify(proto)} is not a duration like "1.500s"`);
  const frac = (m[2] ?? '').padEnd(3, '0').slice(0, 3);
  return `${Number(m[1]) * 1000 + Number(frac)}ms`;
}

function loadBalancer(lb: Doc): Doc {
  const hash = obj(lb['consistentHash']);
  if (Object.keys(hash).length === 0) return { policy: SIMPLE_LB[String(lb['simple'])] ?? 'round_robin' };
  const out: Doc = { policy: 'ring_hash', hashOn: hashOn(hash) };
  const ring = obj(hash['ringHash'])['minimumRingSize'];
  if (typeof ring === 'number') out['minimumRingSize'] = ring;
  return out;
}

function hashOn(hash: Doc): Doc {
  if (typeof hash['httpHeaderName'] === 'string') return { header: hash['httpHeaderName'] };
  if (typeof hash['httpQueryParameterName'] === 'string') return { queryParameter: hash['httpQueryParameterName'] };
  return { cookie: obj(hash['httpCookie'])['name'] };
}

function retries(http: Doc, field: string): Doc {
  const r = obj(http['retries']);
  const parts = typeof r['retryOn'] === 'string' ? r['retryOn'].split(',').filter((p) => p !== '') : [];
  const base = r['backoff'] === undefined ? undefined : Number.parseInt(ms(r['backoff'], `${field}.retries.backoff`), 10);
  return {
    attempts: r['attempts'],
    retryOn: parts.filter((p) => !/^\d+$/.test(p)),
    retriableStatusCodes: parts.filter((p) => /^\d+$/.test(p)).map(Number),
    // Envoy caps Istio's single backoff value at 10 x base.
    ...(base === undefined ? {} : { backoff: { base: `${base}ms`, max: `${base * 10}ms` } }),
    idempotentOnly: false,
    maxRetryAfter: '0s',
  };
}

function timeouts(http: Doc, field: string): Doc {
  const perTry = obj(http['retries'])['perTryTimeout'];
  return {
    request: http['timeout'] === undefined ? '0s' : ms(http['timeout'], `${field}.timeout`),
    perTry: perTry === undefined ? '0s' : ms(perTry, `${field}.retries.perTryTimeout`),
  };
}

function split(route: unknown): Doc[] | undefined {
  const dests = Array.isArray(route) ? route.map(obj) : [];
  const withSubset = dests.filter((d) => {
    const subset = obj(d['destination'])['subset'];
    return typeof subset === 'string' && !subset.startsWith('route-');
  });
  if (withSubset.length === 0) return undefined;
  return withSubset.map((d) => ({ subset: obj(d['destination'])['subset'], weight: d['weight'] }));
}

function match(matches: unknown): Doc {
  const list = Array.isArray(matches) ? matches.map(obj) : [];
  const first = list[0] ?? {};
  const out: Doc = {};
  const methods = list.map((m) => obj(m['method'])['exact']).filter((m): m is string => typeof m === 'string');
  if (methods.length > 0) out['methods'] = methods;
  const uri = obj(first['uri']);
  if (typeof uri['exact'] === 'string') out['path'] = uri['exact'];
  if (typeof uri['prefix'] === 'string') out['pathPrefix'] = uri['prefix'];
  const headers: Doc[] = [];
  for (const [name, m] of Object.entries(obj(first['headers']))) {
    const sm = obj(m);
    if (sm['regex'] === '.*') headers.push({ name, present: true });
    else if (sm['exact'] !== undefined) headers.push({ name, exact: sm['exact'] });
    else if (sm['prefix'] !== undefined) headers.push({ name, prefix: sm['prefix'] });
    else headers.push({ name, regex: sm['regex'] });
  }
  for (const name of Object.keys(obj(first['withoutHeaders']))) headers.push({ name, present: false });
  if (headers.length > 0) out['headers'] = headers;
  return out;
}

/** A policy document from the exporter's DestinationRule and VirtualService documents. */
export function importIstio(documents: readonly unknown[]): Doc {
  const rules = new Map<string, Doc>();
  const services = new Map<string, Doc>();
  for (const d of documents.map(obj)) {
    const name = String(obj(d['metadata'])['name']);
    if (d['kind'] === 'DestinationRule') rules.set(name, d);
    else if (d['kind'] === 'VirtualService') services.set(name, d);
  }
  const upstreams: Doc = {};
  for (const [name, dr] of rules) {
    const spec = obj(dr['spec']);
    const tp = obj(spec['trafficPolicy']);
    const pool = obj(tp['connectionPool']);
    const tcp = obj(pool['tcp']);
    const http = obj(pool['http']);
    const od = obj(tp['outlierDetection']);
    const budget = obj(tp['retryBudget']);
    const limitsOff = http['http1MaxPendingRequests'] === 0 && http['http2MaxRequests'] === 0;
    const u: Doc = {
      discovery: { service: String(spec['host']).split('.')[0] },
      loadBalancer: loadBalancer(obj(tp['loadBalancer'])),
      timeouts: { connect: ms(tcp['connectTimeout'], `${name}.connectTimeout`), idle: ms(http['idleTimeout'], `${name}.idleTimeout`) },
      limits: {
        enabled: !limitsOff,
        maxConnections: tcp['maxConnections'],
        maxRequestsPerConnection: http['maxRequestsPerConnection'],
        ...(limitsOff ? {} : { maxPendingRequests: http['http1MaxPendingRequests'], maxRequests: http['http2MaxRequests'] }),
      },
      outlierDetection: {
        consecutive5xx: od['consecutive5xxErrors'],
        consecutiveGatewayErrors: od['consecutiveGatewayErrors'],
        interval: ms(od['interval'], `${name}.interval`),
        baseEjectionTime: ms(od['baseEjectionTime'], `${name}.baseEjectionTime`),
        maxEjectionPercent: od['maxEjectionPercent'],
        panicThresholdPercent: od['minHealthPercent'],
      },
    };
    const subsets: Doc = {};
    const routeLb = new Map<string, Doc>();
    for (const s of Array.isArray(spec['subsets']) ? spec['subsets'].map(obj) : []) {
      const sname = String(s['name']);
      if (sname.startsWith('route-')) {
        routeLb.set(sname, obj(obj(s['trafficPolicy'])['loadBalancer']));
        continue;
      }
      const labels = Object.entries(obj(s['labels']));
      subsets[sname] = {
        tags: labels.filter(([, v]) => v === 'true').map(([k]) => k),
        meta: Object.fromEntries(labels.filter(([, v]) => v !== 'true')),
      };
    }
    if (Object.keys(subsets).length > 0) u['subsets'] = subsets;

    const entries = Array.isArray(obj(services.get(name)?.['spec'])['http']) ? (obj(services.get(name)?.['spec'])['http'] as unknown[]).map(obj) : [];
    const routes: Doc[] = [];
    for (const e of entries) {
      const field = `${name}.http[${String(e['name'])}]`;
      const rt = { ...retries(e, field), budget: Object.keys(budget).length === 0 ? false : { percent: budget['percent'], minConcurrency: budget['minRetryConcurrency'] } };
      if (e['name'] === 'other-callers') continue;
      if (e['name'] === 'default') {
        u['timeouts'] = { ...(u['timeouts'] as Doc), ...timeouts(e, field) };
        u['retries'] = rt;
        const s = split(e['route']);
        if (s !== undefined) u['split'] = s;
        continue;
      }
      const route: Doc = { name: e['name'], match: match(e['match']), timeouts: timeouts(e, field), retries: { ...rt, budget: undefined } };
      delete (route['retries'] as Doc)['budget'];
      const s = split(e['route']);
      if (s !== undefined) route['split'] = s;
      const own = (Array.isArray(e['route']) ? e['route'].map(obj) : [])
        .map((d) => obj(d['destination'])['subset'])
        .find((sub): sub is string => typeof sub === 'string' && sub.startsWith('route-'));
      const lb = own === undefined ? undefined : routeLb.get(own);
      if (lb !== undefined && lb['consistentHash'] !== undefined) route['loadBalancer'] = { hashOn: hashOn(obj(lb['consistentHash'])) };
      routes.push(route);
    }
    if (routes.length > 0) u['routes'] = routes;
    upstreams[name] = u;
  }
  return { apiVersion: 'inmesh/v1', upstreams };
}
