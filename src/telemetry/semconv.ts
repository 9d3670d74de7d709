/**
 * The semantic-convention names inmesh uses, copied from
 * `@opentelemetry/semantic-conventions` 1.45 (the way the OTel contrib
 * instrumentations pin incubating names in a local `semconv.ts`).
 *
 * Why a copy instead of a dependency: the core must depend on nothing but
 * `@opentelemetry/api` at run time (STYLE §7), we need about a dozen strings,
 * and `peer.service` is still incubating, so it would come from the package's
 * `/incubating` entry whose names may change between minors. Pinned here, the
 * names only change when we decide to.
 */

// Stable (semconv `ATTR_*` / `METRIC_*` from the package's main entry).
export const ATTR_HTTP_REQUEST_METHOD = 'http.request.method';
export const ATTR_HTTP_REQUEST_METHOD_ORIGINAL = 'http.request.method_original';
export const ATTR_HTTP_RESPONSE_STATUS_CODE = 'http.response.status_code';
export const ATTR_SERVER_ADDRESS = 'server.address';
export const ATTR_SERVER_PORT = 'server.port';
export const ATTR_URL_FULL = 'url.full';
export const ATTR_URL_PATH = 'url.path';
export const ATTR_URL_QUERY = 'url.query';
export const ATTR_URL_SCHEME = 'url.scheme';
export const ATTR_ERROR_TYPE = 'error.type';
export const ATTR_NETWORK_PEER_ADDRESS = 'network.peer.address';
export const ATTR_NETWORK_PEER_PORT = 'network.peer.port';
/** The ordinal of a resent request: set on every physical attempt after the first (1 = first retry). */
export const ATTR_HTTP_REQUEST_RESEND_COUNT = 'http.request.resend_count';
export const ATTR_USER_AGENT_ORIGINAL = 'user_agent.original';
export const ERROR_TYPE_VALUE_OTHER = '_OTHER';
export const HTTP_REQUEST_METHOD_VALUE_OTHER = '_OTHER';
export const METRIC_HTTP_CLIENT_REQUEST_DURATION = 'http.client.request.duration';
export const METRIC_HTTP_SERVER_REQUEST_DURATION = 'http.server.request.duration';

// Incubating (semconv `/incubating` entry), pinned.
export const ATTR_PEER_SERVICE = 'peer.service';

// Our own names, in the `inmesh.` namespace.
export const ATTR_INMESH_SERVICE = 'inmesh.service';
/** Physical attempts made for the logical call (1 = no retry). */
export const ATTR_INMESH_ATTEMPTS = 'inmesh.attempts';
/** `address:port` of the endpoint that answered (or that the last attempt went to). */
export const ATTR_INMESH_ENDPOINT = 'inmesh.endpoint';
export const METRIC_INMESH_CLIENT_ATTEMPTS = 'inmesh.client.attempts';

/**
 * Bucket boundaries of `http.client.request.duration`, in seconds, as the HTTP
 * semantic conventions recommend.
 */
export const HTTP_DURATION_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

/** The methods the HTTP conventions know; anything else is reported as `_OTHER`. */
export const KNOWN_HTTP_METHODS: ReadonlySet<string> = new Set([
  'CONNECT',
  'DELETE',
  'GET',
  'HEAD',
  'OPTIONS',
  'PATCH',
  'POST',
  'PUT',
  'TRACE',
  'QUERY',
]);

// Server side (stable HTTP server conventions, and `http.server.active_requests`
// from the HTTP metrics conventions).
export const ATTR_HTTP_ROUTE = 'http.route';
export const METRIC_HTTP_SERVER_ACTIVE_REQUESTS = 'http.server.active_requests';
/** Why inbound policy answered a request itself (`load_shed`, `rate_limited`, `deadline_expired`, `timeout`). */
export const ATTR_INMESH_INBOUND_REFUSAL = 'inmesh.inbound.refusal';
/** Requests answered by inbound policy instead of the app, by `inmesh.inbound.refusal`. */
export const METRIC_INMESH_SERVER_REFUSED = 'inmesh.server.refused';

// Client state (our own names): outlier ejections, the circuit breaker, discovery.
/** Why outlier detection ejected an endpoint (`consecutive-5xx`, `consecutive-gateway-errors`). */
export const ATTR_INMESH_EJECTION_REASON = 'inmesh.ejection.reason';
/** A circuit-breaker state: `closed`, `open`, `half-open`. */
export const ATTR_INMESH_BREAKER_STATE = 'inmesh.breaker.state';
/** The registry kind serving an upstream: `consul`, `static`, `file`. */
export const ATTR_INMESH_REGISTRY = 'inmesh.registry';
/** Retries made by logical calls (attempts after the first). */
export const METRIC_INMESH_CLIENT_RETRIES = 'inmesh.client.retries';
export const METRIC_INMESH_CLIENT_EJECTIONS = 'inmesh.client.ejections';
export const METRIC_INMESH_CLIENT_EJECTED_ENDPOINTS = 'inmesh.client.ejected_endpoints';
export const METRIC_INMESH_CLIENT_BREAKER_STATE = 'inmesh.client.breaker.state';
export const METRIC_INMESH_CLIENT_BREAKER_TRANSITIONS = 'inmesh.client.breaker.transitions';
export const METRIC_INMESH_REGISTRY_STALENESS = 'inmesh.registry.staleness';

// Resources (guard/): the database and messaging client conventions (incubating, pinned).
export const ATTR_DB_SYSTEM_NAME = 'db.system.name';
export const ATTR_DB_OPERATION_NAME = 'db.operation.name';
export const ATTR_DB_COLLECTION_NAME = 'db.collection.name';
export const ATTR_MESSAGING_SYSTEM = 'messaging.system';
export const ATTR_MESSAGING_OPERATION_NAME = 'messaging.operation.name';
export const ATTR_MESSAGING_DESTINATION_NAME = 'messaging.destination.name';
export const METRIC_DB_CLIENT_OPERATION_DURATION = 'db.client.operation.duration';
export const METRIC_MESSAGING_CLIENT_OPERATION_DURATION = 'messaging.client.operation.duration';
/** The resource name a guarded call was made for (`mesh.guard(name, …)`). */
export const ATTR_INMESH_RESOURCE = 'inmesh.resource';
/** Bucket boundaries of the database and messaging operation durations, in seconds, as those conventions recommend. */
export const OPERATION_DURATION_BUCKETS: readonly number[] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];
