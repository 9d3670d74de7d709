/**
 * Which registry serves an upstream: the user's registry when one was given
 * (for every upstream), else the static registry for static and listed
 * services, a file registry per file, or the one Consul registry. Each is made
 * by `createRegistry` on first need and closed with the mesh.
 */
import type { ResolvedUpstream } from '../policy/types.ts';
import { createRegistry, type ConsulRegistry, type FileRegistry, type StaticRegistry } from '../registry/index.ts';
import type { ConsulConnectionOptions } from '../registry/consul-http.ts';
import type { ConsulWatchOptions } from '../registry/consul-watch.ts';
import type { Logger, Registry } from '../registry/types.ts';

export interface MeshRegistriesOptions {
  /** A registry used for every upstream. */
  readonly registry: Registry | undefined;
  /** Static endpoints by service: the `{ static }` option and every upstream's policy `endpoints`. */
  readonly services: Readonly<Record<string, readonly string[]>>;
  /** Where `INMESH_ENDPOINTS_*` are read from. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly consul: ConsulConnectionOptions;
  readonly consulWatch: ConsulWatchOptions | undefined;
  readonly logger: Logger | undefined;
}

export class MeshRegistries {
  /** The static endpoints: listed services, policy `endpoints`, INMESH_ENDPOINTS_*. */
  readonly static: StaticRegistry;
  readonly #options: MeshRegistriesOptions;
  readonly #files = new Map<string, FileRegistry>();
  #consul: ConsulRegistry | undefined;

  constructor(options: MeshRegistriesOptions) {
    this.#options = options;
    this.static = createRegistry('static', { services: options.services, env: options.env, ...this.#logger() });
  }

  #logger(): { logger?: Logger } {
    const logger = this.#options.logger;
    return logger === undefined ? {} : { logger };
  }

  /** The user's registry, if one was given. */
  get given(): Registry | undefined {
    return this.#options.registry;
  }

  /** The registry of an upstream. */
  for(upstream: Readonly<ResolvedUpstream>): Registry {
    const given = this.#options.registry;
    if (given !== undefined) return given;
    const d = upstream.discovery;
    if (d.registry === 'static' || this.static.has(d.service ?? upstream.name)) return this.static;
    if (d.registry === 'file') {
      // The schema requires `file` with the file registry.
      const path = d.file ?? '';
      let file = this.#files.get(path);
      if (file === undefined) {
        file = createRegistry('file', { path, ...this.#logger() });
        this.#files.set(path, file);
      }
      return file;
    }
    return this.consul();
  }

  /** The Consul registry of the configured agent (made on first need). */
  consul(): ConsulRegistry {
    this.#consul ??= createRegistry('consul', { ...this.#options.consulWatch, connection: this.#options.consul, ...this.#logger() });
    return this.#consul;
  }

  /** Closes the registries made here (never the user's). */
  async close(): Promise<void> {
    await Promise.all([this.#consul?.close(), this.static.close(), ...[...this.#files.values()].map((f) => f.close())]);
  }
}
