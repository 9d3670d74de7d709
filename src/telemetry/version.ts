/** Reported as the instrumentation scope of inmesh's tracer and meter. */
export { VERSION } from '../internal/version.ts';
export const SCOPE_NAME = 'inmesh';
