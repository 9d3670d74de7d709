/**
 * Every environment variable inmesh reads, in ONE declarative table: name,
 * what it sets (a policy path or a setting), how its value is parsed, and a
 * description. docs/configuration.md is generated from this table.
 *
 * Policy variables set the document's `defaults` (so an upstream that sets the
 * same field in the policy file still wins for that upstream). `OTEL_*`
 * variables belong to the OpenTelemetry SDK; only OTEL_SERVICE_NAME and
 * OTEL_SDK_DISABLED are read here.
 */
import type { z } from 'zod';
import { discoverySchema, loadBalancerSchema, retriesSchema, timeoutsSchema } from '../policy/schema.ts';
import { hasControlCharacter } from '../internal/control-characters.ts';
import { Secret } from '../internal/secret.ts';
import { hideUserinfo } from '../internal/userinfo.ts';
import type { ConsulConnection } from '../registry/consul-connection.ts';

export type ParseResult<T> = { ok: true; value: T } | { ok: false; message: string };

/** Settings of a configuration layer (code, environment or defaults), before precedence is applied. */
export interface SettingsLayer {
  policyFile?: string;
  policy?: Record<string, unknown>;
  service?: { name?: string; address?: string; port?: number };
  consul?: { -readonly [K in keyof ConsulConnection]?: ConsulConnection[K] };
  /** Set by CONSUL_HTTP_ADDR; CONSUL_HTTP_SSL wins over its `secure`. */
  consulAddress?: { host: string; port: number; secure?: boolean };
  /** Set by CONSUL_HTTP_TOKEN_FILE; CONSUL_HTTP_TOKEN wins over it. */
  consulTokenFile?: string;
  redisUrl?: Secret;
  telemetry?: { enabled?: boolean; serviceName?: string; sdkDisabled?: boolean };
}

export interface EnvVariable {
  /** Variable name, or a pattern such as `INMESH_ENDPOINTS_<SERVICE>`. */
  readonly name: string;
  /** Dotted setting it sets: `policy.defaults.timeouts.request`, `consul.token`, … */
  readonly target: string;
  /** What a valid value looks like, in words (used in errors and docs). */
  readonly expected: string;
  readonly example: string;
  readonly description: string;
  /** Never echo the value (errors show `[redacted]`, or what `redact` leaves). */
  readonly secret?: boolean;
  /** How the value is shown in an error when it may hold credentials (default: as is, or `[redacted]` when `secret`). */
  readonly redact?: (raw: string) => string;
  /** Read by another component (documented here only). */
  readonly owner?: string;
  /** Parse the raw value and store it in the environment layer. */
  readonly apply?: (raw: string, layer: SettingsLayer) => ParseResult<unknown>;
}

// ---------------------------------------------------------------- parsers

const ok = <T>(value: T): ParseResult<T> => ({ ok: true, value });
const fail = (message: string): ParseResult<never> => ({ ok: false, message });

/** Validates with the policy schema's own field, so env and document accept exactly the same values. */
function viaSchema(schema: z.ZodType, raw: string, convert: (raw: string) => unknown = (r) => r): ParseResult<unknown> {
  const value = convert(raw);
  const result = schema.safeParse(value);
  if (result.success) return ok(value);
  return fail(result.error.issues[0]?.message ?? 'invalid value');
}

const asNumber = (raw: string): unknown => (/^-?\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : raw);

function parseBoolean(raw: string): ParseResult<boolean> {
  const value = raw.trim().toLowerCase();
  if (value === 'true' || value === '1') return ok(true);
  if (value === 'false' || value === '0') return ok(false);
  return fail('expected true or false');
}

function parsePort(raw: string): ParseResult<number> {
  const port = Number(raw);
  return /^\d+$/.test(raw.trim()) && port >= 1 && port <= 65_535 ? ok(port) : fail('expected a port number from 1 to 65535');
}

function nonEmpty(raw: string, what: string): ParseResult<string> {
  const value = raw.trim();
  return value === '' ? fail(`expected ${what}`) : ok(value);
}

/**
 * CONSUL_HTTP_ADDR as the consul CLI takes it: `host:port`, `host`, or a URL
 * `http(s)://host[:port]` (https implies TLS). Without a port: 8500, or the
 * scheme's port for a URL.
 */
export function parseConsulAddress(raw: string): ParseResult<{ host: string; port: number; secure?: boolean }> {
  const expected = 'expected host:port or a URL such as http://127.0.0.1:8500 or https://consul.example:8501';
  const text = raw.trim();
  if (text === '') return fail(expected);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text)?.[1]?.toLowerCase();
  if (scheme !== undefined) {
    if (scheme === 'unix') return fail('unix sockets are not supported: expected host:port or an http(s) URL');
    if (scheme !== 'http' && scheme !== 'https') return fail(expected);
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return fail(expected);
    }
    if (url.username !== '' || url.password !== '')
      return fail(credentialsInAddress);
    if (url.hostname === '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '') return fail(expected);
    const host = parseConsulHost(url.hostname);
    if (!host.ok) return host;
    const secure = scheme === 'https';
    return ok({ host: host.value, port: url.port === '' ? (secure ? 443 : 80) : Number(url.port), secure });
  }
  if (text.includes('@')) return fail(credentialsInAddress);
  const match = /^(\[[^\]]*\]|[^:[\]]+)(?::(\d+))?$/.exec(text);
  if (match === null) return fail(expected);
  const host = parseConsulHost(match[1] ?? '');
  if (!host.ok) return host;
  const port = match[2] === undefined ? 8500 : Number(match[2]);
  if (port < 1 || port > 65_535) return fail(expected);
  return ok({ host: host.value, port });
}

/** Longest DNS name (RFC 1035), and so the longest Consul host accepted. */
const MAX_HOST_LENGTH = 253;

/**
 * The one rule for the Consul agent's host, from CONSUL_HTTP_ADDR and from
 * `consul.host` / `consul.address` in code: a host name (letters, digits, `.`,
 * `-`, `_`) or an IPv4 address, at most 253 characters. An IPv6 literal is
 * refused, as the Consul HTTP client (the consul package) cannot reach one:
 * refused here, not at first use.
 */
export function parseConsulHost(raw: string): ParseResult<string> {
  if (raw.includes(':') || raw.startsWith('['))
    return fail('an IPv6 literal address is not supported for the Consul agent: use an IPv4 address or a host name that resolves to it');
  if (raw.length > MAX_HOST_LENGTH) return fail(`expected a host name of at most ${MAX_HOST_LENGTH} characters, got ${raw.length}`);
  if (!/^[A-Za-z0-9._-]+$/.test(raw)) return fail('expected a host name (letters, digits, ".", "-", "_") or an IPv4 address');
  return ok(raw);
}

const credentialsInAddress =
  'credentials in the Consul address are refused (they would be sent and logged as part of a URL): put the ACL token in CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE, basic auth in CONSUL_HTTP_AUTH';

/**
 * A Redis URL for messages: its userinfo hidden; a value that is not a URL at
 * all (a bare password put in the wrong variable) is not shown.
 */
export function showRedisUrl(raw: string): string {
  return URL.canParse(raw.trim()) ? hideUserinfo(raw.trim()) : '[redacted]';
}

function parseRedisUrl(raw: string): ParseResult<Secret> {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return fail('expected a redis:// or rediss:// URL such as redis://:password@127.0.0.1:6379/0');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    return fail('expected a redis:// or rediss:// URL such as redis://:password@127.0.0.1:6379/0');
  return ok(new Secret(raw.trim()));
}

// ---------------------------------------------------------------- helpers to set layers

function setPolicy(layer: SettingsLayer, path: readonly string[], value: unknown): void {
  layer.policy ??= {};
  let node: Record<string, unknown> = layer.policy;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next === 'object' && next !== null) node = next as Record<string, unknown>;
    else {
      const created: Record<string, unknown> = {};
      node[key] = created;
      node = created;
    }
  }
  node[path.at(-1) ?? ''] = value;
}

function policyVariable(
  name: string,
  path: readonly string[],
  schema: z.ZodType,
  expected: string,
  example: string,
  description: string,
  convert?: (raw: string) => unknown,
): EnvVariable {
  return {
    name,
    target: `policy.${path.join('.')}`,
    expected,
    example,
    description,
    apply: (raw, layer) => {
      const result = viaSchema(schema, raw.trim(), convert);
      if (result.ok) setPolicy(layer, path, result.value);
      return result;
    },
  };
}

/** A string setting's parser: trimmed, not empty. */
const textOf = (what: string) => (raw: string): ParseResult<string> => nonEmpty(raw, what);

/**
 * The one check of a secret sent as a header (the Consul token, the basic-auth
 * pair), from a variable, a token file or code: trimmed, not empty, without
 * control characters (one would fail every request later with ERR_INVALID_CHAR,
 * or split the header). Kept as a Secret; a message never holds the value.
 */
export function parseSecret(raw: string, what: string): ParseResult<Secret> {
  const result = nonEmpty(raw, what);
  if (!result.ok) return result;
  if (hasControlCharacter(result.value)) return fail(`expected ${what} without control characters`);
  return ok(new Secret(result.value));
}

/** A secret setting's parser. */
const secretOf = (what: string) => (raw: string): ParseResult<Secret> => parseSecret(raw, what);

/** A variable that sets one field of the Consul connection. */
function consulVariable<K extends keyof ConsulConnection>(
  variable: Omit<EnvVariable, 'target' | 'apply'> & { key: K; parse: (raw: string) => ParseResult<NonNullable<ConsulConnection[K]>> },
): EnvVariable {
  const { key, parse, ...rest } = variable;
  return {
    ...rest,
    target: `consul.${key}`,
    apply: (raw, layer) => {
      const result = parse(raw);
      if (!result.ok) return result;
      (layer.consul ??= {})[key] = result.value;
      // A secret's parsed value is never handed back (it could reach a message).
      return rest.secret === true ? ok('[redacted]') : result;
    },
  };
}

const timeoutField = (key: 'connect' | 'request' | 'perTry' | 'idle') => timeoutsSchema.shape[key].unwrap();

// ---------------------------------------------------------------- the table

export const ENV_VARIABLES: readonly EnvVariable[] = [
  {
    name: 'INMESH_POLICY_FILE',
    target: 'policyFile',
    expected: 'a path to a YAML or JSON policy file',
    example: './inmesh.yaml',
    description: 'Policy document to load (relative to the working directory): a regular file of at most 1 MiB (a FIFO, a device or a directory is refused). Code settings override it, variables below too.',
    apply: (raw, layer) => {
      const result = nonEmpty(raw, 'a file path');
      if (result.ok) layer.policyFile = result.value;
      return result;
    },
  },
  policyVariable(
    'INMESH_LB_POLICY',
    ['defaults', 'loadBalancer', 'policy'],
    loadBalancerSchema.shape.policy.unwrap(),
    'one of round_robin, random, least_request, ring_hash, peak_ewma',
    'least_request',
    'Default load-balancing algorithm.',
  ),
  policyVariable(
    'INMESH_TIMEOUT_CONNECT',
    ['defaults', 'timeouts', 'connect'],
    timeoutField('connect'),
    'a duration such as "2s"',
    '2s',
    'Default connect timeout.',
  ),
  policyVariable(
    'INMESH_TIMEOUT_REQUEST',
    ['defaults', 'timeouts', 'request'],
    timeoutField('request'),
    'a duration such as "10s" ("0s" = none)',
    '10s',
    'Default total request timeout (every attempt included).',
  ),
  policyVariable(
    'INMESH_TIMEOUT_PER_TRY',
    ['defaults', 'timeouts', 'perTry'],
    timeoutField('perTry'),
    'a duration such as "2s" ("0s" = none)',
    '2s',
    'Default per-attempt timeout.',
  ),
  policyVariable(
    'INMESH_TIMEOUT_IDLE',
    ['defaults', 'timeouts', 'idle'],
    timeoutField('idle'),
    'a duration such as "60s"',
    '30s',
    'Default idle keep-alive socket timeout.',
  ),
  policyVariable(
    'INMESH_RETRY_ATTEMPTS',
    ['defaults', 'retries', 'attempts'],
    retriesSchema.shape.attempts.unwrap(),
    'an integer from 0 to 10 (retries after the first try)',
    '2',
    'Default number of retries after the first try (0 = no retries).',
    asNumber,
  ),
  policyVariable(
    'INMESH_REGISTRY',
    ['defaults', 'discovery', 'registry'],
    discoverySchema.shape.registry.unwrap(),
    'one of consul, static, file',
    'static',
    'Default registry.',
  ),
  {
    name: 'INMESH_ENDPOINTS_<SERVICE>',
    target: 'static registry',
    expected: 'comma-separated host:port list',
    example: '127.0.0.1:8080,127.0.0.1:8081',
    description:
      'Endpoints of SERVICE for the static registry (SERVICE upper-cased, other characters than A-Z and 0-9 as `_`). Read by the static registry; with it, `registry: static` needs no `endpoints` in the policy.',
    owner: 'static registry',
  },
  consulVariable({
    name: 'INMESH_DATACENTER',
    key: 'datacenter',
    parse: textOf('a datacenter name'),
    expected: 'a Consul datacenter name',
    example: 'dc1',
    description: "Datacenter to query instead of the agent's own (`discovery.datacenter` overrides it per upstream).",
  }),
  {
    name: 'INMESH_REDIS_URL',
    target: 'redisUrl',
    expected: 'a redis:// or rediss:// URL',
    example: 'redis://:password@127.0.0.1:6379/0',
    description: 'Redis for client rate limits shared across processes: when set, every upstream `rateLimit` is shared through it (as `rateLimit.shared: true`). Kept as a Secret: never printed.',
    secret: true,
    redact: showRedisUrl,
    apply: (raw, layer) => {
      const result = parseRedisUrl(raw);
      if (result.ok) layer.redisUrl = result.value;
      return result;
    },
  },
  {
    name: 'INMESH_SERVICE_NAME',
    target: 'service.name',
    expected: 'a service name',
    example: 'checkout',
    description: 'Name this process registers under (and the default telemetry service name).',
    apply: (raw, layer) => {
      const result = nonEmpty(raw, 'a service name');
      if (result.ok) (layer.service ??= {}).name = result.value;
      return result;
    },
  },
  {
    name: 'INMESH_SERVICE_ADDRESS',
    target: 'service.address',
    expected: 'a host name or IP address',
    example: '10.0.0.12',
    description: 'Address this process registers with.',
    apply: (raw, layer) => {
      const result = nonEmpty(raw, 'a host name or IP address');
      if (result.ok) (layer.service ??= {}).address = result.value;
      return result;
    },
  },
  {
    name: 'INMESH_SERVICE_PORT',
    target: 'service.port',
    expected: 'a port number from 1 to 65535',
    example: '8080',
    description: 'Port this process registers with.',
    apply: (raw, layer) => {
      const result = parsePort(raw);
      if (result.ok) (layer.service ??= {}).port = result.value;
      return result;
    },
  },
  {
    name: 'INMESH_TRACING',
    target: 'telemetry.enabled',
    expected: 'true or false',
    example: 'false',
    description: 'Turn inmesh spans and metrics on or off (wins over OTEL_SDK_DISABLED).',
    apply: (raw, layer) => {
      const result = parseBoolean(raw);
      if (result.ok) (layer.telemetry ??= {}).enabled = result.value;
      return result;
    },
  },
  {
    name: 'CONSUL_HTTP_ADDR',
    target: 'consul.host, consul.port, consul.secure',
    expected: 'host:port or an http(s) URL',
    example: 'https://consul.internal:8501',
    description: 'Consul agent address. An https:// URL turns TLS on. The host is a host name (letters, digits, `.`, `-`, `_`) or an IPv4 address of at most 253 characters; an IPv6 literal (`[::1]:8500`) is refused, as the Consul HTTP client cannot reach one. An address with a user name or password is refused (and never echoed). The same rules apply to `consul.address` and `consul.host` in code.',
    redact: hideUserinfo,
    apply: (raw, layer) => {
      const result = parseConsulAddress(raw);
      if (result.ok) layer.consulAddress = result.value;
      return result;
    },
  },
  consulVariable({
    name: 'CONSUL_HTTP_SSL',
    key: 'secure',
    parse: parseBoolean,
    expected: 'true or false',
    example: 'true',
    description: 'Use HTTPS to the agent (wins over the scheme of CONSUL_HTTP_ADDR, as in the consul CLI).',
  }),
  {
    name: 'CONSUL_HTTP_TOKEN_FILE',
    target: 'consul.token',
    expected: 'a path to a file holding the ACL token',
    example: '/run/secrets/consul-token',
    description: 'File holding the ACL token (read once, trimmed): a regular file of at most 64 KiB. Content with a control character inside (a second line) is refused, as for CONSUL_HTTP_TOKEN. Its content is never printed.',
    apply: (raw, layer) => {
      const result = nonEmpty(raw, 'a file path');
      if (result.ok) layer.consulTokenFile = result.value;
      return result;
    },
  },
  consulVariable({
    name: 'CONSUL_HTTP_TOKEN',
    key: 'token',
    parse: secretOf('a non-empty ACL token'),
    expected: 'an ACL token',
    example: '00000000-0000-0000-0000-000000000000',
    description: 'ACL token (wins over CONSUL_HTTP_TOKEN_FILE). A token with a control character (CR, LF, NUL, ...) is refused, the same for `consul.token` in code. Kept as a Secret: never printed.',
    secret: true,
  }),
  consulVariable({
    name: 'CONSUL_HTTP_AUTH',
    key: 'auth',
    parse: secretOf('user:password'),
    expected: 'user:password',
    example: 'operator:password',
    description: 'HTTP basic auth to the agent (for a proxy in front of it), sent as an Authorization header. Kept as a Secret: never printed.',
    secret: true,
  }),
  ...(
    [
      ['CONSUL_CACERT', 'caFile', 'CA bundle (PEM) to verify the agent.', '/etc/consul/ca.pem'],
      ['CONSUL_CAPATH', 'caPath', 'Directory of CA certificates (`*.pem`, `*.crt`) to verify the agent; used with CONSUL_CACERT if both are set.', '/etc/consul/ca.d'],
      ['CONSUL_CLIENT_CERT', 'certFile', 'Client certificate (PEM) for mTLS to the agent.', '/etc/consul/client.pem'],
      ['CONSUL_CLIENT_KEY', 'keyFile', 'Client key (PEM) for mTLS to the agent; only the path is kept, the file is never printed.', '/etc/consul/client-key.pem'],
    ] as const
  ).map(([name, key, description, example]) =>
    consulVariable({ name, key, parse: textOf('a file path'), expected: 'a file path', example, description }),
  ),
  consulVariable({
    name: 'CONSUL_HTTP_SSL_VERIFY',
    key: 'tlsVerify',
    parse: parseBoolean,
    expected: 'true or false',
    example: 'false',
    description: "Verify the agent's TLS certificate (default true). `false` turns verification off: for test set-ups only.",
  }),
  consulVariable({
    name: 'CONSUL_TLS_SERVER_NAME',
    key: 'tlsServerName',
    parse: textOf('a host name'),
    expected: 'a host name',
    example: 'consul.internal',
    description: 'Name to verify in the agent certificate (SNI) instead of the host.',
  }),
  consulVariable({
    name: 'CONSUL_NAMESPACE',
    key: 'namespace',
    parse: textOf('a namespace name'),
    expected: 'a namespace name',
    example: 'team-a',
    description: 'Consul Enterprise namespace, sent as `ns` with every query and registration (an OSS agent refuses it: the mesh reports that at start).',
  }),
  consulVariable({
    name: 'CONSUL_PARTITION',
    key: 'partition',
    parse: textOf('a partition name'),
    expected: 'an admin partition name',
    example: 'team-a',
    description: 'Consul Enterprise admin partition (1.11+; an agent without partitions refuses it: the mesh reports that at start).',
  }),
  {
    name: 'OTEL_SERVICE_NAME',
    target: 'telemetry.serviceName',
    expected: 'a service name',
    example: 'checkout',
    description: 'Telemetry service name (OpenTelemetry standard; the SDK reads it too).',
    apply: (raw, layer) => {
      const result = nonEmpty(raw, 'a service name');
      if (result.ok) (layer.telemetry ??= {}).serviceName = result.value;
      return result;
    },
  },
  {
    name: 'OTEL_SDK_DISABLED',
    target: 'telemetry.enabled',
    expected: 'true or false',
    example: 'true',
    description: 'OpenTelemetry standard: `true` turns telemetry off (other values leave it on, as the OTel spec says).',
    apply: (raw, layer) => {
      // OTel spec: only a case-insensitive "true" is true; anything else is false, never an error.
      (layer.telemetry ??= {}).sdkDisabled = raw.trim().toLowerCase() === 'true';
      return ok(raw);
    },
  },
];
