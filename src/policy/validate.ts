/**
 * parsePolicy(): validates a document against the schema and the cross-field
 * rules, and reports EVERY problem at once in one InvalidPolicyError, each
 * with its dotted path, the bad value and what was expected.
 */
import type { z } from 'zod';
import { InvalidPolicyError, type PolicyIssue } from '../errors.ts';
import { POLICY_DEFAULTS as D } from './defaults.ts';
import { parseDuration } from './duration.ts';
import { regexProblem } from './regex.ts';
import { MAX_POLICY_DEPTH, MAX_RESOURCES, MAX_SUBSETS, MAX_UPSTREAMS, documentSchema, type PolicyDocument } from './schema.ts';

export type PathSegment = string | number;

export interface ParsePolicyOptions {
  /**
   * Upstreams whose static endpoints come from outside the document
   * (`INMESH_ENDPOINTS_<SERVICE>`); for them `registry: static` needs no
   * `endpoints`. Names are matched as written and as `envName()` forms.
   */
  externalEndpoints?: (upstream: string, service: string) => boolean;
}

/** `upstreams.orders.routes[0].match` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else {
      const key = String(segment);
      out += /^[A-Za-z0-9_$-]+$/.test(key) ? `${out === '' ? '' : '.'}${key}` : `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const segment of path) {
    if (Array.isArray(node) && typeof segment === 'number') node = node[segment];
    else if (isRecord(node)) node = node[String(segment)];
    else return undefined;
  }
  return node;
}

function convertIssue(issue: z.core.$ZodIssue, base: readonly PropertyKey[], input: unknown, out: PolicyIssue[]): void {
  const path = [...base, ...issue.path];
  switch (issue.code) {
    case 'unrecognized_keys': {
      const lines = issue.message.split('\n');
      issue.keys.forEach((key, i) => {
        out.push({ path: formatPath([...path, key]), value: valueAt(input, [...path, key]), message: lines[i] ?? `unknown field '${key}'` });
      });
      return;
    }
    case 'invalid_union': {
      const value = valueAt(input, path);
      // `false | {…}` blocks: when an object was written, its own problems are the useful ones.
      if (isRecord(value)) {
        const branch = issue.errors.find(
          (errors) => !errors.some((e) => e.path.length === 0 && (e.code === 'invalid_type' || e.code === 'invalid_value')),
        );
        if (branch !== undefined) {
          for (const inner of branch) convertIssue(inner, path, input, out);
          return;
        }
      }
      out.push({ path: formatPath(path), value, message: issue.message });
      return;
    }
    case 'invalid_key': {
      const key = path.at(-1);
      out.push({ path: formatPath(path), value: key, message: issue.issues[0]?.message ?? issue.message });
      return;
    }
    case 'invalid_type': {
      const value = valueAt(input, path);
      // Zod's own wording only where no field-specific message was given.
      const message = issue.message.startsWith('Invalid input')
        ? value === undefined
          ? 'required'
          : `expected ${issue.expected}`
        : issue.message;
      out.push({ path: formatPath(path), value, message });
      return;
    }
    default:
      out.push({ path: formatPath(path), value: valueAt(input, path), message: issue.message });
  }
}

// ------------------------------------------------------------ cross-field rules

interface Level {
  /** The upstream-policy-shaped object written at this level (may be anything if malformed). */
  node: unknown;
  path: readonly PathSegment[];
}

function raw(node: unknown, keys: readonly string[]): unknown {
  let current = node;
  for (const key of keys) {
    if (!isRecord(current)) return undefined;
    current = current[key];
  }
  return current;
}

/** The value in force at the last level: the last level that sets it wins. */
function effective(levels: readonly Level[], keys: readonly string[]): unknown {
  for (let i = levels.length - 1; i >= 0; i--) {
    const value = raw(levels[i]?.node, keys);
    if (value !== undefined) return value;
  }
  return undefined;
}

function effectiveMs(levels: readonly Level[], keys: readonly string[], fallback: number): number | undefined {
  const value = effective(levels, keys);
  if (value === undefined) return fallback;
  return typeof value === 'string' ? parseDuration(value) : undefined;
}

function setsAny(level: Level, keys: readonly (readonly string[])[]): boolean {
  return keys.some((k) => raw(level.node, k) !== undefined);
}

function checkCallPolicy(levels: readonly Level[], issues: PolicyIssue[]): void {
  const level = levels.at(-1);
  if (level === undefined) return;
  const at = (...keys: string[]) => formatPath([...level.path, ...keys]);

  // retries.backoff.base <= retries.backoff.max
  if (setsAny(level, [['retries', 'backoff', 'base'], ['retries', 'backoff', 'max']])) {
    const base = effectiveMs(levels, ['retries', 'backoff', 'base'], D.retries.backoffBase);
    const max = effectiveMs(levels, ['retries', 'backoff', 'max'], D.retries.backoffMax);
    if (base !== undefined && max !== undefined && base > max) {
      const own = raw(level.node, ['retries', 'backoff', 'base']) !== undefined ? 'base' : 'max';
      issues.push({
        path: at('retries', 'backoff', own),
        value: raw(level.node, ['retries', 'backoff', own]),
        message: `backoff.base (${base} ms) must not exceed backoff.max (${max} ms)`,
      });
    }
  }

  // timeouts.perTry <= timeouts.request (when both are on)
  if (setsAny(level, [['timeouts', 'perTry'], ['timeouts', 'request']])) {
    const perTry = effectiveMs(levels, ['timeouts', 'perTry'], D.timeouts.perTry);
    const request = effectiveMs(levels, ['timeouts', 'request'], D.timeouts.request);
    if (perTry !== undefined && request !== undefined && perTry > 0 && request > 0 && perTry > request) {
      const own = raw(level.node, ['timeouts', 'perTry']) !== undefined ? 'perTry' : 'request';
      issues.push({
        path: at('timeouts', own),
        value: raw(level.node, ['timeouts', own]),
        message: `timeouts.perTry (${perTry} ms) must not exceed timeouts.request (${request} ms), which covers every attempt`,
      });
    }
  }

  // retriable-status-codes <-> retriableStatusCodes
  const retryOn = effective(levels, ['retries', 'retryOn']) ?? D.retries.retryOn;
  const codes = effective(levels, ['retries', 'retriableStatusCodes']) ?? D.retries.retriableStatusCodes;
  if (Array.isArray(retryOn) && Array.isArray(codes)) {
    const wantsCodes = retryOn.includes('retriable-status-codes');
    if (wantsCodes && codes.length === 0 && setsAny(level, [['retries', 'retryOn'], ['retries', 'retriableStatusCodes']])) {
      issues.push({
        path: at('retries', 'retriableStatusCodes'),
        value: raw(level.node, ['retries', 'retriableStatusCodes']),
        message: 'retryOn has retriable-status-codes, so retriableStatusCodes must list at least one status code',
      });
    }
    const ownCodes = raw(level.node, ['retries', 'retriableStatusCodes']);
    if (!wantsCodes && Array.isArray(ownCodes) && ownCodes.length > 0) {
      issues.push({
        path: at('retries', 'retriableStatusCodes'),
        value: ownCodes,
        message: 'retriableStatusCodes is used only when retryOn includes retriable-status-codes',
      });
    }
  }
}

function checkHashOn(levels: readonly Level[], policy: unknown, issues: PolicyIssue[]): void {
  const level = levels.at(-1);
  if (level === undefined) return;
  const hashOn = raw(level.node, ['loadBalancer', 'hashOn']);
  const known = ['round_robin', 'random', 'least_request', 'ring_hash', 'peak_ewma'];
  if (hashOn !== undefined && typeof policy === 'string' && known.includes(policy) && policy !== 'ring_hash') {
    issues.push({
      path: formatPath([...level.path, 'loadBalancer', 'hashOn']),
      value: hashOn,
      message: `hashOn is used only with loadBalancer.policy ring_hash (the policy here is ${policy})`,
    });
  }
}

function checkUpstreamPolicy(levels: readonly Level[], issues: PolicyIssue[]): void {
  const level = levels.at(-1);
  if (level === undefined) return;
  checkCallPolicy(levels, issues);
  checkHashOn(levels, effective(levels, ['loadBalancer', 'policy']) ?? D.loadBalancer.policy, issues);

  if (setsAny(level, [['outlierDetection', 'baseEjectionTime'], ['outlierDetection', 'maxEjectionTime']])) {
    const base = effectiveMs(levels, ['outlierDetection', 'baseEjectionTime'], D.outlierDetection.baseEjectionTime);
    const max = effectiveMs(levels, ['outlierDetection', 'maxEjectionTime'], D.outlierDetection.maxEjectionTime);
    if (base !== undefined && max !== undefined && base > max) {
      const own = raw(level.node, ['outlierDetection', 'baseEjectionTime']) !== undefined ? 'baseEjectionTime' : 'maxEjectionTime';
      issues.push({
        path: formatPath([...level.path, 'outlierDetection', own]),
        value: raw(level.node, ['outlierDetection', own]),
        message: `outlierDetection.baseEjectionTime (${base} ms) must not exceed maxEjectionTime (${max} ms)`,
      });
    }
  }

  // rateLimit: requestsPerSecond must be in force wherever a block is written.
  const ownRate = raw(level.node, ['rateLimit']);
  if (isRecord(ownRate) && ownRate.requestsPerSecond === undefined) {
    let found = false;
    for (let i = levels.length - 2; i >= 0; i--) {
      const inherited = raw(levels[i]?.node, ['rateLimit']);
      if (inherited === false) break;
      if (isRecord(inherited) && inherited.requestsPerSecond !== undefined) {
        found = true;
        break;
      }
    }
    if (!found)
      issues.push({
        path: formatPath([...level.path, 'rateLimit', 'requestsPerSecond']),
        value: undefined,
        message: 'required: a rateLimit block needs requestsPerSecond (here or inherited from defaults)',
      });
  }

  const ownEndpoints = raw(level.node, ['discovery', 'endpoints']);
  const registry = effective(levels, ['discovery', 'registry']) ?? D.discovery.registry;
  const registries = ['consul', 'static', 'file'];
  const validRegistry = typeof registry === 'string' && registries.includes(registry);
  if (Array.isArray(ownEndpoints) && ownEndpoints.length > 0 && validRegistry && registry !== 'static') {
    issues.push({
      path: formatPath([...level.path, 'discovery', 'endpoints']),
      value: ownEndpoints,
      message: `endpoints is used only with registry static (the registry here is ${registry})`,
    });
  }
  const ownFile = raw(level.node, ['discovery', 'file']);
  if (ownFile !== undefined && validRegistry && registry !== 'file') {
    issues.push({
      path: formatPath([...level.path, 'discovery', 'file']),
      value: ownFile,
      message: `file is used only with registry file (the registry here is ${registry})`,
    });
  }
}

/**
 * A split's references and weights: every `subset` names a subset of the upstream,
 * none twice, and the weights add up to more than 0. Entries the schema refuses
 * (not an object, a weight that is no integer) are left to its messages.
 */
function checkSplit(split: unknown, path: readonly PathSegment[], subsets: unknown, issues: PolicyIssue[]): void {
  if (!Array.isArray(split)) return;
  const defined = isRecord(subsets) ? Object.keys(subsets) : [];
  const known = defined.length === 0 ? 'this upstream defines no subsets' : `the subsets of this upstream are ${defined.join(', ')}`;
  const seen = new Set<string>();
  let total = 0;
  let weightsValid = true;
  for (const [i, target] of (split as unknown[]).entries()) {
    const subset = raw(target, ['subset']);
    if (typeof subset === 'string') {
      if (!defined.includes(subset))
        issues.push({ path: formatPath([...path, i, 'subset']), value: subset, message: `unknown subset '${subset}': ${known}` });
      else if (seen.has(subset))
        issues.push({
          path: formatPath([...path, i, 'subset']),
          value: subset,
          message: `subset '${subset}' appears twice in one split: give it one entry with the sum of the weights`,
        });
      seen.add(subset);
    }
    const weight = raw(target, ['weight']) ?? D.split.weight;
    if (typeof weight === 'number' && Number.isInteger(weight) && weight >= 0) total += weight;
    else weightsValid = false;
  }
  if (weightsValid && split.length > 0 && total === 0)
    issues.push({
      path: formatPath(path),
      value: split,
      message: 'the weights of a split must add up to more than 0 (every weight here is 0, so no call could be sent)',
    });
}

function crossFieldIssues(input: Record<string, unknown>, options: ParsePolicyOptions): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const defaults: Level = { node: input.defaults, path: ['defaults'] };

  const defaultService = raw(input.defaults, ['discovery', 'service']);
  if (defaultService !== undefined) {
    issues.push({
      path: 'defaults.discovery.service',
      value: defaultService,
      message: "service cannot be set in defaults: it defaults to each upstream's own name",
    });
  }
  checkUpstreamPolicy([defaults], issues);

  // inbound.rateLimit: no level to inherit from, so the rate must be written here
  // (without it the block would be ignored).
  const inboundRate = raw(input.inbound, ['rateLimit']);
  if (isRecord(inboundRate) && inboundRate.requestsPerSecond === undefined) {
    issues.push({
      path: 'inbound.rateLimit.requestsPerSecond',
      value: undefined,
      message: 'required: an inbound rateLimit block needs requestsPerSecond',
    });
  }

  checkResources(input.resources, issues);

  const upstreams = input.upstreams;
  if (!isRecord(upstreams)) return issues;
  for (const [name, upstream] of Object.entries(upstreams)) {
    const level: Level = { node: upstream, path: ['upstreams', name] };
    const levels = [defaults, level];
    checkUpstreamPolicy(levels, issues);

    const registry = effective(levels, ['discovery', 'registry']) ?? D.discovery.registry;
    const serviceRaw = effective(levels, ['discovery', 'service']);
    const service = typeof serviceRaw === 'string' ? serviceRaw : name;
    if (registry === 'static') {
      const endpoints = effective(levels, ['discovery', 'endpoints']);
      const external = options.externalEndpoints?.(name, service) ?? false;
      if (Array.isArray(endpoints) ? endpoints.length === 0 && !external : !external) {
        issues.push({
          path: formatPath(['upstreams', name, 'discovery', 'endpoints']),
          value: endpoints,
          message: `registry static needs at least one "host:port" endpoint (in the policy or in ${endpointsVariable(service)})`,
        });
      }
    }
    if (registry === 'file' && effective(levels, ['discovery', 'file']) === undefined) {
      issues.push({
        path: formatPath(['upstreams', name, 'discovery', 'file']),
        value: undefined,
        message: 'registry file needs the path of the endpoints file',
      });
    }

    const subsets = raw(upstream, ['subsets']);
    if (isRecord(subsets) && Object.keys(subsets).length > MAX_SUBSETS)
      issues.push({
        path: formatPath(['upstreams', name, 'subsets']),
        value: `${Object.keys(subsets).length} subsets`,
        message: `expected at most ${MAX_SUBSETS} subsets per upstream`,
      });
    checkSplit(raw(upstream, ['split']), ['upstreams', name, 'split'], subsets, issues);

    const routes = raw(upstream, ['routes']);
    if (!Array.isArray(routes)) continue;
    const upstreamPolicy = effective(levels, ['loadBalancer', 'policy']) ?? D.loadBalancer.policy;
    const seen = new Set<string>();
    routes.forEach((route: unknown, index) => {
      const routeLevel: Level = { node: route, path: ['upstreams', name, 'routes', index] };
      checkCallPolicy([...levels, routeLevel], issues);
      checkHashOn([...levels, routeLevel], upstreamPolicy, issues);
      checkSplit(raw(route, ['split']), ['upstreams', name, 'routes', index, 'split'], subsets, issues);
      const routeName = raw(route, ['name']) ?? `route-${index}`;
      if (typeof routeName === 'string') {
        if (seen.has(routeName))
          issues.push({
            path: formatPath(['upstreams', name, 'routes', index, 'name']),
            value: routeName,
            message: `route names must be unique within an upstream; '${routeName}' is used twice`,
          });
        seen.add(routeName);
      }
      const headers = raw(route, ['match', 'headers']);
      if (Array.isArray(headers)) {
        headers.forEach((header: unknown, h) => {
          const regex = raw(header, ['regex']);
          if (typeof regex !== 'string') return;
          const problem = regexProblem(regex);
          if (problem !== undefined)
            issues.push({
              path: formatPath(['upstreams', name, 'routes', index, 'match', 'headers', h, 'regex']),
              value: regex,
              message: problem,
            });
        });
      }
    });
  }
  return issues;
}

/** Resources: the rules of an upstream's call policy that apply to them, and a rate limit's required rate. */
function checkResources(resources: unknown, issues: PolicyIssue[]): void {
  if (!isRecord(resources)) return;
  for (const [name, resource] of Object.entries(resources)) {
    const level: Level = { node: resource, path: ['resources', name] };
    const at = (...keys: string[]) => formatPath([...level.path, ...keys]);
    if (setsAny(level, [['timeouts', 'perTry'], ['timeouts', 'request']])) {
      const perTry = effectiveMs([level], ['timeouts', 'perTry'], D.resources.perTry);
      const request = effectiveMs([level], ['timeouts', 'request'], D.resources.request);
      if (perTry !== undefined && request !== undefined && perTry > 0 && request > 0 && perTry > request) {
        issues.push({ path: at('timeouts', 'perTry'), value: raw(resource, ['timeouts', 'perTry']), message: `timeouts.perTry (${perTry} ms) must not exceed timeouts.request (${request} ms), which covers every try` });
      }
    }
    if (setsAny(level, [['retries', 'backoff', 'base'], ['retries', 'backoff', 'max']])) {
      const base = effectiveMs([level], ['retries', 'backoff', 'base'], D.retries.backoffBase);
      const max = effectiveMs([level], ['retries', 'backoff', 'max'], D.retries.backoffMax);
      if (base !== undefined && max !== undefined && base > max) {
        issues.push({ path: at('retries', 'backoff', 'base'), value: raw(resource, ['retries', 'backoff', 'base']), message: `backoff.base (${base} ms) must not exceed backoff.max (${max} ms)` });
      }
    }
    const rate = raw(resource, ['rateLimit']);
    if (isRecord(rate) && rate.requestsPerSecond === undefined) {
      issues.push({ path: at('rateLimit', 'requestsPerSecond'), value: undefined, message: 'required: a rateLimit block needs requestsPerSecond' });
    }
  }
}

/** `INMESH_ENDPOINTS_<SERVICE>`: the service name upper-cased, every other character than A-Z 0-9 as `_`. */
export function endpointsVariable(service: string): string {
  return `INMESH_ENDPOINTS_${service.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** Paths of every own `__proto__` key, without recursion, to the depth a document can have. */
function protoKeys(input: unknown): PropertyKey[][] {
  const found: PropertyKey[][] = [];
  const stack: [unknown, PropertyKey[]][] = [[input, []]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [node, path] = item;
    if (typeof node !== 'object' || node === null || path.length > MAX_POLICY_DEPTH) continue;
    if (Object.hasOwn(node, '__proto__')) found.push([...path, '__proto__']);
    for (const [key, child] of Object.entries(node)) stack.push([child, [...path, Array.isArray(node) ? Number(key) : key]]);
  }
  return found.reverse();
}

/** Validation without throwing: the problems found, empty when the document is valid. */
export function policyIssues(input: unknown, options: ParsePolicyOptions & { crossField?: boolean } = {}): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  // Checked first, so that an oversized document costs no per-upstream work.
  const upstreams = isRecord(input) ? input.upstreams : undefined;
  if (isRecord(upstreams)) {
    const count = Object.keys(upstreams).length;
    if (count > MAX_UPSTREAMS)
      return [{ path: 'upstreams', value: `${count} upstreams`, message: `expected at most ${MAX_UPSTREAMS} upstreams in one document` }];
  }
  const resources = isRecord(input) ? input.resources : undefined;
  if (isRecord(resources) && Object.keys(resources).length > MAX_RESOURCES)
    return [{ path: 'resources', value: `${Object.keys(resources).length} resources`, message: `expected at most ${MAX_RESOURCES} resources in one document` }];
  // `__proto__` is the one key a plain object cannot hold as data (assigning it sets the
  // prototype), so the schema would drop it silently; refused wherever it is written.
  // `constructor`, `prototype` and the like are ordinary keys: lookups use own properties.
  for (const path of protoKeys(input)) issues.push({ path: formatPath(path), value: '__proto__', message: 'the key __proto__ is not allowed' });
  const result = documentSchema.safeParse(input);
  if (!result.success) for (const issue of result.error.issues) convertIssue(issue, [], input, issues);
  if (isRecord(input) && options.crossField !== false) issues.push(...crossFieldIssues(input, options));
  // One problem per path and message (a bad value can trip a rule twice).
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = `${issue.path}\u0000${issue.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Validates a policy document (already parsed from YAML/JSON, or written in
 * code). Returns a validated copy; throws InvalidPolicyError listing every
 * problem, `source` naming where the document came from (a file name, "code").
 */
export function parsePolicy(input: unknown, source = 'policy', options: ParsePolicyOptions = {}): PolicyDocument {
  const issues = policyIssues(input, options);
  if (issues.length > 0) throw new InvalidPolicyError(source, issues);
  return documentSchema.parse(input);
}
