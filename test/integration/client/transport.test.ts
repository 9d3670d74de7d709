/**
 * The transport's pools: an endpoint given by host name resolves through a
 * guarded lookup that refuses link-local / metadata addresses (unless the
 * registry allows them). (IP-literal endpoints get no lookup: Node never
 * resolves an IP host, so that is by construction, not tested here.)
 */
import type { LookupAddress, lookup as dnsLookup } from 'node:dns';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { isIP, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMesh, UpstreamError, type Mesh } from '../../../src/index.ts';
import { toMeshRequest, EMPTY_OPTIONS } from '../../../src/client/request.ts';
import { createTransport, EndpointPools, guardedLookup } from '../../../src/client/transport.ts';
import type { Endpoint } from '../../../src/registry/types.ts';
import { StaticRegistry } from '../../../src/registry/static.ts';
import { closeAll, ok, policyFor, startServer } from './helpers.ts';

/**
 * The system resolver as the mesh's pools see it, with one name added that
 * resolves to a link-local address (no /etc/hosts entry needed); every other
 * name goes to the real `dns.lookup`.
 */
const dnsStub = vi.hoisted(() => ({ name: 'linklocal.test', address: '169.254.7.7', asked: [] as string[] }));
vi.mock('node:dns', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:dns')>();
  const lookup = ((hostname: string, options: unknown, callback: unknown) => {
    if (hostname !== dnsStub.name) return (actual.lookup as (...a: unknown[]) => void)(hostname, options, callback);
    dnsStub.asked.push(hostname);
    const cb = (typeof options === 'function' ? options : callback) as (err: null, a: unknown, f?: number) => void;
    const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all === true;
    queueMicrotask(() => {
      if (all) cb(null, [{ address: dnsStub.address, family: 4 }]);
      else cb(null, dnsStub.address, 4);
    });
  }) as typeof actual.lookup;
  return { ...actual, lookup, default: { ...actual, lookup } };
});

let mesh: Mesh | undefined;
let pools: EndpointPools | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await pools?.close();
  pools = undefined;
  await closeAll();
});

/** A resolver that answers from a table and counts its calls. */
function stubResolver(table: Record<string, LookupAddress[]>): { resolve: typeof dnsLookup; calls: string[] } {
  const calls: string[] = [];
  const resolve = ((hostname: string, _options: unknown, cb: (err: NodeJS.ErrnoException | null, a: LookupAddress[]) => void) => {
    calls.push(hostname);
    const answer = table[hostname];
    if (answer === undefined) cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
    else queueMicrotask(() => cb(null, answer));
  }) as unknown as typeof dnsLookup;
  return { resolve, calls };
}

const policy = policyFor({ orders: { endpoints: ['127.0.0.1:1'] } });
const upstream = policy.upstreams.orders!;
const endpoint = (address: string, port: number): Endpoint => ({ id: `${address}:${port}`, address, port, tags: [], meta: {}, weight: 1 });

function send(p: EndpointPools, ep: Endpoint) {
  const req = toMeshRequest(upstream, new URL('http://orders/x'), { options: EMPTY_OPTIONS });
  req.endpoint = ep;
  return createTransport(p)(req);
}

describe('endpoint pools: host names and the guarded lookup', () => {
  it('a host-name endpoint (localhost) is reached through the mesh, with the caller\'s Host kept', async () => {
    const s = await startServer((req, res) => res.end(String(req.headers.host)));
    mesh = createMesh({ registry: { static: { orders: [`localhost:${s.port}`] } }, telemetry: { enabled: false } });
    const res = await mesh.request('http://orders/');
    expect(res.endpoint).toBe(`localhost:${s.port}`);
    expect(await res.body.text()).toBe('orders');
  });

  it('a name that resolves to a metadata / link-local address is refused before connecting (ENOTFOUND, nothing sent); mixed answers keep only the usable ones', async () => {
    const s = await startServer(ok);
    const { resolve, calls } = stubResolver({
      'metadata.test': [{ address: '169.254.169.254', family: 4 }],
      'linklocal6.test': [{ address: 'fe80::1', family: 6 }, { address: '::ffff:169.254.1.1', family: 6 }],
      'mixed.test': [{ address: '169.254.10.10', family: 4 }, { address: '127.0.0.1', family: 4 }],
    });
    pools = new EndpointPools({ timeouts: upstream.timeouts, limits: upstream.limits, resolve });
    const e = (await send(pools, endpoint('metadata.test', s.port)).catch((x: unknown) => x)) as UpstreamError;
    expect(e).toBeInstanceOf(UpstreamError);
    expect(e.attempts[0]?.error).toBe('ENOTFOUND');
    let cause = e.cause as Error & { code?: string };
    expect(cause.code).toBe('ENOTFOUND');
    expect(cause.message).toBe(
      'endpoint host name metadata.test resolved only to refused addresses: 169.254.169.254 (a cloud metadata address (169.254.169.254)); the registry must allow link-local addresses to use them',
    );
    const e6 = (await send(pools, endpoint('linklocal6.test', s.port)).catch((x: unknown) => x)) as UpstreamError;
    cause = e6.cause as Error & { code?: string };
    expect(cause.message).toMatch(/fe80::1 \(a link-local address \(fe80::\/10\)\), ::ffff:169\.254\.1\.1 \(a link-local address \(169\.254\.0\.0\/16\) inside an IPv6 address\)/);
    expect(s.connections).toBe(0);
    const res = await send(pools, endpoint('mixed.test', s.port));
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    expect(s.hits).toBe(1);
    expect(calls).toEqual(expect.arrayContaining(['metadata.test', 'linklocal6.test', 'mixed.test']));
  });

  it('guardedLookup: allowLinkLocal passes link-local answers; the single-address form is served too; resolver errors pass through', async () => {
    const { resolve } = stubResolver({ 'll.test': [{ address: '169.254.3.4', family: 4 }], 'ok.test': [{ address: '10.0.0.7', family: 4 }] });
    const ask = (allow: boolean, host: string, all: boolean) =>
      new Promise<unknown[]>((done) => guardedLookup(allow, resolve)(host, { all }, (...args: unknown[]) => done(args)));
    expect(await ask(true, 'll.test', true)).toEqual([null, [{ address: '169.254.3.4', family: 4 }]]);
    expect(await ask(false, 'ok.test', false)).toEqual([null, '10.0.0.7', 4]);
    const [err] = (await ask(false, 'll.test', false)) as [Error & { code: string }];
    expect(err.code).toBe('ENOTFOUND');
    const [missing] = (await ask(false, 'nope.test', true)) as [Error];
    expect(missing.message).toBe('getaddrinfo ENOTFOUND nope.test');
  });
});

/** What the client sockets made while `fn` runs resolved to and tried to connect to, seen at the socket. */
async function watchSockets<T>(fn: () => Promise<T>): Promise<{ result: T; lookups: string[]; attempts: string[] }> {
  const lookups: string[] = [];
  const attempts: string[] = [];
  const onSocket = (message: unknown): void => {
    const { socket } = message as { socket: Socket };
    socket.on('lookup', (err: Error | null, address: string | undefined, _family: unknown, host: string) => {
      lookups.push(err === null ? `${host} -> ${String(address)}` : `${host} -> ${err.message}`);
      // Traffic goes to loopback only: a socket is stopped (before it connects)
      // as soon as its name resolves to anything else.
      if (err === null && address !== undefined && isIP(address) !== 0 && !/^(127\.|::1$|::ffff:127\.)/.test(address)) {
        socket.destroy(new Error(`stopped before connecting to ${address}`));
      }
    });
    socket.on('connectionAttempt', (address: string) => attempts.push(address));
  };
  subscribe('net.client.socket', onSocket);
  try {
    return { result: await fn(), lookups, attempts };
  } finally {
    unsubscribe('net.client.socket', onSocket);
  }
}

describe('endpoint pools take allowLinkLocal from the registry', () => {
  it('a registry that allows link-local addresses lets host names resolve to them; others do not', async () => {
    const s = await startServer(ok);
    const through = async (allowLinkLocal: boolean) => {
      const m = createMesh({
        registry: new StaticRegistry({ services: { orders: [`${dnsStub.name}:${s.port}`] }, env: false, allowLinkLocal }),
        policy: { upstreams: { orders: {} } },
        telemetry: { enabled: false },
      });
      try {
        return await watchSockets(() => m.request('http://orders/', { retries: 0 }).catch((x: unknown) => x));
      } finally {
        await m.close();
      }
    };

    // Refused: the name is resolved, its only address is dropped by the guarded
    // lookup, and the socket never tries to connect.
    dnsStub.asked.length = 0;
    const refusing = await through(false);
    expect(dnsStub.asked).toEqual([dnsStub.name]);
    const refused = refusing.result as UpstreamError;
    expect(refused).toBeInstanceOf(UpstreamError);
    expect(refused.attempts[0]?.error).toBe('ENOTFOUND');
    const guarded = `endpoint host name ${dnsStub.name} resolved only to refused addresses: ${dnsStub.address} (a link-local address (169.254.0.0/16)); the registry must allow link-local addresses to use them`;
    expect((refused.cause as Error).message).toBe(guarded);
    expect(refusing.lookups).toEqual([`${dnsStub.name} -> ${guarded}`]);
    expect(refusing.attempts).toEqual([]);

    // Allowed: the same answer reaches the socket, which would now connect to
    // it (stopped right there: nothing is sent off this machine).
    dnsStub.asked.length = 0;
    const allowing = await through(true);
    expect(dnsStub.asked).toEqual([dnsStub.name]);
    expect(allowing.lookups).toEqual([`${dnsStub.name} -> ${dnsStub.address}`]);
    const stopped = allowing.result as UpstreamError;
    expect(stopped).toBeInstanceOf(UpstreamError);
    expect((stopped.cause as Error).message).toBe(`stopped before connecting to ${dnsStub.address}`);
    expect(allowing.attempts).toEqual([]);
    expect(s.connections).toBe(0);
  });
});
