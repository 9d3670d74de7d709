import type { ResolvedPolicy } from '../policy/types.ts';
import type { Logger } from '../registry/types.ts';

/** Configuration warnings already logged by this process (each is logged once, however many meshes). */
const warnedOnce = new Set<string>();

/** Logs each configuration warning (an unknown INMESH_* / CONSUL_* variable: probably a typo) once per process. */
export function warnOnce(warnings: readonly string[], logger: Pick<Logger, 'warn'>): void {
  for (const warning of warnings) {
    if (warnedOnce.has(warning)) continue;
    warnedOnce.add(warning);
    logger.warn(warning);
  }
}

/**
 * Subsets and weighted splits are part of the policy model (validated, resolved,
 * exported) but the balancer does not apply them yet: calls go to every endpoint
 * of the upstream. Says so once per upstream that sets them, instead of
 * ignoring them silently.
 */
export function splitWarnings(policy: ResolvedPolicy): string[] {
  const out: string[] = [];
  for (const u of Object.values(policy.upstreams)) {
    const hasSplit = u.split !== undefined || u.routes.some((r) => r.split !== undefined);
    if (hasSplit || Object.keys(u.subsets).length > 0)
      out.push(`upstream ${u.name}: subsets and split are not applied by the data path yet; calls go to every endpoint of the upstream (docs/policy.md#subsets-and-splits)`);
  }
  return out;
}
