/** Reported as the instrumentation scope of inmesh's tracer and meter; the meter a telemetry part records into. */
import { createNoopMeter, metrics, type Meter } from '@opentelemetry/api';
import { VERSION } from '../internal/version.ts';

export { VERSION };
export const SCOPE_NAME = 'inmesh';

/**
 * `meter`, else the global meter of inmesh's scope (bound now: meters have no
 * proxy in API 1.x); undefined when that is the no-op meter (no SDK
 * registered), so that no instrument is created and nothing recorded.
 */
export function liveMeter(meter: Meter | undefined): Meter | undefined {
  const m = meter ?? metrics.getMeter(SCOPE_NAME, VERSION);
  return m === createNoopMeter() ? undefined : m;
}
