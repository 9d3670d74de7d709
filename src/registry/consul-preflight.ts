/**
 * What the Consul agent cannot honour, checked once per connection before the
 * first watch query or registration: a namespace (CONSUL_NAMESPACE) needs Consul
 * Enterprise, an admin partition (CONSUL_PARTITION) Enterprise 1.11 or later.
 * An OSS agent would otherwise answer every query as if the setting were absent
 * (1.8.7 ignores `ns`), which hides instances or registers in the wrong place.
 *
 * A refusal is a RegistryError with `statusCode` 400 that names the variable and
 * the agent's version; it is cached (it will not fix itself). A network failure
 * is not cached: the next call tries again. Without a namespace or partition
 * nothing is sent.
 */
import { RegistryError } from '../errors.ts';
import type { ConsulHttp } from './consul-http.ts';
import type { Logger } from './types.ts';

/** The refusals this module made (a setting the agent cannot honour), as opposed to transient failures. */
const refusals = new WeakSet<Error>();

function refusal(message: string): RegistryError {
  const error = new RegistryError(message, { statusCode: 400 });
  refusals.add(error);
  return error;
}

/** `major.minor` of a Consul version string (`1.8.7`, `1.15.2+ent`), or undefined. */
function minor(version: string): [number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)/.exec(version);
  return m === null ? undefined : [Number(m[1]), Number(m[2])];
}

async function check(http: ConsulHttp, logger: Logger): Promise<void> {
  let res;
  try {
    res = await http.request({ method: 'GET', path: '/agent/self', timeoutMs: 10_000, scoped: false });
  } catch (err) {
    if (err instanceof RegistryError && err.statusCode === 403) {
      logger.warn('cannot verify that the Consul agent supports namespaces and partitions (agent:read refused); using them as configured');
      return;
    }
    throw err;
  }
  const config = (res.body as { Config?: { Version?: unknown } } | null)?.Config;
  const version = typeof config?.Version === 'string' ? config.Version : '';
  const enterprise = version.includes('+ent');
  const shown = `Consul ${version || 'of unknown version'}${enterprise ? '' : ' (OSS)'}`;
  if (http.namespace !== undefined && !enterprise) {
    throw refusal(
      `the Consul namespace "${http.namespace}" (CONSUL_NAMESPACE / consul.namespace) needs Consul Enterprise, ` +
        `but the agent at ${http.address} is ${shown}: unset CONSUL_NAMESPACE or use an Enterprise agent`,
    );
  }
  if (http.partition !== undefined) {
    const v = minor(version);
    const hasPartitions = enterprise && v !== undefined && (v[0] > 1 || (v[0] === 1 && v[1] >= 11));
    if (!hasPartitions) {
      throw refusal(
        `the Consul admin partition "${http.partition}" (CONSUL_PARTITION / consul.partition) needs Consul Enterprise 1.11 or later, ` +
          `but the agent at ${http.address} is ${shown}: unset CONSUL_PARTITION or use an agent with admin partitions`,
      );
    }
  }
}

/** A preflight for one connection: resolves at once without a namespace or partition; caches success and refusals. */
export function createPreflight(http: ConsulHttp, logger: Logger): () => Promise<void> {
  let checked: Promise<void> | undefined;
  return () => {
    if (http.namespace === undefined && http.partition === undefined) return Promise.resolve();
    checked ??= check(http, logger).catch((err: unknown) => {
      if (!isPreflightRefusal(err)) checked = undefined;
      throw err;
    });
    return checked;
  };
}

/** Whether an error is a preflight refusal (a setting the agent cannot honour), not a transient failure. */
export function isPreflightRefusal(error: unknown): error is RegistryError {
  return error instanceof RegistryError && refusals.has(error);
}
