/**
 * Checks a Dapr Resiliency the way daprd would read it, offline. The CRD
 * (test/fixtures/dapr-crds/resiliency.yaml, as Dapr's Helm chart ships it) is
 * loose: the API server keeps unknown fields and daprd skips a Resiliency it cannot
 * decode, logging and going on. So the check is stricter than the CRD:
 * - its openAPIV3Schema with every object closed (unknown fields refused), plus
 *   `retries.<name>.matching` for Dapr 1.15+ (not in the CRD copy; daprd's
 *   v1alpha1 RetryMatching: httpStatusCodes, gRPCStatusCodes);
 * - daprd's decode rules, by hand: Go durations, the policy enum, maxRetries
 *   >= -1, maxRequests a uint32, status-code lists as daprd's
 *   ParseRetryConditionFilter parses them, targets (apps, and components
 *   outbound and inbound) naming existing policies;
 * - every `trip` compiles as CEL over exactly gobreaker's five counts (ints, as
 *   daprd passes them) and yields a bool.
 */
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { CelScalar, celEnv, isCelError, parse, plan } from '@bufbuild/cel';
import { parse as parseYaml } from 'yaml';

const CRD_PATH = new URL('../../fixtures/dapr-crds/resiliency.yaml', import.meta.url);

/** The counts daprd binds when it evaluates `trip` (pkg/resiliency/breaker). */
export const TRIP_VARIABLES = ['requests', 'totalSuccesses', 'totalFailures', 'consecutiveSuccesses', 'consecutiveFailures'] as const;

/** Go's time.ParseDuration grammar (a bare 0 is allowed; units ns us µs ms s m h). */
const GO_DURATION = /^[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$/;

type Schema = Record<string, unknown>;

function closeObjects(schema: Schema): Schema {
  const out: Schema = { ...schema };
  if (schema['properties'] !== undefined) {
    const props: Record<string, Schema> = {};
    for (const [k, v] of Object.entries(schema['properties'] as Record<string, Schema>)) props[k] = closeObjects(v);
    out['properties'] = props;
    if (schema['additionalProperties'] === undefined) out['additionalProperties'] = false;
  }
  if (typeof schema['additionalProperties'] === 'object') out['additionalProperties'] = closeObjects(schema['additionalProperties'] as Schema);
  if (typeof schema['items'] === 'object') out['items'] = closeObjects(schema['items'] as Schema);
  return out;
}

function versionAtLeast(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split('.').map(Number);
  return a > major || (a === major && b >= minor);
}

/** The CRD's schema made strict, for one Dapr version. */
export function strictResiliencySchema(version: string): Schema {
  const crd = parseYaml(readFileSync(CRD_PATH, 'utf8')) as { spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] } };
  const v1 = crd.spec.versions.find((v) => v.name === 'v1alpha1');
  if (v1 === undefined) throw new Error('the CRD copy has no v1alpha1');
  const schema = structuredClone(v1.schema.openAPIV3Schema);
  if (versionAtLeast(version, 1, 15)) {
    const spec = (schema['properties'] as Record<string, Schema>)['spec'] as Schema;
    const policies = (spec['properties'] as Record<string, Schema>)['policies'] as Schema;
    const retries = (policies['properties'] as Record<string, Schema>)['retries'] as Schema;
    const retry = retries['additionalProperties'] as Schema;
    (retry['properties'] as Record<string, Schema>)['matching'] = {
      type: 'object',
      properties: { httpStatusCodes: { type: 'string' }, gRPCStatusCodes: { type: 'string' } },
    };
  }
  return closeObjects(schema);
}

/** daprd's compilePattern over a comma-separated list (empty parts skipped). */
export function statusCodeProblems(list: string, min: number, max: number): string[] {
  const problems: string[] = [];
  for (const part of list.split(',')) {
    if (part === '') continue;
    const bounds = part.split('-');
    if (bounds.length > 2) {
      problems.push(`${part}: more than one '-'`);
      continue;
    }
    const [start, end = start] = bounds.map((b) => (/^[+-]?[0-9]+$/.test(b) ? Number(b) : Number.NaN));
    if (start === undefined || !Number.isInteger(start) || start < min || start > max) problems.push(`${part}: start code not in ${min}-${max}`);
    else if (end === undefined || !Number.isInteger(end) || end < min || end > max) problems.push(`${part}: end code not in ${min}-${max}`);
    else if (end < start) problems.push(`${part}: start above end`);
  }
  return problems;
}

/** Problems of one trip expression: parse errors, names other than the five counts, a non-bool or failing result. */
export function tripProblems(expression: string): string[] {
  let parsed;
  try {
    parsed = parse(expression);
  } catch (error) {
    return [`does not parse: ${(error as Error).message}`];
  }
  const names = new Set<string>();
  const walk = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    const kind = (node as { exprKind?: { case?: string; value?: { name?: string } } }).exprKind;
    if (kind?.case === 'identExpr' && kind.value?.name !== undefined) names.add(kind.value.name);
    for (const value of Object.values(node)) walk(value);
  };
  walk(parsed.expr);
  const unknown = [...names].filter((n) => !(TRIP_VARIABLES as readonly string[]).includes(n));
  if (unknown.length > 0) return [`names ${unknown.join(', ')}, not one of ${TRIP_VARIABLES.join(', ')}`];
  const env = celEnv({ variables: Object.fromEntries(TRIP_VARIABLES.map((v) => [v, CelScalar.INT])) });
  const run = plan(env, parsed);
  // Evaluating over a few counts catches what a type check would: int/uint mixes, non-bool results.
  for (const [requests, failures] of [
    [0n, 0n],
    [1n, 1n],
    [100n, 40n],
  ] as const) {
    const result = run({ requests, totalSuccesses: requests - failures, totalFailures: failures, consecutiveSuccesses: 0n, consecutiveFailures: failures });
    if (isCelError(result)) return [`does not evaluate: ${result.message}`];
    if (typeof result !== 'boolean') return [`yields ${typeof result}, not a bool`];
  }
  return [];
}

interface RetryDoc {
  policy?: unknown;
  duration?: unknown;
  maxInterval?: unknown;
  maxRetries?: unknown;
  matching?: { httpStatusCodes?: string; gRPCStatusCodes?: string };
}
interface BreakerDoc {
  maxRequests?: unknown;
  interval?: unknown;
  timeout?: unknown;
  trip?: unknown;
}
interface TargetDoc {
  timeout?: string;
  retry?: string;
  circuitBreaker?: string;
}
interface ResiliencyDoc {
  spec?: {
    policies?: { timeouts?: Record<string, unknown>; retries?: Record<string, RetryDoc>; circuitBreakers?: Record<string, BreakerDoc> };
    targets?: { apps?: Record<string, TargetDoc>; components?: Record<string, { outbound?: TargetDoc; inbound?: TargetDoc }> };
  };
}

/** Every problem daprd or a strict API server would have with `doc`; empty when it is valid. */
export function validateResiliency(doc: unknown, version: string): string[] {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validate = ajv.compile(strictResiliencySchema(version));
  const problems: string[] = [];
  if (!validate(doc)) for (const e of validate.errors ?? []) problems.push(`schema: ${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
  const spec = (doc as ResiliencyDoc).spec ?? {};
  const policies = spec.policies ?? {};
  const duration = (where: string, value: unknown): void => {
    if (value !== undefined && (typeof value !== 'string' || !GO_DURATION.test(value))) problems.push(`${where}: ${JSON.stringify(value)} is not a Go duration`);
  };
  for (const [name, value] of Object.entries(policies.timeouts ?? {})) duration(`timeouts.${name}`, value);
  for (const [name, r] of Object.entries(policies.retries ?? {})) {
    if (r.policy !== undefined && r.policy !== 'constant' && r.policy !== 'exponential') problems.push(`retries.${name}.policy: ${JSON.stringify(r.policy)}`);
    duration(`retries.${name}.duration`, r.duration);
    duration(`retries.${name}.maxInterval`, r.maxInterval);
    if (r.maxRetries !== undefined && (!Number.isInteger(r.maxRetries) || (r.maxRetries as number) < -1)) problems.push(`retries.${name}.maxRetries: ${JSON.stringify(r.maxRetries)}`);
    if (r.matching?.httpStatusCodes !== undefined) for (const p of statusCodeProblems(r.matching.httpStatusCodes, 100, 599)) problems.push(`retries.${name}.matching.httpStatusCodes: ${p}`);
    if (r.matching?.gRPCStatusCodes !== undefined) for (const p of statusCodeProblems(r.matching.gRPCStatusCodes, 0, 16)) problems.push(`retries.${name}.matching.gRPCStatusCodes: ${p}`);
  }
  for (const [name, b] of Object.entries(policies.circuitBreakers ?? {})) {
    duration(`circuitBreakers.${name}.interval`, b.interval);
    duration(`circuitBreakers.${name}.timeout`, b.timeout);
    if (b.maxRequests !== undefined && (!Number.isInteger(b.maxRequests) || (b.maxRequests as number) < 0 || (b.maxRequests as number) > 0xffff_ffff)) {
      problems.push(`circuitBreakers.${name}.maxRequests: ${JSON.stringify(b.maxRequests)} is not a uint32`);
    }
    if (typeof b.trip === 'string') for (const p of tripProblems(b.trip)) problems.push(`circuitBreakers.${name}.trip: ${p}`);
  }
  const target = (where: string, t: TargetDoc | undefined): void => {
    if (t === undefined) return;
    if (t.timeout !== undefined && policies.timeouts?.[t.timeout] === undefined) problems.push(`${where}.timeout: no policy ${t.timeout}`);
    if (t.retry !== undefined && policies.retries?.[t.retry] === undefined) problems.push(`${where}.retry: no policy ${t.retry}`);
    if (t.circuitBreaker !== undefined && policies.circuitBreakers?.[t.circuitBreaker] === undefined) problems.push(`${where}.circuitBreaker: no policy ${t.circuitBreaker}`);
  };
  for (const [app, t] of Object.entries(spec.targets?.apps ?? {})) target(`targets.apps.${app}`, t);
  for (const [name, c] of Object.entries(spec.targets?.components ?? {})) {
    target(`targets.components.${name}.outbound`, c.outbound);
    target(`targets.components.${name}.inbound`, c.inbound);
  }
  return problems;
}
