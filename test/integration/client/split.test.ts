/**
 * Subsets and weighted splits in the data path, on real loopback servers: a
 * file registry carries each instance's tags and meta (three instances: v1,
 * v1, v2), and the servers count what reaches them.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createMesh, type Mesh } from '../../../src/index.ts';
import { NoEndpointsError } from '../../../src/errors.ts';
import { resolvePolicy } from '../../../src/policy/index.ts';
import type { ResolvedPolicy } from '../../../src/policy/types.ts';
import { closeAll, ok, startServer, type TestHandler, type TestServer } from './helpers.ts';

let mesh: Mesh | undefined;
let dir: string | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await closeAll();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

interface Fleet {
  readonly v1a: TestServer;
  readonly v1b: TestServer;
  readonly v2: TestServer;
  /** The endpoints file the policy's discovery reads. */
  readonly file: string;
}

/** Three servers, two tagged v1 (meta version=1) and one tagged v2 (meta version=2), listed in an endpoints file. */
async function fleet(v1: TestHandler = ok, v2: TestHandler = ok): Promise<Fleet> {
  const [v1a, v1b, v2s] = await Promise.all([startServer(v1), startServer(v1), startServer(v2)]);
  dir = await mkdtemp(join(tmpdir(), 'inmesh-split-'));
  const file = join(dir, 'endpoints.json');
  const doc = {
    services: {
      reviews: [
        { address: '127.0.0.1', port: v1a.port, tags: ['v1'], meta: { version: '1' } },
        { address: '127.0.0.1', port: v1b.port, tags: ['v1'], meta: { version: '1' } },
        { address: '127.0.0.1', port: v2s.port, tags: ['v2'], meta: { version: '2' } },
      ],
    },
  };
  await writeFile(file, JSON.stringify(doc));
  return { v1a: v1a, v1b: v1b, v2: v2s, file };
}

function policy(f: Fleet, upstream: Record<string, unknown>): ResolvedPolicy {
  return resolvePolicy({
    apiVersion: 'inmesh/v1',
    defaults: { circuitBreaker: { enabled: false } },
    upstreams: { reviews: { discovery: { registry: 'file', file: f.file }, ...upstream } },
  } as never);
}

async function call(m: Mesh, headers: Record<string, string> = {}): Promise<number> {
  const res = await m.request('http://reviews/', { headers });
  await res.body.dump();
  return res.statusCode;
}

describe('weighted split', () => {
  it('sends about 90 % of 2,000 calls to the v1 subset and 10 % to v2', async () => {
    const f = await fleet();
    mesh = createMesh({
      policy: policy(f, {
        subsets: { stable: { tags: ['v1'] }, canary: { tags: ['v2'] } },
        split: [
          { subset: 'stable', weight: 90 },
          { subset: 'canary', weight: 10 },
        ],
      }),
      telemetry: { enabled: false },
    });
    const total = 2_000;
    const workers = 8;
    const until = performance.now() + 60_000;
    let sent = 0;
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (sent < total && performance.now() < until) {
          sent++;
          expect(await call(mesh!)).toBe(200);
        }
      }),
    );
    expect(sent).toBe(total);
    const canary = f.v2.hits;
    const stable = f.v1a.hits + f.v1b.hits;
    expect(canary + stable).toBe(total);
    console.info(`split 90/10 over ${total} calls: stable ${stable}, canary ${canary} (${((100 * canary) / total).toFixed(1)} %)`);
    // Binomial(2000, 0.1): sd ≈ 13.4 calls; ±60 is about 4.5 sd.
    expect(Math.abs(canary - 200)).toBeLessThanOrEqual(60);
    // Both v1 instances take part (the stable subset balances over its own endpoints).
    expect(f.v1a.hits).toBeGreaterThan(0);
    expect(f.v1b.hits).toBeGreaterThan(0);
  });

  it('a route split replaces the upstream split for the requests it matches', async () => {
    const f = await fleet();
    mesh = createMesh({
      policy: policy(f, {
        subsets: { stable: { tags: ['v1'] }, canary: { tags: ['v2'] } },
        split: [{ subset: 'stable' }],
        routes: [{ name: 'testers', match: { headers: [{ name: 'x-canary', present: true }] }, split: [{ subset: 'canary' }] }],
      }),
      telemetry: { enabled: false },
    });
    for (let i = 0; i < 20; i++) expect(await call(mesh, { 'x-canary': '1' })).toBe(200);
    expect(f.v2.hits).toBe(20);
    expect(f.v1a.hits + f.v1b.hits).toBe(0);
    for (let i = 0; i < 20; i++) expect(await call(mesh)).toBe(200);
    expect(f.v2.hits).toBe(20);
    expect(f.v1a.hits + f.v1b.hits).toBe(20);
  });

  it('selects a subset by meta', async () => {
    const f = await fleet();
    mesh = createMesh({
      policy: policy(f, { subsets: { two: { meta: { version: '2' } }, one: { meta: { version: '1' } } }, split: [{ subset: 'two' }] }),
      telemetry: { enabled: false },
    });
    for (let i = 0; i < 20; i++) expect(await call(mesh)).toBe(200);
    expect(f.v2.hits).toBe(20);
    expect(f.v1a.hits + f.v1b.hits).toBe(0);
  });

  it('retries stay in the subset chosen for the call', async () => {
    // Every v1 instance fails with 503; v2 answers. A call sent to the stable subset
    // retries on v1 instances only, although v2 would have answered.
    const failing: TestHandler = (_req, res) => {
      res.statusCode = 503;
      res.end('down');
    };
    const f = await fleet(failing, ok);
    mesh = createMesh({
      policy: policy(f, {
        subsets: { stable: { tags: ['v1'] }, canary: { tags: ['v2'] } },
        split: [
          { subset: 'stable', weight: 1 },
          { subset: 'canary', weight: 1 },
        ],
        retries: { attempts: 3, retryOn: ['gateway-error'], backoff: { base: '1ms', max: '2ms' }, budget: false },
        outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 0 },
      }),
      // 0.25 of the weight sum 2 is 0.5 < 1: the first entry (stable) for every call.
      random: () => 0.25,
      telemetry: { enabled: false },
    });
    expect(await call(mesh)).toBe(503);
    expect(f.v1a.hits + f.v1b.hits).toBe(4);
    expect(f.v1a.hits).toBeGreaterThan(0);
    expect(f.v1b.hits).toBeGreaterThan(0);
    expect(f.v2.hits).toBe(0);
  });

  it('an empty subset fails the call with NoEndpointsError naming the subset (no fallback)', async () => {
    const f = await fleet();
    mesh = createMesh({
      policy: policy(f, { subsets: { v3: { tags: ['v3'] }, stable: { tags: ['v1'] } }, split: [{ subset: 'v3' }] }),
      telemetry: { enabled: false },
    });
    const error = await call(mesh).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoEndpointsError);
    expect((error as Error).message).toContain('reviews');
    expect((error as Error).message).toBe('reviews: subset v3: no endpoint carries its tags and meta');
    expect(f.v1a.hits + f.v1b.hits + f.v2.hits).toBe(0);
  });
});
