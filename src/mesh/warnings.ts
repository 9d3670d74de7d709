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
