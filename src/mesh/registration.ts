/**
 * `mesh.register()`'s options completed from the configured service identity
 * (`INMESH_SERVICE_*`): name, port (an explicit port, else the given server's,
 * else the configured one) and address.
 */
import type { ResolvedConfig } from '../config/load.ts';
import { InvalidArgumentError } from '../errors.ts';
import type { ServiceRegistrationOptions } from '../registry/consul-register.ts';

/** What `mesh.register()` takes; name, address and port default to the configured service (`INMESH_SERVICE_*`). */
export type MeshRegistrationOptions = Partial<Omit<ServiceRegistrationOptions, 'connection'>>;

export function registrationOptions(config: ResolvedConfig, options: MeshRegistrationOptions): ServiceRegistrationOptions {
  const service = config.service;
  const name = options.name ?? service?.name;
  const port = options.port ?? (options.server === undefined ? service?.port : undefined);
  if (name === undefined || (port === undefined && options.server === undefined)) {
    throw new InvalidArgumentError(
      `mesh.register() needs a service name and port: pass { name, port } or { name, server } or set INMESH_SERVICE_NAME and INMESH_SERVICE_PORT (got name ${String(name)}, port ${String(port)})`,
    );
  }
  const address = options.address ?? service?.address;
  return {
    ...options,
    name,
    ...(port === undefined ? {} : { port }),
    ...(address === undefined ? {} : { address }),
    connection: config.consul,
  };
}
