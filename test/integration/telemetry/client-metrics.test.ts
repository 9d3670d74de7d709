/**
 * The client state metrics on a real mesh over loopback servers: retries,
 * ejections and the ejected gauge, breaker transitions and state, registry
 * staleness; each with its documented unit and attributes (docs/telemetry.md).
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GaugeMetricData, MetricData, SumMetricData } from '@opentelemetry/sdk-metrics';
import { createMesh, type Mesh } from '../../../src/index.ts';
import { registerOtel, type OtelHarness } from '../../unit/telemetry/otel-harness.ts';

let otel: OtelHarness;
let mesh: Mesh;
const servers: Server[] = [];

async function serve(status: number): Promise<string> {
  const s = createServer((_req, res) => res.writeHead(status).end());
  s.keepAliveTimeout = 10;
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  servers.push(s);
  return `127.0.0.1:${(s.address() as AddressInfo).port}`;
}

type Point = { attributes: Record<string, unknown>; value: unknown };
const points = (m: MetricData | undefined): Point[] => (m as SumMetricData | GaugeMetricData | undefined)?.dataPoints ?? [];

beforeAll(async () => {
  otel = registerOtel();
  const ok = await serve(200);
  const bad = await serve(503);
  mesh = createMesh({
    env: { INMESH_TRACING: 'true' },
    policy: {
      apiVersion: 'inmesh/v1',
      upstreams: {
        orders: {
          discovery: { registry: 'static', endpoints: [ok, bad] },
          retries: { attempts: 1, backoff: { base: '1ms', max: '2ms' } },
          outlierDetection: { consecutive5xx: 1, maxEjectionPercent: 50 },
        },
        down: {
          discovery: { registry: 'static', endpoints: [bad] },
          retries: { attempts: 0 },
          outlierDetection: { consecutive5xx: 0 },
          circuitBreaker: { minimumRequests: 3, errorThresholdPercent: 50, halfOpenAfter: '1m' },
        },
      },
    },
  });
  // orders: round robin over [ok, bad]; a 503 is retried on ok, and bad is ejected after its first 503.
  for (let i = 0; i < 4; i++) expect((await mesh.request('http://orders/')).statusCode).toBe(200);
  // down: every call answers 503 until the breaker opens.
  for (let i = 0; i < 6; i++) await mesh.request('http://down/').then((r) => r.body.dump(), () => undefined);
});

afterAll(async () => {
  await mesh.close();
  await otel.shutdown();
  await Promise.all(servers.map((s) => new Promise((r) => (s.closeAllConnections(), s.close(r)))));
});

describe('client state metrics', () => {
  it('inmesh.client.retries counts the retry, in {retry}', async () => {
    const m = await otel.metric('inmesh.client.retries');
    expect(m?.descriptor.unit).toBe('{retry}');
    const total = points(m).reduce((n, p) => n + (p.value as number), 0);
    expect(total).toBeGreaterThanOrEqual(1);
  });

  it('inmesh.client.ejections and inmesh.client.ejected_endpoints show the ejected endpoint of orders', async () => {
    const ejections = await otel.metric('inmesh.client.ejections');
    expect(ejections?.descriptor.unit).toBe('{ejection}');
    const orders = points(ejections).filter((p) => p.attributes['inmesh.service'] === 'orders');
    expect(orders.reduce((n, p) => n + (p.value as number), 0)).toBe(1);
    expect(typeof orders[0]?.attributes['inmesh.ejection.reason']).toBe('string');
    const gauge = await otel.metric('inmesh.client.ejected_endpoints');
    expect(gauge?.descriptor.unit).toBe('{endpoint}');
    expect(points(gauge).find((p) => p.attributes['inmesh.service'] === 'orders')?.value).toBe(1);
  });

  it('inmesh.client.breaker.transitions and .state show the breaker of down open', async () => {
    const transitions = await otel.metric('inmesh.client.breaker.transitions');
    expect(transitions?.descriptor.unit).toBe('{transition}');
    expect(points(transitions).find((p) => p.attributes['inmesh.service'] === 'down' && p.attributes['inmesh.breaker.state'] === 'open')?.value).toBe(1);
    const state = await otel.metric('inmesh.client.breaker.state');
    expect(state?.descriptor.unit).toBe('1');
    const down = Object.fromEntries(points(state).filter((p) => p.attributes['inmesh.service'] === 'down').map((p) => [p.attributes['inmesh.breaker.state'], p.value]));
    expect(down).toEqual({ closed: 0, open: 1, 'half-open': 0 });
  });

  it('inmesh.registry.staleness is 0 s while the static registry answers', async () => {
    const m = await otel.metric('inmesh.registry.staleness');
    expect(m?.descriptor.unit).toBe('s');
    const orders = points(m).find((p) => p.attributes['inmesh.service'] === 'orders');
    expect(orders).toMatchObject({ value: 0, attributes: { 'inmesh.registry': 'static' } });
  });
});
