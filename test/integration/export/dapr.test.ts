/**
 * The Dapr exporter against Dapr's own rules: golden files for the policy that
 * sets every field, every document checked by the Resiliency CRD made strict,
 * daprd's decode rules and a CEL compile of each `trip` (dapr-validate.ts), and
 * the zero and disabled cases that mean something else in Dapr.
 * Regenerate the golden files with `UPDATE_GOLDEN=1 npx vitest run test/integration/export/dapr.test.ts`.
 */
import { readFileSync } from 'node:fs';
import { CelScalar, celEnv, parse, plan } from '@bufbuild/cel';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { runCli } from '../../../src/cli/index.ts';
import { ExportError } from '../../../src/errors.ts';
import type { DaprResiliency } from '../../../src/export/dapr.ts';
import { exportPolicy, formatReport, renderFile, type ExportCaller, type ExportOptions, type ReportEntry } from '../../../src/export/index.ts';
import { parsePolicy, resolvePolicy } from '../../../src/policy/index.ts';
import { statusCodeProblems, TRIP_VARIABLES, tripProblems, validateResiliency } from './dapr-validate.ts';
import { expectGolden } from './golden.ts';

const FULL = 'test/fixtures/export/full-policy.yaml';
const GOLDEN = 'test/fixtures/export/dapr';

const caller = (doc: unknown, source = 'test.yaml'): ExportCaller => ({ source, policy: resolvePolicy(parsePolicy(doc, source), source) });
const fullCaller = (): ExportCaller => caller(parseYaml(readFileSync(FULL, 'utf8')), FULL);
const one = (doc: unknown, options: ExportOptions = {}) => {
  const result = exportPolicy('dapr', [caller(doc)], options);
  return { ...result, doc: result.files[0]?.documents[0] as DaprResiliency };
};
const entry = (fields: readonly ReportEntry[], field: string): ReportEntry | undefined => fields.find((e) => e.field === field);

function golden(name: string, text: string): void {
  expectGolden(GOLDEN, new Map([[name, text]]), 'test/integration/export/dapr.test.ts');
}

describe('dapr export of the policy that sets every field', () => {
  it('matches the golden files, is valid for Dapr, and reports every field explicitly', () => {
    const { files, report } = exportPolicy('dapr', [fullCaller()]);
    expect(files.map((f) => f.name)).toEqual(['resiliency.yaml']);
    const [file] = files;
    if (file === undefined) throw new Error('no file');
    golden('resiliency.yaml', renderFile(file));
    golden('report.txt', `${formatReport(report)}\n`);
    expect(validateResiliency(file.documents[0], report.targetVersion)).toEqual([]);
    expect(report.fields.filter((e) => e.why?.includes('does not map this field'))).toEqual([]);
    expect(report.lossy + report.dropped).toBeGreaterThan(0);
  });

  it('writes each resource as a components outbound target with policies of its own, every resources field reported', () => {
    const { files, report } = exportPolicy('dapr', [fullCaller()]);
    const doc = files[0]?.documents[0] as DaprResiliency;
    expect(doc.spec.targets.components).toEqual({
      cache: { outbound: { timeout: 'cache-component-timeout', retry: 'cache-component-retry', circuitBreaker: 'cache-component-breaker' } },
      'orders-db': { outbound: { timeout: 'orders-db-component-timeout', retry: 'orders-db-component-retry' } },
    });
    const policies = doc.spec.policies;
    // perTry when set (the total dropped), else the total as a lossy per-attempt timeout.
    expect(policies.timeouts?.['cache-component-timeout']).toBe('300ms');
    expect(policies.timeouts?.['orders-db-component-timeout']).toBe('4s');
    // matching filters status codes, not error codes: none written, every failure retried.
    expect(policies.retries?.['cache-component-retry']).toEqual({ policy: 'exponential', maxInterval: '100ms', maxRetries: 3 });
    expect(policies.retries?.['orders-db-component-retry']).toEqual({ policy: 'exponential', maxInterval: '250ms', maxRetries: 1 });
    expect(policies.circuitBreakers?.['cache-component-breaker']).toEqual({ maxRequests: 1, interval: '5s', timeout: '2s', trip: 'requests >= 10 && totalFailures * 100 >= requests * 40' });
    expect(policies.circuitBreakers?.['orders-db-component-breaker']).toBeUndefined();
    expect(files[0]?.scope).toContain("must be the component's metadata.name");
    expect(validateResiliency(doc, report.targetVersion)).toEqual([]);

    const resources = report.fields.filter((e) => e.field.startsWith('resources.'));
    expect(resources.length).toBeGreaterThan(30);
    expect(resources.filter((e) => e.why?.includes('does not map this field'))).toEqual([]);
    const verdict = (field: string) => entry(report.fields, field)?.verdict;
    expect(entry(report.fields, 'resources.cache.name')?.to).toContain("metadata.name");
    expect(verdict('resources.cache.timeouts.perTry')).toBe('exact');
    expect(verdict('resources.cache.timeouts.request')).toBe('dropped');
    expect(verdict('resources.orders-db.timeouts.request')).toBe('lossy');
    expect(verdict('resources.cache.retries.attempts')).toBe('exact');
    expect(verdict('resources.cache.retries.retryOn')).toBe('lossy');
    expect(verdict('resources.cache.retries.neverRetry')).toBe('dropped');
    expect(verdict('resources.cache.retries.idempotent')).toBe('exact');
    expect(verdict('resources.orders-db.retries.idempotent')).toBe('dropped');
    expect(verdict('resources.cache.retries.backoff.base')).toBe('dropped');
    expect(verdict('resources.cache.retries.budget.percent')).toBe('dropped');
    expect(verdict('resources.cache.limits.maxRequests')).toBe('dropped');
    expect(verdict('resources.orders-db.limits.maxRequests')).toBe('exact');
    expect(verdict('resources.cache.rateLimit.requestsPerSecond')).toBe('dropped');
    expect(verdict('resources.cache.circuitBreaker.halfOpenAfter')).toBe('exact');
    expect(verdict('resources.cache.circuitBreaker.enabled')).toBe('lossy');
    expect(entry(report.fields, 'resources.orders-db.circuitBreaker.window')?.why).toContain('inert');
  });

  it('reports resources without components when there are none, and refuses a resource whose policy names an upstream already took', () => {
    const none = one({ apiVersion: 'inmesh/v1', upstreams: { a: {} } });
    expect(none.doc.spec.targets.components).toBeUndefined();
    const empty = one({ apiVersion: 'inmesh/v1', resources: { queue: { retries: { retryOn: [] } } } });
    expect(empty.doc.spec.targets.components?.['queue']?.outbound?.retry).toBe('queue-component-retry');
    expect(empty.report.fields.filter((e) => e.field.startsWith('resources.') && e.why?.includes('does not map this field'))).toEqual([]);
    expect(() => one({ apiVersion: 'inmesh/v1', upstreams: { 'x-component': {} }, resources: { x: {} } })).toThrow(/policy 'x-component-timeout'/);
  });

  it('leaves matching out of a component retry policy on 1.14 to 1.16, each document valid', () => {
    for (const version of ['1.16', '1.15', '1.14']) {
      const { files } = exportPolicy('dapr', [fullCaller()], { targetVersion: version });
      const doc = files[0]?.documents[0] as DaprResiliency;
      expect(doc.spec.policies.retries?.['cache-component-retry']?.matching, version).toBeUndefined();
      expect(validateResiliency(doc, version), version).toEqual([]);
    }
  });

  it('exports with --service as scopes and reports the inbound fields by their Dapr settings', () => {
    const { files, report } = exportPolicy('dapr', [fullCaller()], { service: 'checkout', namespace: 'shop' });
    const doc = files[0]?.documents[0] as DaprResiliency;
    golden('resiliency-service.yaml', renderFile(files[0] as (typeof files)[number]));
    expect(doc.scopes).toEqual(['checkout']);
    expect(doc.metadata).toEqual({ name: 'inmesh-checkout', namespace: 'shop' });
    expect(files[0]?.scope).toContain('app id checkout only');
    expect(entry(report.fields, 'inbound.maxConcurrent')?.why).toContain('dapr.io/app-max-concurrency: "256"');
    expect(report.fields.filter((e) => e.why?.includes('does not map this field'))).toEqual([]);
    expect(validateResiliency(doc, report.targetVersion)).toEqual([]);
  });

  it('writes matching.httpStatusCodes for 1.15 and 1.16 and drops retryOn for 1.14, each valid for its version', () => {
    for (const version of ['1.16', '1.15', '1.14']) {
      const { files, report } = exportPolicy('dapr', [fullCaller()], { targetVersion: version });
      const doc = files[0]?.documents[0] as DaprResiliency;
      expect(validateResiliency(doc, version), version).toEqual([]);
      const orders = doc.spec.policies.retries?.['orders-retry'];
      const retryOn = entry(report.fields, 'upstreams.orders.retries.retryOn');
      if (version === '1.14') {
        expect(orders?.matching).toBeUndefined();
        expect(retryOn?.verdict).toBe('dropped');
        expect(retryOn?.why).toContain('1.15');
        expect(entry(report.fields, 'upstreams.orders.retries.retriableStatusCodes')?.verdict).toBe('dropped');
      } else {
        expect(orders?.matching).toEqual({ httpStatusCodes: '409,503' });
        expect(entry(report.fields, 'upstreams.orders.retries.retriableStatusCodes')?.verdict).toBe('exact');
      }
    }
    const v116 = exportPolicy('dapr', [fullCaller()]).files[0]?.documents[0];
    expect(validateResiliency(v116, '1.14').some((p) => p.includes('matching'))).toBe(true);
  });
});

describe('dapr zero, disabled and lossy cases', () => {
  it('writes a 0s timeout as a named policy (none) so the default timeout does not apply instead', () => {
    const { doc, report } = one({ apiVersion: 'inmesh/v1', defaults: { timeouts: { request: '9s' } }, upstreams: { pricing: { timeouts: { request: '0s', perTry: '0s' } } } });
    expect(doc.spec.policies.timeouts?.['pricing-timeout']).toBe('0s');
    expect(doc.spec.targets.apps?.['pricing']?.timeout).toBe('pricing-timeout');
    expect(doc.spec.policies.timeouts?.['DefaultAppTimeoutPolicy']).toBe('9s');
    expect(entry(report.fields, 'upstreams.pricing.timeouts.request')?.verdict).toBe('exact');
    expect(validateResiliency(doc, '1.16')).toEqual([]);
  });

  it('puts perTry in the timeout policy and drops the total; without perTry writes the total as lossy', () => {
    const both = one({ apiVersion: 'inmesh/v1', upstreams: { a: { timeouts: { request: '3s', perTry: '750ms' } } } });
    expect(both.doc.spec.policies.timeouts?.['a-timeout']).toBe('750ms');
    expect(entry(both.report.fields, 'upstreams.a.timeouts.perTry')?.verdict).toBe('exact');
    expect(entry(both.report.fields, 'upstreams.a.timeouts.request')?.verdict).toBe('dropped');
    const total = one({ apiVersion: 'inmesh/v1', upstreams: { a: { timeouts: { request: '1m30s', perTry: '0s' } } } });
    expect(total.doc.spec.policies.timeouts?.['a-timeout']).toBe('1m30s');
    expect(entry(total.report.fields, 'upstreams.a.timeouts.request')?.verdict).toBe('lossy');
  });

  it('writes attempts 0 as maxRetries 0 in a named policy (which also turns off daprd built-in retries)', () => {
    const { doc, report } = one({ apiVersion: 'inmesh/v1', upstreams: { a: { retries: { attempts: 0 } } } });
    expect(doc.spec.policies.retries?.['a-retry']?.maxRetries).toBe(0);
    expect(doc.spec.targets.apps?.['a']?.retry).toBe('a-retry');
    expect(entry(report.fields, 'upstreams.a.retries.attempts')?.verdict).toBe('exact');
    expect(validateResiliency(doc, '1.16')).toEqual([]);
  });

  it('names no breaker for an app whose breaker is off and reports its settings as inert', () => {
    const { doc, report } = one({ apiVersion: 'inmesh/v1', upstreams: { a: { circuitBreaker: { enabled: false } }, b: {} } });
    expect(doc.spec.targets.apps?.['a']?.circuitBreaker).toBeUndefined();
    expect(doc.spec.policies.circuitBreakers?.['a-breaker']).toBeUndefined();
    expect(doc.spec.targets.apps?.['b']?.circuitBreaker).toBe('b-breaker');
    expect(entry(report.fields, 'upstreams.a.circuitBreaker.enabled')?.verdict).toBe('exact');
    expect(entry(report.fields, 'upstreams.a.circuitBreaker.window')?.why).toContain('inert');
    expect(validateResiliency(doc, '1.16')).toEqual([]);
  });

  it('keeps only status conditions in matching and says when the list has none', () => {
    const { doc, report } = one({ apiVersion: 'inmesh/v1', upstreams: { a: { retries: { retryOn: ['5xx', 'retriable-4xx', 'connect-failure', 'refused-stream', 'reset'] } }, b: { retries: { retryOn: ['connect-failure'] } } } });
    expect(doc.spec.policies.retries?.['a-retry']?.matching).toEqual({ httpStatusCodes: '409,500-599' });
    expect(entry(report.fields, 'upstreams.a.retries.retryOn')?.verdict).toBe('exact');
    expect(doc.spec.policies.retries?.['b-retry']?.matching).toBeUndefined();
    expect(entry(report.fields, 'upstreams.b.retries.retryOn')?.verdict).toBe('lossy');
    expect(validateResiliency(doc, '1.16')).toEqual([]);
  });

  it('builds a trip expression that opens exactly at the threshold once enough requests are counted', () => {
    const { doc } = one({ apiVersion: 'inmesh/v1', upstreams: { a: { circuitBreaker: { errorThresholdPercent: 40, minimumRequests: 25, window: '20s', halfOpenAfter: '8s' } } } });
    const breaker = doc.spec.policies.circuitBreakers?.['a-breaker'];
    expect(breaker).toEqual({ maxRequests: 1, interval: '20s', timeout: '8s', trip: 'requests >= 25 && totalFailures * 100 >= requests * 40' });
    const env = celEnv({ variables: Object.fromEntries(TRIP_VARIABLES.map((v) => [v, CelScalar.INT])) });
    const trip = plan(env, parse(breaker?.trip ?? ''));
    const at = (requests: bigint, failures: bigint) =>
      trip({ requests, totalFailures: failures, totalSuccesses: requests - failures, consecutiveSuccesses: 0n, consecutiveFailures: 1n });
    expect(at(24n, 24n)).toBe(false);
    expect(at(25n, 9n)).toBe(false);
    expect(at(25n, 10n)).toBe(true);
    expect(at(100n, 40n)).toBe(true);
    const fractional = one({ apiVersion: 'inmesh/v1', upstreams: { a: { circuitBreaker: { errorThresholdPercent: 12.5, minimumRequests: 8 } } } });
    const fractionalTrip = fractional.doc.spec.policies.circuitBreakers?.['a-breaker']?.trip ?? '';
    expect(fractionalTrip).toBe('requests >= 8 && totalFailures * 1000 >= requests * 125');
    expect(tripProblems(fractionalTrip)).toEqual([]);
  });

  it('reports an unlimited inbound maxConcurrent as exact (no annotation) with --service', () => {
    const { report } = one({ apiVersion: 'inmesh/v1', inbound: { maxConcurrent: 0 }, upstreams: { a: {} } }, { service: 'web' });
    expect(entry(report.fields, 'inbound.maxConcurrent')?.verdict).toBe('exact');
    expect(entry(report.fields, 'inbound.timeouts.request')?.verdict).toBe('dropped');
  });

  it('refuses two upstreams that call the same app id', () => {
    expect(() => one({ apiVersion: 'inmesh/v1', upstreams: { a: { discovery: { service: 'orders' } }, orders: {} } })).toThrow(ExportError);
    expect(() => one({ apiVersion: 'inmesh/v1', upstreams: { a: { discovery: { service: 'orders' } }, orders: {} } })).toThrow(/both call app id 'orders'/);
  });

  it('merges several callers into one unscoped Resiliency and refuses conflicting values naming both files', () => {
    const a = caller({ apiVersion: 'inmesh/v1', upstreams: { orders: { retries: { attempts: 1 } } } }, 'a.yaml');
    const b = caller({ apiVersion: 'inmesh/v1', upstreams: { orders: { retries: { attempts: 1 } }, users: {} } }, 'b.yaml');
    const merged = exportPolicy('dapr', [a, b]).files[0]?.documents[0] as DaprResiliency;
    expect(Object.keys(merged.spec.targets.apps ?? {}).sort()).toEqual(['orders', 'users']);
    expect(merged.scopes).toBeUndefined();
    const c = caller({ apiVersion: 'inmesh/v1', upstreams: { orders: { retries: { attempts: 4 } } } }, 'c.yaml');
    expect(() => exportPolicy('dapr', [a, c])).toThrow(/a\.yaml.*c\.yaml/);
  });
});

describe('dapr validation refuses what daprd would skip', () => {
  it('refuses unknown fields, bad durations, policies, retry counts and status codes', () => {
    const bad = {
      apiVersion: 'dapr.io/v1alpha1',
      kind: 'Resiliency',
      metadata: { name: 'x' },
      spec: {
        policies: {
          timeouts: { t: '1.5 s' },
          retries: { r: { policy: 'linear', maxRetries: -2, maxInterval: '10', matching: { httpStatusCodes: '600,503-500,5-0-1' } } },
          circuitBreakers: { c: { trip: 'consecutiveFailures > 5', maxRequests: -1, bogus: 1 } },
        },
        targets: {
          apps: { a: { retry: 'missing' } },
          components: { store: { outbound: { timeout: 'absent', extra: 'x' }, inbound: { circuitBreaker: 'gone' } }, other: { sideways: {} } },
        },
      },
    };
    const problems = validateResiliency(bad, '1.16').join('\n');
    for (const expected of [
      'bogus',
      't: "1.5 s"',
      'policy: "linear"',
      'maxRetries: -2',
      'maxInterval: "10"',
      '600',
      '503-500',
      'more than one',
      'maxRequests',
      'no policy missing',
      'targets.components.store.outbound.timeout: no policy absent',
      'targets.components.store.inbound.circuitBreaker: no policy gone',
      'extra',
      'sideways',
    ]) {
      expect(problems).toContain(expected);
    }
  });

  it('compiles trip only over the five counts, as ints, to a bool', () => {
    expect(tripProblems('consecutiveFailures > 5')).toEqual([]);
    expect(tripProblems('requests >= 25 && totalFailures * 100 >= requests * 40')).toEqual([]);
    expect(tripProblems('failures > 5')[0]).toContain('failures');
    expect(tripProblems('requests >')[0]).toContain('does not parse');
    expect(tripProblems('requests * 2u > 1u')[0]).toContain('does not evaluate');
    expect(tripProblems('requests + 1')[0]).toContain('not a bool');
  });

  it('parses status-code lists as daprd does', () => {
    expect(statusCodeProblems('429,500-599,,', 100, 599)).toEqual([]);
    expect(statusCodeProblems('99', 100, 599)).toHaveLength(1);
    expect(statusCodeProblems('abc', 100, 599)).toHaveLength(1);
  });
});

describe('inmesh export --to dapr', () => {
  it('exits 2 on lossy fields, 0 with --allow-lossy, and refuses an unknown version', () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };
    expect(runCli(['export', '--to', 'dapr', FULL], io)).toBe(2);
    expect(out.join('\n')).toContain('kind: Resiliency');
    expect(err.join('\n')).toContain('export to dapr 1.16');
    expect(runCli(['export', '--to', 'dapr', '--allow-lossy', '--target-version', '1.14', FULL], io)).toBe(0);
    expect(runCli(['export', '--to', 'dapr', '--target-version', '1.13', FULL], io)).toBe(1);
    expect(err.join('\n')).toContain('supported: 1.16, 1.15, 1.14');
  });
});
