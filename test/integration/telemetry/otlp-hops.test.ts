// A -> B -> C, three real processes (fixtures/hop.ts), each a node:http server
// wrapped by mesh.server() that calls the next one through mesh.request, each
// with the OpenTelemetry SDK (startTelemetry) exporting OTLP/HTTP JSON to the
// receiver below on 127.0.0.1, which decodes what arrives. C answers its first
// request 503, so B's mesh retries it. Asserted: one trace id; the parents
//   A SERVER -> A INTERNAL -> A CLIENT -> B SERVER -> B INTERNAL -> B CLIENT x2 -> C SERVER x2
// the retry's CLIENT span with http.request.resend_count = 1; and no trace of
// the Authorization header (name or token) in any attribute of any span.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const HOP = fileURLToPath(new URL('./fixtures/hop.ts', import.meta.url));
const TOKEN = 's3cr3t-token';
const WAIT_MS = 15_000;

// OTLP/JSON span kinds (opentelemetry-proto: SPAN_KIND_*).
const INTERNAL = 1;
const SERVER = 2;
const CLIENT = 3;

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
  boolValue?: boolean;
  doubleValue?: number;
  arrayValue?: { values?: OtlpValue[] };
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: { key: string; value: OtlpValue }[];
}
interface OtlpExport {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: OtlpValue }[] };
    scopeSpans?: { spans?: OtlpSpan[] }[];
  }[];
}

interface Span {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
}

function valueOf(v: OtlpValue): unknown {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue !== undefined) return (v.arrayValue.values ?? []).map(valueOf);
  return undefined;
}

function attrs(list: { key: string; value: OtlpValue }[] | undefined): Record<string, unknown> {
  return Object.fromEntries((list ?? []).map((a) => [a.key, valueOf(a.value)]));
}

const received: Span[] = [];
const contentTypes = new Set<string>();
let waiter: (() => void) | undefined;
let receiver: Server;
let receiverUrl: string;
const children: ChildProcess[] = [];

/** The OTLP/HTTP receiver: decodes each JSON export request into flat spans. */
function startReceiver(): Promise<void> {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      contentTypes.add(String(req.headers['content-type']));
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpExport;
      for (const rs of body.resourceSpans ?? []) {
        const service = String(attrs(rs.resource?.attributes)['service.name']);
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            received.push({
              service,
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId === undefined || s.parentSpanId === '' ? undefined : s.parentSpanId,
              name: s.name,
              kind: s.kind,
              attributes: attrs(s.attributes),
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      waiter?.();
    });
  });
  return new Promise((resolve) =>
    receiver.listen(0, '127.0.0.1', () => {
      receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/v1/traces`;
      resolve();
    }),
  );
}

/** Resolves once `done(received)` holds; rejects after WAIT_MS. */
function spansWhen(done: (all: readonly Span[]) => boolean): Promise<readonly Span[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiter = undefined;
      reject(new Error(`spans not complete after ${WAIT_MS} ms: ${JSON.stringify(received.map((s) => [s.service, s.kind, s.name]))}`));
    }, WAIT_MS);
    const check = (): void => {
      if (!done(received)) return;
      clearTimeout(timer);
      waiter = undefined;
      resolve(received);
    };
    waiter = check;
    check();
  });
}

/** Starts one hop; resolves with its port once it prints `listening <port>` (bounded). */
async function startHop(name: string, env: Record<string, string>): Promise<number> {
  const child = spawn(process.execPath, ['--experimental-transform-types', '--no-warnings', HOP], {
    env: {
      PATH: process.env.PATH ?? '',
      OTEL_SERVICE_NAME: name,
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiverUrl,
      OTEL_BSP_SCHEDULE_DELAY: '50',
      OTEL_METRICS_EXPORTER: 'none',
      OTEL_LOGS_EXPORTER: 'none',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  let stdout = '';
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hop ${name} did not start in ${WAIT_MS} ms: ${stderr}`)), WAIT_MS);
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      const m = /listening (\d+)/.exec(stdout);
      if (m === null) return;
      clearTimeout(timer);
      resolve(Number(m[1]));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`hop ${name} exited (${String(code)}): ${stderr}`));
    });
  });
}

/** SIGTERM by PID, then SIGKILL if it has not exited within 5 s. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = once(child, 'exit');
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
  }, 5_000);
  await exited;
  clearTimeout(timer);
}

beforeAll(async () => {
  await startReceiver();
  const c = await startHop('C', { HOP_FAIL_FIRST: '1' });
  const b = await startHop('B', { HOP_NEXT: `127.0.0.1:${c}` });
  const a = await startHop('A', { HOP_NEXT: `127.0.0.1:${b}` });
  aPort = a;
}, 3 * WAIT_MS);

let aPort: number;

afterAll(async () => {
  await Promise.all(children.map(stop));
  await new Promise((r) => receiver.close(r));
}, 20_000);

describe('A -> B -> C, three processes exporting OTLP/HTTP JSON', () => {
  it('one trace, the parents of each hop, the retry as its own CLIENT span, no token in any attribute', async () => {
    const res = await request(`http://127.0.0.1:${aPort}/start`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('A>B>C');

    // SERVER spans: A and B once each, C twice (503, then 200).
    const spans = await spansWhen(
      (all) =>
        all.filter((s) => s.kind === SERVER).length >= 4 &&
        all.filter((s) => s.kind === CLIENT).length >= 3 &&
        all.filter((s) => s.kind === INTERNAL).length >= 2,
    );
    expect(contentTypes).toEqual(new Set(['application/json']));

    // One trace across the three processes.
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);

    const of = (service: string, kind: number): Span[] => spans.filter((s) => s.service === service && s.kind === kind);
    const [aServer] = of('A', SERVER);
    const [aInternal] = of('A', INTERNAL);
    const [aClient] = of('A', CLIENT);
    const [bServer] = of('B', SERVER);
    const [bInternal] = of('B', INTERNAL);
    const bClients = of('B', CLIENT);
    const cServers = of('C', SERVER);
    expect(of('A', SERVER)).toHaveLength(1);
    expect(of('A', CLIENT)).toHaveLength(1);
    expect(of('B', SERVER)).toHaveLength(1);
    expect(bClients).toHaveLength(2);
    expect(cServers).toHaveLength(2);
    expect(of('C', CLIENT)).toHaveLength(0);

    expect(aServer!.parentSpanId).toBeUndefined();
    expect(aInternal!.parentSpanId).toBe(aServer!.spanId);
    expect(aClient!.parentSpanId).toBe(aInternal!.spanId);
    expect(aClient!.attributes['http.request.resend_count']).toBeUndefined();
    expect(bServer!.parentSpanId).toBe(aClient!.spanId);
    expect(bInternal!.parentSpanId).toBe(bServer!.spanId);
    expect(bInternal!.name).toBe('GET next');
    expect(bInternal!.attributes['inmesh.attempts']).toBe(2);
    for (const client of bClients) expect(client.parentSpanId).toBe(bInternal!.spanId);

    // The retry: the second attempt carries resend_count 1, the first none.
    const first = bClients.find((s) => s.attributes['http.request.resend_count'] === undefined);
    const retry = bClients.find((s) => s.attributes['http.request.resend_count'] === 1);
    expect(first).toBeDefined();
    expect(retry).toBeDefined();
    expect(first!.attributes['http.response.status_code']).toBe(503);
    expect(retry!.attributes['http.response.status_code']).toBe(200);
    // Each of C's SERVER spans hangs off the attempt that reached it.
    const c503 = cServers.find((s) => s.attributes['http.response.status_code'] === 503);
    const c200 = cServers.find((s) => s.attributes['http.response.status_code'] === 200);
    expect(c503?.parentSpanId).toBe(first!.spanId);
    expect(c200?.parentSpanId).toBe(retry!.spanId);

    // No Authorization header, by name or value, in any attribute of any span.
    for (const s of spans) {
      for (const [key, value] of Object.entries(s.attributes)) {
        expect(key.toLowerCase()).not.toContain('authorization');
        expect(JSON.stringify(value)).not.toContain(TOKEN);
        expect(JSON.stringify(value)).not.toContain('Bearer');
      }
    }
  });
});
