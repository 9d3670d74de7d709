/**
 * The registries and `createRegistry(kind, options)`.
 *
 * | kind | where endpoints come from |
 * |---|---|
 * | `consul` | the Consul agent's health endpoint, one blocking-query watch per query |
 * | `static` | lists in code or `INMESH_ENDPOINTS_<SERVICE>` variables |
 * | `file` | a JSON/YAML file, watched |
 *
 * The Consul registry does not read `CONSUL_*` variables itself (neither does the
 * `consul` npm client): pass `connection: loadConfig().consul`, which does.
 */
import { InvalidArgumentError } from '../errors.ts';
import { ConsulRegistry, type ConsulRegistryOptions } from './consul.ts';
import { FileRegistry, type FileRegistryOptions } from './file.ts';
import { StaticRegistry, type StaticRegistryOptions } from './static.ts';

export interface RegistryOptionsByKind {
  consul: ConsulRegistryOptions;
  static: StaticRegistryOptions;
  file: FileRegistryOptions;
}

export function createRegistry(kind: 'consul', options?: ConsulRegistryOptions): ConsulRegistry;
export function createRegistry(kind: 'static', options?: StaticRegistryOptions): StaticRegistry;
export function createRegistry(kind: 'file', options: FileRegistryOptions): FileRegistry;
export function createRegistry(
  kind: keyof RegistryOptionsByKind,
  options?: ConsulRegistryOptions | StaticRegistryOptions | FileRegistryOptions,
): ConsulRegistry | StaticRegistry | FileRegistry {
  switch (kind) {
    case 'consul':
      return new ConsulRegistry(options);
    case 'static':
      return new StaticRegistry(options);
    case 'file':
      if (!options || typeof (options as Partial<FileRegistryOptions>).path !== 'string') {
        throw new InvalidArgumentError('createRegistry("file") needs options.path');
      }
      return new FileRegistry(options as FileRegistryOptions);
    default:
      throw new InvalidArgumentError(`unknown registry kind ${JSON.stringify(kind)} (consul, static or file)`);
  }
}

export { ConsulRegistry, type ConsulRegistryOptions, type ConsulRegistryStats } from './consul.ts';
export { StaticRegistry, envVariableFor, type StaticRegistryOptions } from './static.ts';
export { FileRegistry, type FileRegistryOptions } from './file.ts';
export {
  ConsulRegistration,
  registerService,
  detectAddress,
  type ServiceRegistrationOptions,
  type HttpCheckOptions,
  type TtlCheckOptions,
  type RegistrationState,
} from './consul-register.ts';
export type { ConsulConnectionOptions } from './consul-http.ts';
export type { ConsulWatchOptions } from './consul-watch.ts';
export type { EndpointEntry } from './entries.ts';
export { validateEndpoint, parseHostPort, type ValidateOptions, type RawEndpoint, type ValidationResult } from './validate.ts';
export type { RegistrySubscription, SubscribeOptions } from './watch-hub.ts';
export type * from './types.ts';
