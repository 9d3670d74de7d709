/** The policy model: schema, validation, resolution, route matching. */
export { POLICY_DEFAULTS } from './defaults.ts';
export { formatDuration, parseDuration } from './duration.ts';
export { buildJsonSchema, documentSchema, type FieldMapping, type PolicyDocument, type UpstreamDocument, type UpstreamPolicyDocument, type RouteDocument, type InboundDocument } from './schema.ts';
export { parsePolicy, policyIssues, endpointsVariable, type ParsePolicyOptions } from './validate.ts';
export { resolvePolicy, type ResolvePolicyOptions } from './resolve.ts';
export { matchRoute, type MatchHeaders } from './routes.ts';
export { upstreamFor, defaultUpstream, upstreamOrDefault, parseConsulHost, type ConsulHost } from './hosts.ts';
export { explainPolicy } from './explain.ts';
