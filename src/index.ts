/**
 * inmesh: an in-process service mesh for Node.js. This file is the public
 * surface only: it re-exports, and nothing inside src/ imports it.
 */
export * from './errors.ts';
export type * from './policy/types.ts';
// Telemetry helpers that need only @opentelemetry/api (the SDK helper is `inmesh/telemetry`).
export { extractContext, withServerSpan } from './telemetry/server.ts';
export type { InboundHeaders, ServerSpanOptions } from './telemetry/server.ts';
export type { TelemetryOptions, TelemetryRequestHook, TelemetryResponseHook } from './telemetry/types.ts';
// Load balancing and passive outlier detection.
export { createLoadBalancer } from './balancer/balancer.ts';
export type * from './balancer/types.ts';
