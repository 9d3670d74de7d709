/** Reported as the instrumentation scope version of inmesh's tracer and meter. */
export const VERSION = '0.1.0';
export const SCOPE_NAME = 'inmesh';
