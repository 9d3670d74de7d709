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
// The client data path: createMesh, mesh.request / mesh.fetch / mesh.dispatcher.
export { createMesh } from './mesh/mesh.ts';
export type { Mesh, MeshOptions, MeshCloseOptions, MeshRequestOptions, MeshFetchInit, DiscoveryStatus } from './mesh/mesh.ts';
// The read-only admin endpoint (mesh.admin()) and its documents (docs/admin.md).
export type { AdminOptions, AdminServer } from './admin/server.ts';
export { ADMIN_VERSION } from './admin/types.ts';
export type { AdminHeader, ConfigDump, AdminUpstream, AdminEndpoint, AdminInbound, BreakerStateName } from './admin/types.ts';
// Leaving the mesh: mesh.shutdown() and mesh.handleSignals() (docs/server.md#shutdown).
export { SHUTDOWN_ORDER } from './mesh/lifecycle.ts';
export type { ShutdownOptions, ShutdownResult, ShutdownStep, ShutdownStepError, SignalOptions } from './mesh/lifecycle.ts';
export { SHUTDOWN_DEFAULTS } from './policy/defaults.ts';
export type { CallOptions, MeshRequest, MeshResponse, Handler, Layer } from './core/types.ts';
export { LAYER_ORDER, type LayerName } from './client/chain.ts';
export { INBOUND_ORDER, requestSignal, type InboundStageName, type InboundOptions, type InboundGate, type InboundAdmission, type EnterHints } from './server/inbound.ts';
export { DEADLINE_HEADER, currentDeadline } from './core/deadline-context.ts';
export { ENVOY_TIMEOUT_HEADER, GRPC_TIMEOUT_HEADER } from './server/deadline.ts';
export type { HealthOptions } from './server/health.ts';
export type { InboundAnswer, Respond, RefusalReason } from './server/answer.ts';
export type { RequestListener } from './server/node.ts';
// Guarding calls to non-HTTP resources (cache, database, queue): mesh.guard() with the policy's resources, or Guard with a policy in code.
export { Guard, type ResourcePolicy, type GuardOptions, type GuardedFn, type GuardSetup, type ResourceState } from './guard/guard.ts';
export { exportPolicy, formatReport, renderFile, policyFields, EXPORT_TARGETS, type ExportTarget, type ExportCaller, type ExportOptions, type ExportResult, type ExportReport, type ExportedFile, type ReportEntry, type FieldVerdict } from './export/index.ts';
// The policy model and configuration sources.
export { parsePolicy, resolvePolicy, explainPolicy, matchRoute, upstreamFor, defaultUpstream, upstreamOrDefault } from './policy/index.ts';
export { policySchema } from './policy/json-schema.ts';
export type { PolicyDocument, ParsePolicyOptions, MatchHeaders } from './policy/index.ts';
export { loadConfig, explainConfig, Secret } from './config/index.ts';
export type { ResolvedConfig, LoadConfigOptions, ConfigInput, ConsulConnection, ServiceIdentity, TelemetrySettings, SettingSource } from './config/index.ts';
// Discovery and registration: Consul, static and file registries, registering this process.
export {
  createRegistry,
  ConsulRegistry,
  StaticRegistry,
  FileRegistry,
  ConsulRegistration,
  registerService,
  detectAddress,
  envVariableFor,
  validateEndpoint,
  parseHostPort,
} from './registry/index.ts';
export type {
  RegistryOptionsByKind,
  ConsulRegistryOptions,
  ConsulRegistryStats,
  StaticRegistryOptions,
  FileRegistryOptions,
  ServiceRegistrationOptions,
  HttpCheckOptions,
  TtlCheckOptions,
  RegistrationState,
  ConsulConnectionOptions,
  ConsulWatchOptions,
  EndpointEntry,
  ValidateOptions,
  RawEndpoint,
  ValidationResult,
  RegistrySubscription,
  SubscribeOptions,
  Endpoint,
  ResolveQuery,
  Subscription,
  EndpointsListener,
  Registry,
  Logger,
} from './registry/index.ts';
