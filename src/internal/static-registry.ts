/**
 * A private static registry (`{ static: { orders: ['127.0.0.1:8080'] } }` and the
 * policy's `discovery.endpoints`), used until src/registry/static.ts is usable
 * from the client. Entries are `host:port` (IPv6 in brackets).
 */
import { InvalidArgumentError } from '../errors.ts';
import type { Endpoint, EndpointsListener, Registry, ResolveQuery, Subscription } from '../registry/types.ts';

export function parseHostPort(entry: string): Endpoint {
  let url: URL;
  try {
    url = new URL(`http://${entry}`);
  } catch (cause) {
    throw new InvalidArgumentError(`static endpoint "${entry}" is not host:port`, { cause });
  }
  const port = Number(url.port);
  if (url.port === '' || !Number.isInteger(port) || port < 1 || port > 65535 || url.pathname !== '/') {
    throw new InvalidArgumentError(`static endpoint "${entry}" is not host:port`);
  }
  const address = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return Object.freeze({ id: `${address}:${port}`, address, port, tags: [], meta: {}, weight: 1 });
}

export class StaticRegistry implements Registry {
  readonly kind = 'static' as const;
  readonly #services = new Map<string, readonly Endpoint[]>();

  constructor(services: Readonly<Record<string, readonly string[]>>) {
    for (const [name, list] of Object.entries(services)) {
      this.#services.set(name, Object.freeze(list.map(parseHostPort)));
    }
  }

  has(service: string): boolean {
    return this.#services.has(service);
  }

  resolve(query: ResolveQuery): Promise<readonly Endpoint[]> {
    return Promise.resolve(this.#services.get(query.service) ?? []);
  }

  subscribe(query: ResolveQuery, listener: EndpointsListener): Subscription {
    const endpoints = this.#services.get(query.service) ?? [];
    listener(endpoints);
    return {
      endpoints,
      staleness: () => 0,
      ready: () => Promise.resolve(),
      close: () => undefined,
    };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
