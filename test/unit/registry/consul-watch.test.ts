/**
 * The Consul watch loop on its own: option validation, the client timeout, the
 * back-off (grows, caps, jittered 4xx pause) with an injected random, and a
 * loop that survives a throwing logger. The HTTP layer is a stub that answers
 * from a script (what the loop does with answers is the subject here; Consul's
 * own behaviour is tested against the real agent in test/integration/consul).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidArgumentError, RegistryError } from '../../../src/errors.ts';
import { createRegistry } from '../../../src/registry/index.ts';
import { ConsulRegistry } from '../../../src/registry/consul.ts';
import type { ConsulHttp, ConsulRequest, ConsulResponse } from '../../../src/registry/consul-http.ts';
import { ConsulHealthWatch, paceMs, queryTimeoutMs, type ConsulWatchOptions } from '../../../src/registry/consul-watch.ts';
import type { Endpoint, Logger } from '../../../src/registry/types.ts';
import { captureLogger } from '../../harness/registry-helpers.ts';

type Answer = ConsulResponse | RegistryError;

function stubHttp(answer: (req: ConsulRequest, n: number) => Answer) {
  const requests: ConsulRequest[] = [];
  const http = {
    datacenter: undefined,
    namespace: undefined,
    hasToken: false,
    request: (req: ConsulRequest): Promise<ConsulResponse> => {
      requests.push(req);
      const a = answer(req, requests.length);
      return a instanceof RegistryError ? Promise.reject(a) : Promise.resolve(a);
    },
  };
  return { http: http as unknown as ConsulHttp, requests };
}

const okAnswer = (index: number, body: unknown = []): ConsulResponse => ({ status: 200, headers: { 'x-consul-index': String(index) }, body });
const query = { service: 'orders', datacenter: undefined, tags: [], passingOnly: true };

describe('consul watch loop', () => {
  const stops: (() => void)[] = [];
  afterEach(() => {
    for (const s of stops.splice(0)) s();
  });

  function watch(http: ConsulHttp, options: ConsulWatchOptions, logger: Logger = captureLogger()) {
    const updates: (readonly Endpoint[])[] = [];
    const errors: Error[] = [];
    const w = new ConsulHealthWatch(http, query, options, logger, () => Promise.resolve());
    w.start({ update: (e) => updates.push(e), fail: (e) => errors.push(e) });
    stops.push(() => w.stop());
    return { w, updates, errors };
  }

  it('validates the options, naming the field and the value', async () => {
    const bad: [ConsulWatchOptions, string][] = [
      [{ waitMs: 500 }, 'waitMs must be from 1000 to 600000 ms (1 s to 10 min, Consul\'s range), got 500'],
      [{ waitMs: 700_000 }, 'got 700000'],
      [{ waitMs: Number.NaN }, 'waitMs must be from 1000 to 600000 ms'],
      [{ backoffBaseMs: 0 }, 'backoffBaseMs must be a number of ms > 0, got 0'],
      [{ backoffBaseMs: 500, backoffMaxMs: 100 }, 'backoffMaxMs must be a number of ms >= backoffBaseMs (500), got 100'],
      [{ backoffMaxMs: 100 }, 'backoffMaxMs must be a number of ms >= backoffBaseMs (250), got 100'],
      [{ minIntervalMs: -1 }, 'minIntervalMs must be a number of ms >= 0, got -1'],
      [{ idleIntervalMs: 100 }, 'idleIntervalMs must be a number of ms >= minIntervalMs (200), got 100'],
      [{ minIntervalMs: 10, idleIntervalMs: 5 }, 'idleIntervalMs must be a number of ms >= minIntervalMs (10), got 5'],
      [{ refusedPauseMs: 0 }, 'refusedPauseMs must be a number of ms > 0, got 0'],
    ];
    for (const [options, message] of bad) {
      expect(() => new ConsulRegistry(options)).toThrow(InvalidArgumentError);
      expect(() => createRegistry('consul', options)).toThrow(message);
    }
    const both = (() => {
      try {
        new ConsulRegistry({ waitMs: 1, backoffBaseMs: -5 });
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(both).toBe(
      "invalid Consul watch options: waitMs must be from 1000 to 600000 ms (1 s to 10 min, Consul's range), got 1; backoffBaseMs must be a number of ms > 0, got -5",
    );
    await new ConsulRegistry({ waitMs: 1_000, backoffBaseMs: 1, backoffMaxMs: 1 }).close();
  });

  it('paceMs: min interval after a change, doubling to the idle interval, ±20 % back-off capped, 4xx pause', () => {
    const o = { minIntervalMs: 200, idleIntervalMs: 1_000, backoffBaseMs: 250, backoffMaxMs: 1_000, refusedPauseMs: 30_000, random: () => 0.5 };
    const pace = (idle: number, failures = 0, sinceLastStartMs = 0, refused = false) => paceMs({ idle, failures, refused, sinceLastStartMs }, o);
    // Answers that changed something: one query per 200 ms; a query whose predecessor started long ago goes at once.
    expect([pace(0), pace(0, 0, 150), pace(0, 0, 5_000)]).toEqual([200, 50, 0]);
    // Idle answers in a row: 400, 800, then 1 s for good.
    expect([1, 2, 3, 4, 50].map((n) => pace(n))).toEqual([400, 800, 1_000, 1_000, 1_000]);
    // Failures: 250, 500, 1000, 1000 at the middle of the jitter; 800-1200 ms at its ends.
    expect([1, 2, 3, 9].map((n) => pace(0, n))).toEqual([250, 500, 1_000, 1_000]);
    expect(paceMs({ idle: 0, failures: 9, refused: false, sinceLastStartMs: 0 }, { ...o, random: () => 0 })).toBe(800);
    expect(paceMs({ idle: 0, failures: 9, refused: false, sinceLastStartMs: 0 }, { ...o, random: () => 0.999999 })).toBeCloseTo(1_200, 0);
    expect(pace(0, 1, 0, true)).toBe(22_500);
  });

  it('client timeout: plain read 10 s + margin; blocking read wait + wait/16 + margin', async () => {
    expect(queryTimeoutMs(true, 60_000)).toBe(60_000 + 3_750 + 5_000);
    expect(queryTimeoutMs(true, 600_000)).toBe(600_000 + 37_500 + 5_000);
    expect(queryTimeoutMs(false, 60_000)).toBe(15_000);
    const { http, requests } = stubHttp((_r, n) => okAnswer(n + 10));
    watch(http, { waitMs: 16_000, minIntervalMs: 1 });
    await expect.poll(() => requests.length).toBeGreaterThanOrEqual(3);
    expect(requests.slice(0, 3).map((r) => [r.query?.wait, r.timeoutMs])).toEqual([
      [undefined, 15_000],
      ['16s', 16_000 + 1_000 + 5_000],
      ['16s', 16_000 + 1_000 + 5_000],
    ]);
  });

  it('back-off grows base·2ⁿ and caps (random at the middle of its ±20 % jitter), and resets after a success', async () => {
    let fail = true;
    const { http, requests } = stubHttp((_r, n) => (fail ? new RegistryError('consul answered 500', { statusCode: 500 }) : okAnswer(n)));
    const logger = captureLogger();
    const { errors, updates } = watch(http, { backoffBaseMs: 4, backoffMaxMs: 32, minIntervalMs: 0, random: () => 0.5 }, logger);
    await expect.poll(() => errors.length, { timeout: 5000 }).toBeGreaterThanOrEqual(7);
    const delays = logger.lines.filter((l) => l.message.startsWith('consul watch failed')).map((l) => l.fields?.retryInMs);
    expect(delays.slice(0, 7)).toEqual([4, 8, 16, 32, 32, 32, 32]);
    fail = false;
    await expect.poll(() => updates.length, { timeout: 5000 }).toBeGreaterThanOrEqual(1);
    fail = true;
    const before = logger.lines.length;
    await expect.poll(() => errors.length, { timeout: 5000 }).toBeGreaterThanOrEqual(9);
    const after = logger.lines.slice(before).filter((l) => l.message.startsWith('consul watch failed')).map((l) => l.fields?.retryInMs);
    expect(after[0]).toBe(4); // back to the base after a good answer
    expect(requests.length).toBeGreaterThan(9);
  });

  it('a 4xx pauses about refusedPauseMs, jittered: pause/2 + random·pause/2', async () => {
    for (const [r, expected] of [
      [0, 500],
      [0.5, 750],
      [0.998, 999],
    ] as const) {
      const { http } = stubHttp(() => new RegistryError('consul answered 403: ACL not found', { statusCode: 403 }));
      const logger = captureLogger();
      const { errors, w } = watch(http, { backoffBaseMs: 10, refusedPauseMs: 1_000, random: () => r }, logger);
      await expect.poll(() => errors.length).toBe(1);
      w.stop();
      expect(Math.round(logger.lines.find((l) => l.message.startsWith('consul watch failed'))?.fields?.retryInMs as number)).toBe(expected);
    }
  });

  it('a logger that throws on every call kills neither the watch nor the process', async () => {
    const throwing: Logger = {
      debug: () => {
        throw new Error('debug broke');
      },
      info: () => {
        throw new Error('info broke');
      },
      warn: () => {
        throw new Error('warn broke');
      },
      error: () => {
        throw new Error('error broke');
      },
    };
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => {
      unhandled.push(e);
    };
    process.on('unhandledRejection', onUnhandled);
    stops.push(() => process.off('unhandledRejection', onUnhandled));
    const entry = (id: string, address: unknown, port: unknown) => ({ Node: { Node: 'n', Address: '127.0.0.1' }, Service: { ID: id, Address: address, Port: port } });
    const script: Answer[] = [
      new RegistryError('consul answered 500', { statusCode: 500 }), // warn
      okAnswer(5, [entry('bad', '169.254.169.254', 80)]), // warn: dropped entry
      okAnswer(3, []), // info: index went backwards
      { status: 200, headers: {}, body: 'not a list' }, // warn: failed round
      okAnswer(9, [entry('good', '127.0.0.1', 8080)]),
    ];
    const { http } = stubHttp((_r, n) => script[Math.min(n, script.length) - 1]!);
    // The raw loop, without the registry's safe logger wrapper, and with throwing sink callbacks.
    const got: string[][] = [];
    const w = new ConsulHealthWatch(http, query, { minIntervalMs: 0, backoffBaseMs: 1, backoffMaxMs: 5 }, throwing, () => Promise.resolve());
    stops.push(() => w.stop());
    w.start({
      update: (e) => {
        got.push(e.map((x) => x.id));
        throw new Error('listener broke');
      },
      fail: () => {
        throw new Error('fail listener broke');
      },
    });
    await expect.poll(() => got.at(-1), { timeout: 5000 }).toEqual(['n/good']);
    await new Promise((r) => setImmediate(r));
    expect(unhandled).toEqual([]);
  });
});
