import { existsSync, readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import type { FieldMapping } from '../../../src/policy/schema.ts';
import { NO_MAPPING, buildJsonSchema } from '../../../src/policy/schema.ts';

type Json = Record<string, any>;

// Istio's CRD schemas (DestinationRule, VirtualService), read-only test data. The
// project keeps its own copy so a clone tests the same way anywhere; where the
// shared copy sits next to the repository, the two must be identical (test below).
const CRD_FILE = new URL('../../fixtures/istio-crds/networking.istio.io.yaml', import.meta.url);
const SHARED_CRD_FILE = new URL('../../../../shared/istio-crds/networking.istio.io.yaml', import.meta.url);

function loadCrds(): Map<string, Json> {
  const kinds = new Map<string, Json>();
  for (const doc of parseAllDocuments(readFileSync(CRD_FILE, 'utf8'))) {
    const crd = doc.toJS() as Json | null;
    if (crd?.kind !== 'CustomResourceDefinition') continue;
    kinds.set(crd.spec.names.kind, crd);
  }
  return kinds;
}

/** Walks `a.b[].c{}.d` through spec.properties of every served version; true if it exists in one. */
function crdHasPath(crd: Json, path: string): boolean {
  return (crd.spec.versions as Json[]).some((version) => {
    let node: Json | undefined = version.schema.openAPIV3Schema.properties.spec;
    for (const raw of path.split('.')) {
      const key = raw.replace(/(\[\]|\{\})$/, '');
      node = node?.properties?.[key];
      if (raw.endsWith('[]')) node = node?.items;
      if (raw.endsWith('{}')) node = node?.additionalProperties;
      if (node === undefined) return false;
    }
    return true;
  });
}

/** Every leaf field of the schema with its mapping metadata. */
function leaves(schema: Json): { path: string; node: Json }[] {
  const defs = schema.$defs ?? {};
  const deref = (n: Json): Json => (typeof n.$ref === 'string' ? { ...defs[n.$ref.replace('#/$defs/', '')], ...n } : n);
  const out: { path: string; node: Json }[] = [];
  const walk = (n: Json, path: string): void => {
    n = deref(n);
    if (n['x-inmesh-maps'] !== undefined) {
      out.push({ path, node: n });
      return;
    }
    for (const branch of n.anyOf ?? []) walk(branch, path);
    if (n.type === 'array' && n.items) walk(n.items, `${path}[]`);
    if (n.additionalProperties && typeof n.additionalProperties === 'object') walk(n.additionalProperties, `${path}.<name>`);
    for (const [key, child] of Object.entries<Json>(n.properties ?? {})) walk(child, path === '' ? key : `${path}.${key}`);
  };
  walk(schema, '');
  return out;
}

const schema = buildJsonSchema() as Json;
const fields = leaves(schema);

describe('field mapping metadata', () => {
  it('exists on every leaf field of an upstream, route and inbound', () => {
    const paths = fields.map((f) => f.path);
    expect(paths).toContain('upstreams.<name>.retries.attempts');
    expect(paths).toContain('upstreams.<name>.routes[].match.headers[].regex');
    expect(paths).toContain('inbound.maxConcurrent');
    expect(paths.length).toBeGreaterThan(60);
    // A leaf without metadata would not be collected: check the counts of two blocks independently.
    const retries = Object.keys(schema.$defs.Upstream.properties.retries.properties);
    expect(retries.filter((k) => k !== 'backoff' && k !== 'budget').every((k) => paths.includes(`upstreams.<name>.retries.${k}`))).toBe(true);
  });

  it('maps every field onto all five targets, each a field there or `none: <why>`', () => {
    const targets = ['istio', 'consul', 'gatewayApi', 'envoy', 'dapr'] as const;
    for (const { path, node } of fields) {
      const maps = node['x-inmesh-maps'] as FieldMapping;
      for (const target of targets) {
        const entry = maps[target] as unknown;
        expect(typeof entry, `${path} has no ${target} mapping`).toBe('string');
        if ((entry as string).startsWith(NO_MAPPING)) expect((entry as string).slice(NO_MAPPING.length), `${path}: say why ${target} has none`).toMatch(/\w{3}/);
      }
      const proxies = [maps.istio, maps.consul, maps.gatewayApi, maps.envoy];
      if (proxies.every((m) => m.startsWith(NO_MAPPING))) {
        expect(maps.sdkOnly, `${path} maps to no proxy mesh: mark it sdkOnly`).toBe(true);
        expect(maps.nearest, `${path} is SDK-only: name the nearest equivalent`).toMatch(/\w/);
      } else expect(maps.sdkOnly, `${path} maps somewhere, so it is not SDK-only`).toBeUndefined();
      expect(typeof node.description, `${path} needs a description`).toBe('string');
    }
  });

  it('SDK-only fields are the ones POLICY-MODEL.md says have no sidecar equivalent', () => {
    const sdkOnly = fields.filter((f) => f.node['x-inmesh-maps'].sdkOnly === true && !f.path.startsWith('resources.')).map((f) => f.path.replace(/^(defaults|upstreams\.<name>)\.(routes\[\]\.)?/, ''));
    expect([...new Set(sdkOnly)].sort()).toEqual([
      'circuitBreaker.enabled',
      'circuitBreaker.errorThresholdPercent',
      'circuitBreaker.halfOpenAfter',
      'circuitBreaker.minimumRequests',
      'circuitBreaker.window',
      'limits.enabled',
      'loadBalancer.ewma.decay',
      'loadBalancer.ewma.defaultRtt',
      'retries.idempotentOnly',
    ]);
  });

  it('every resource field is SDK-only, maps to no proxy mesh, and names Dapr or says why not', () => {
    const resources = fields.filter((f) => f.path.startsWith('resources.<name>.'));
    expect(resources.map((f) => f.path)).toEqual(expect.arrayContaining(['resources.<name>.timeouts.perTry', 'resources.<name>.retries.retryOn', 'resources.<name>.rateLimit.shared']));
    for (const { path, node } of resources) {
      const maps = node['x-inmesh-maps'] as FieldMapping;
      expect(maps.sdkOnly, path).toBe(true);
      for (const target of ['istio', 'consul', 'gatewayApi', 'envoy'] as const) expect(maps[target].startsWith(NO_MAPPING), `${path} ${target}`).toBe(true);
    }
    const dapr = resources.filter((f) => !(f.node['x-inmesh-maps'] as FieldMapping).dapr.startsWith(NO_MAPPING)).map((f) => f.path);
    expect(dapr).toEqual(expect.arrayContaining(['resources.<name>.timeouts.perTry', 'resources.<name>.retries.attempts', 'resources.<name>.circuitBreaker.enabled']));
  });

  it('every Istio path named in the mapping exists in the Istio CRD schema', () => {
    const crds = loadCrds();
    expect([...crds.keys()]).toEqual(expect.arrayContaining(['DestinationRule', 'VirtualService']));
    const named = new Set(fields.map((f) => (f.node['x-inmesh-maps'] as FieldMapping).istio).filter((m) => !m.startsWith(NO_MAPPING)));
    expect(named.size).toBeGreaterThan(20);
    for (const mapping of named) {
      const match = /^(DestinationRule|VirtualService) (\S+)$/.exec(mapping);
      expect(match, `"${mapping}" must read "<Kind> <path>"`).not.toBeNull();
      const [, kind, path] = match!;
      expect(crdHasPath(crds.get(kind!)!, path!), `${kind} spec.${path} is not in the Istio CRD`).toBe(true);
    }
  });

  it.runIf(existsSync(SHARED_CRD_FILE))('the project copy of the Istio CRDs equals ../shared/istio-crds', () => {
    expect(readFileSync(CRD_FILE, 'utf8')).toBe(readFileSync(SHARED_CRD_FILE, 'utf8'));
  });

  it('the CRD walker rejects paths that do not exist (so the check above can fail)', () => {
    const dr = loadCrds().get('DestinationRule')!;
    expect(crdHasPath(dr, 'trafficPolicy.outlierDetection.consecutive5xxErrors')).toBe(true);
    expect(crdHasPath(dr, 'trafficPolicy.outlierDetection.maxEjectionTime')).toBe(false);
    expect(crdHasPath(dr, 'trafficPolicy.connectionPool.tcp.nope')).toBe(false);
  });
});
