/**
 * Route matching: the first route (in document order) whose match holds gives
 * the call policy of a request. Matchers are compiled once per resolved
 * upstream (resolvePolicy compiles them eagerly), so matchRoute() on the
 * request path allocates nothing.
 */
import { compilePolicyRegex, type PolicyRegex } from './regex.ts';
import type { ResolvedCallPolicy, ResolvedRoute, ResolvedUpstream } from './types.ts';

// Plain constants, not an enum: the docs script runs these files with type stripping only.
const HeaderKind = { Exact: 0, Prefix: 1, Regex: 2, Present: 3 } as const;
type HeaderKind = (typeof HeaderKind)[keyof typeof HeaderKind];

interface CompiledHeader {
  name: string;
  kind: HeaderKind;
  value: string;
  regex: PolicyRegex | undefined;
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

export function compileRoutes(upstream: Readonly<ResolvedUpstream>): readonly CompiledRoute[] {
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
          return { name: h.name, kind: HeaderKind.Regex, value: h.regex, regex: compilePolicyRegex(h.regex), present: true };
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
  // Own properties only: a header named `constructor` must not find Object.prototype's.
  if (Object.hasOwn(headers, name)) return headers[name];
  for (const key in headers) {
    if (key.length === name.length && key.toLowerCase() === name && Object.hasOwn(headers, key)) return headers[key];
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
      return header.regex?.matchesWhole(value) ?? false;
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
