import { describe, expect, it } from 'vitest';
import { ExportError } from '../../../src/errors.ts';
import { protoDuration, gatewayDuration, goDuration } from '../../../src/export/duration.ts';
import { policyFields } from '../../../src/export/fields.ts';
import { exportPolicy } from '../../../src/export/index.ts';
import { mergeCallers } from '../../../src/export/merge.ts';
import { createReporter, formatReport, reportJson } from '../../../src/export/report.ts';
import { parsePolicy, resolvePolicy } from '../../../src/policy/index.ts';

const resolve = (doc: unknown) => resolvePolicy(parsePolicy(doc, 'test policy'), 'test policy');

describe('export durations', () => {
  it('writes protobuf durations with 0 or 3 fractional digits', () => {
    expect(protoDuration(0)).toBe('0s');
    expect(protoDuration(250)).toBe('0.250s');
    expect(protoDuration(1500)).toBe('1.500s');
    expect(protoDuration(10_000)).toBe('10s');
    expect(protoDuration(90_001)).toBe('90.001s');
  });

  it('writes GEP-2257 and Go durations without fractions', () => {
    const gep = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;
    for (const ms of [0, 1, 250, 1500, 90_000, 86_400_000, 3_723_004]) {
      expect(gatewayDuration(ms)).toMatch(gep);
      expect(goDuration(ms)).toMatch(gep);
    }
    expect(gatewayDuration(1500)).toBe('1s500ms');
  });
});

describe('policyFields', () => {
  it('lists every set leaf by path, arrays of plain values as one field', () => {
    const fields = policyFields(
      resolve({
        apiVersion: 'inmesh/v1',
        upstreams: { orders: { retries: { retryOn: ['5xx', 'reset'] }, routes: [{ name: 'r', match: { path: '/a' } }] } },
      }),
    );
    expect(fields.get('upstreams.orders.retries.retryOn')).toEqual(['5xx', 'reset']);
    expect(fields.get('upstreams.orders.routes.0.match.path')).toBe('/a');
    expect(fields.has('upstreams.orders.routes.0.match.pathPrefix')).toBe(false);
    expect(fields.has('apiVersion')).toBe(false);
    expect([...fields.keys()].some((k) => k.startsWith('inbound.'))).toBe(true);
  });
});

describe('mergeCallers', () => {
  it('takes the union of the destinations and accepts the same values twice', () => {
    const a = resolve({ apiVersion: 'inmesh/v1', upstreams: { orders: { timeouts: { request: '2s' } } } });
    const b = resolve({ apiVersion: 'inmesh/v1', upstreams: { orders: { timeouts: { request: '2s' } }, users: {} } });
    const merged = mergeCallers([
      { source: 'a.yaml', policy: a },
      { source: 'b.yaml', policy: b },
    ]);
    expect(Object.keys(merged.upstreams).sort()).toEqual(['orders', 'users']);
  });

  it('refuses two values for one destination, naming both files and the field', () => {
    const a = resolve({ apiVersion: 'inmesh/v1', upstreams: { orders: { timeouts: { request: '2s' } } } });
    const b = resolve({ apiVersion: 'inmesh/v1', upstreams: { orders: { timeouts: { request: '3s' } } } });
    const run = () =>
      mergeCallers([
        { source: 'a.yaml', policy: a },
        { source: 'b.yaml', policy: b },
      ]);
    expect(run).toThrow(ExportError);
    expect(run).toThrow(/upstreams\.orders\.timeouts\.request: a\.yaml sets 2000 and b\.yaml sets 3000/);
  });

  it('refuses different defaults', () => {
    const a = resolve({ apiVersion: 'inmesh/v1', defaults: { retries: { attempts: 1 } } });
    const b = resolve({ apiVersion: 'inmesh/v1' });
    expect(() =>
      mergeCallers([
        { source: 'a.yaml', policy: a },
        { source: 'b.yaml', policy: b },
      ]),
    ).toThrow(/defaults\.retries\.attempts: a\.yaml sets 1 and b\.yaml sets 2/);
  });

  it('different defaults or resources export together where the target does not write them; Dapr, which writes them, refuses', () => {
    const a = { source: 'a.yaml', policy: resolve({ apiVersion: 'inmesh/v1', defaults: { timeouts: { request: '5s' } }, upstreams: { orders: {} } }) };
    const b = { source: 'b.yaml', policy: resolve({ apiVersion: 'inmesh/v1', defaults: { timeouts: { request: '9s' } }, upstreams: { users: {} } }) };
    for (const target of ['consul', 'istio', 'envoy', 'gateway-api'] as const) {
      const { report } = exportPolicy(target, [a, b]);
      expect(report.callers, target).toEqual(['a.yaml', 'b.yaml']);
      expect(report.fields.find((f) => f.field === 'upstreams.orders.timeouts.request')?.value, target).toBe(5000);
      expect(report.fields.find((f) => f.field === 'upstreams.users.timeouts.request')?.value, target).toBe(9000);
    }
    expect(() => exportPolicy('dapr', [a, b])).toThrow(/defaults\.timeouts\.request: a\.yaml sets 5000 and b\.yaml sets 9000/);
    // Each process's own Redis: the same resource name with different values is two clients, not one destination.
    const r1 = { source: 'r1.yaml', policy: resolve({ apiVersion: 'inmesh/v1', resources: { cache: { timeouts: { request: '100ms' } } } }) };
    const r2 = { source: 'r2.yaml', policy: resolve({ apiVersion: 'inmesh/v1', resources: { cache: { timeouts: { request: '300ms' } } } }) };
    for (const target of ['consul', 'istio', 'envoy', 'gateway-api'] as const) {
      expect(exportPolicy(target, [r1, r2]).report.fields.find((f) => f.field === 'resources.cache.timeouts.request')?.verdict, target).toBe('dropped');
    }
    expect(() => exportPolicy('dapr', [r1, r2])).toThrow(/resources\.cache\.timeouts\.request: r1\.yaml sets 100 and r2\.yaml sets 300/);
    const c = { source: 'c.yaml', policy: resolve({ apiVersion: 'inmesh/v1', upstreams: { orders: { timeouts: { request: '9s' } } } }) };
    expect(() => exportPolicy('consul', [a, c])).toThrow(/upstreams\.orders\.timeouts\.request: a\.yaml sets 5000 and c\.yaml sets 9000/);
  });
});

describe('the report', () => {
  const fields = policyFields(resolve({ apiVersion: 'inmesh/v1', upstreams: { orders: {} } }));

  it('marks every field no exporter mentioned as dropped, and counts', () => {
    const r = createReporter('istio', '1.27', fields);
    r.exact('upstreams.orders.timeouts.request', 'vs.yaml spec.http[0].timeout');
    r.lossy('upstreams.orders.timeouts.idle', 'idle timeout of the connection pool', 'dr.yaml idleTimeout');
    r.droppedUnder('upstreams.orders.rateLimit', 'no rate limit');
    const report = r.finish([{ name: 'vs.yaml', documents: [], format: 'yaml', scope: 'every caller' }], ['a.yaml']);
    expect(report.exact).toBe(1);
    expect(report.lossy).toBe(1);
    expect(report.dropped).toBe(fields.size - 2);
    expect(report.fields.find((e) => e.field === 'upstreams.orders.limits.maxRequests')?.why).toMatch(/does not map/);
    expect(formatReport(report)).toContain('exact   upstreams.orders.timeouts.request = ');
  });

  it('shows a limit that is off (Infinity) as Infinity in the text and a conflict; the JSON has null (unbounded), as the admin endpoint', () => {
    const off = resolve({ apiVersion: 'inmesh/v1', upstreams: { orders: { limits: { enabled: false } } } });
    const { report } = exportPolicy('consul', [{ source: 'off.yaml', policy: off }]);
    expect(formatReport(report)).toMatch(/upstreams\.orders\.limits\.maxRequests = Infinity: /);
    expect(formatReport(report)).not.toMatch(/= null/);
    const json = JSON.parse(reportJson(report)) as { fields: { field: string; value: unknown }[] };
    expect(json.fields.find((e) => e.field === 'upstreams.orders.limits.maxRequests')?.value).toBeNull();
    const on = resolve({ apiVersion: 'inmesh/v1', upstreams: { orders: { limits: { maxRequests: 10 } } } });
    expect(() => exportPolicy('consul', [{ source: 'off.yaml', policy: off }, { source: 'on.yaml', policy: on }])).toThrow(
      /limits\.maxPendingRequests: off\.yaml sets Infinity and on\.yaml sets /,
    );
  });

  it('refuses a field that is not in the policy, and one reported twice', () => {
    const r = createReporter('istio', '1.27', fields);
    expect(() => r.exact('upstreams.orders.nope', 'x')).toThrow(/not a field of the policy/);
    r.exact('upstreams.orders.timeouts.request', 'x');
    expect(() => r.exact('upstreams.orders.timeouts.request', 'x')).toThrow(/twice/);
  });
});
