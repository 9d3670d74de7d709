/**
 * loadConfig(): one frozen ResolvedConfig from four sources. Precedence, for
 * each setting (OpenTelemetry SDK's rule, code wins):
 *
 *   code  >  environment variables  >  policy file  >  built-in defaults
 *
 * Policy variables (INMESH_TIMEOUT_REQUEST, …) set the document's `defaults`:
 * they override the file's `defaults`, while an upstream that sets the same
 * field keeps its own value (a more specific policy level, not a lower source).
 */
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import { ErrorCodes, InvalidPolicyError, type PolicyIssue } from '../errors.ts';
import { deepFreeze } from '../internal/deep-freeze.ts';
import { readBoundedFile } from '../internal/read-file.ts';
import { Secret } from '../internal/secret.ts';
import { hideUserinfo } from '../internal/userinfo.ts';
import { explainPolicy, resolvePolicy } from '../policy/index.ts';
import { MAX_POLICY_DEPTH, type PolicyDocument } from '../policy/schema.ts';
import type { ResolvedPolicy } from '../policy/types.ts';
import { endpointsVariable, formatPath, policyIssues } from '../policy/validate.ts';
import { suggest } from '../policy/suggest.ts';
import { findDuplicateKey } from './json-keys.ts';
import { ENV_VARIABLES, parseConsulAddress, parseConsulHost, parseSecret, showRedisUrl, type SettingsLayer } from './env.ts';
import { CONSUL_DEFAULTS, type ConsulConnection } from '../registry/consul-connection.ts';

export interface ServiceIdentity {
  /** Name this process registers under. */
  readonly name: string;
  readonly address?: string;
  readonly port?: number;
}

export interface TelemetrySettings {
  /** inmesh spans and metrics on (they are no-ops until an OpenTelemetry SDK is registered). Default true. */
  readonly enabled: boolean;
  /** OTEL_SERVICE_NAME, else the service name. */
  readonly serviceName?: string;
}

/** Where a setting's value came from. */
export type SettingSource = 'code' | 'default' | `env:${string}` | `file:${string}`;

export interface ResolvedConfig {
  readonly policy: ResolvedPolicy;
  /** Absolute path of the policy file read, if any. */
  readonly policyFile?: string;
  readonly service?: ServiceIdentity;
  readonly consul: ConsulConnection;
  /** Redis for shared rate limits; the whole URL is a Secret (it may carry a password). */
  readonly redisUrl?: Secret;
  readonly telemetry: TelemetrySettings;
  /**
   * Which source set each setting: `consul.host` → `env:CONSUL_HTTP_ADDR`,
   * `policy.upstreams.orders.timeouts.request` → `file:/app/inmesh.yaml`.
   * Policy fields not listed have their built-in default.
   */
  readonly sources: Readonly<Record<string, SettingSource>>;
  /** Things that are not errors but are probably mistakes (an unknown INMESH_* variable). */
  readonly warnings: readonly string[];
}

/** A policy document in code: `apiVersion` may be left out. */
export type CodePolicy = Omit<PolicyDocument, 'apiVersion'> & { apiVersion?: 'inmesh/v1' };

/** Settings given in code; they win over every other source. */
export interface ConfigInput {
  policy?: CodePolicy;
  /** Policy file to read (instead of INMESH_POLICY_FILE). */
  policyFile?: string;
  service?: { name: string; address?: string; port?: number };
  /** The Consul connection (see ConsulConnection); token and auth may be given as plain strings. */
  consul?: Partial<Omit<ConsulConnection, 'token' | 'auth'>> & {
    /** As CONSUL_HTTP_ADDR: `host:port` or a URL. */
    address?: string;
    token?: string | Secret;
    /** As CONSUL_HTTP_AUTH: `user:password` for HTTP basic auth. */
    auth?: string | Secret;
  };
  redisUrl?: string | Secret;
  telemetry?: { enabled?: boolean; serviceName?: string };
}

export interface LoadConfigOptions {
  code?: ConfigInput;
  /** Environment to read. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Directory relative paths are resolved against. Default `process.cwd()`. */
  cwd?: string;
}

const KNOWN_ENV = ENV_VARIABLES.map((v) => v.name).filter((name) => !name.includes('<'));
const KNOWN_CONSUL_ENV = KNOWN_ENV.filter((name) => name.startsWith('CONSUL_'));

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------- environment

function readEnvironment(env: Readonly<Record<string, string | undefined>>): {
  layer: SettingsLayer;
  issues: PolicyIssue[];
  setBy: Map<string, string>;
  warnings: string[];
} {
  const layer: SettingsLayer = {};
  const issues: PolicyIssue[] = [];
  const setBy = new Map<string, string>();
  for (const variable of ENV_VARIABLES) {
    if (variable.apply === undefined) continue;
    const raw = env[variable.name];
    if (raw === undefined || raw === '') continue;
    const result = variable.apply(raw, layer);
    if (result.ok) setBy.set(variable.name, variable.target);
    else
      issues.push({
        path: variable.name,
        value: variable.redact !== undefined ? variable.redact(raw) : variable.secret === true ? '[redacted]' : raw,
        message: result.message,
      });
  }
  const warnings: string[] = [];
  for (const name of Object.keys(env)) {
    if (!name.startsWith('INMESH_') || name.startsWith('INMESH_ENDPOINTS_') || KNOWN_ENV.includes(name)) continue;
    const guess = suggest(name, KNOWN_ENV);
    warnings.push(`unknown environment variable ${name}${guess === undefined ? '' : `; did you mean ${guess}?`}`);
  }
  for (const name of Object.keys(env)) {
    if (!name.startsWith('CONSUL_') || KNOWN_CONSUL_ENV.includes(name) || env[name] === undefined) continue;
    // Compared without the common prefix, so that CONSUL_GRPC_ADDR is not "close" to CONSUL_HTTP_ADDR.
    const tail = suggest(name.slice('CONSUL_'.length), KNOWN_CONSUL_ENV.map((n) => n.slice('CONSUL_'.length)));
    const guess = tail === undefined ? undefined : `CONSUL_${tail}`;
    warnings.push(`${name} is not a Consul variable inmesh reads; it is ignored${guess === undefined ? '' : ` (did you mean ${guess}?)`}`);
  }
  return { layer, issues, setBy, warnings };
}

// ---------------------------------------------------------------- code

function readCode(code: ConfigInput | undefined): { layer: SettingsLayer; issues: PolicyIssue[] } {
  const layer: SettingsLayer = {};
  const issues: PolicyIssue[] = [];
  if (code === undefined) return { layer, issues };
  if (code.policyFile !== undefined) layer.policyFile = code.policyFile;
  if (code.policy !== undefined) layer.policy = { ...code.policy };
  if (code.service !== undefined) {
    const { name, address, port } = code.service;
    if (typeof name !== 'string' || name === '') issues.push({ path: 'service.name', value: name, message: 'expected a non-empty service name' });
    if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65_535))
      issues.push({ path: 'service.port', value: port, message: 'expected a port number from 1 to 65535' });
    layer.service = { name, ...(address === undefined ? {} : { address }), ...(port === undefined ? {} : { port }) };
  }
  if (code.consul !== undefined) {
    const { address, token, auth, ...rest } = code.consul;
    const consul: NonNullable<SettingsLayer['consul']> = {};
    Object.assign(consul, rest);
    if (rest.host !== undefined) {
      const host: unknown = rest.host;
      const parsed = typeof host === 'string' ? parseConsulHost(host) : ({ ok: false, message: 'expected a host name or an IPv4 address' } as const);
      if (!parsed.ok) issues.push({ path: 'consul.host', value: host, message: parsed.message });
    }
    if (address !== undefined) {
      const parsed = parseConsulAddress(address);
      if (parsed.ok) Object.assign(consul, parsed.value);
      else issues.push({ path: 'consul.address', value: hideUserinfo(address), message: parsed.message });
    }
    if (consul.port !== undefined && !(Number.isInteger(consul.port) && consul.port >= 1 && consul.port <= 65_535))
      issues.push({ path: 'consul.port', value: consul.port, message: 'expected a port number from 1 to 65535' });
    // As CONSUL_HTTP_TOKEN and CONSUL_HTTP_AUTH; an empty string is refused (leave the field out for none).
    for (const [key, given, what] of [['token', token, 'a non-empty ACL token'], ['auth', auth, 'user:password']] as const) {
      if (given === undefined) continue;
      const text: unknown = given instanceof Secret ? given.reveal() : given;
      const parsed = typeof text === 'string' ? parseSecret(text, what) : ({ ok: false, message: `expected ${what}` } as const);
      if (parsed.ok) consul[key] = parsed.value;
      else issues.push({ path: `consul.${key}`, value: '[redacted]', message: parsed.message });
    }
    layer.consul = consul;
  }
  if (code.redisUrl !== undefined) {
    const url = code.redisUrl instanceof Secret ? code.redisUrl.reveal() : code.redisUrl;
    if (/^rediss?:\/\//.test(url)) layer.redisUrl = code.redisUrl instanceof Secret ? code.redisUrl : new Secret(url);
    else issues.push({ path: 'redisUrl', value: showRedisUrl(url), message: 'expected a redis:// or rediss:// URL' });
  }
  if (code.telemetry !== undefined) {
    layer.telemetry = {};
    if (code.telemetry.enabled !== undefined) layer.telemetry.enabled = code.telemetry.enabled;
    if (code.telemetry.serviceName !== undefined) layer.telemetry.serviceName = code.telemetry.serviceName;
  }
  return { layer, issues };
}

// ---------------------------------------------------------------- policy file

/** Largest policy file read (bytes). */
export const MAX_POLICY_FILE_BYTES = 1024 * 1024;
/** Largest CONSUL_HTTP_TOKEN_FILE read (bytes). */
export const MAX_TOKEN_FILE_BYTES = 64 * 1024;

/**
 * Reads a YAML or JSON policy file (a regular file of at most 1 MiB). A syntax
 * error names the file and line; `setting` names where the path came from
 * (`INMESH_POLICY_FILE`, `policyFile`, a CLI argument) in a read error.
 */
export function readPolicyFile(file: string, setting = 'policy file'): unknown {
  const read = readBoundedFile(file, MAX_POLICY_FILE_BYTES);
  if (!read.ok) throw new InvalidPolicyError(file, [{ path: setting, value: file, message: `cannot read the policy file: ${read.reason}` }]);
  const text = read.text;
  return parsePolicyText(file, text);
}

function syntaxError(file: string, text: string, kind: string, reason: string, line?: number, col?: number): InvalidPolicyError {
  return new InvalidPolicyError(file, [
    {
      path: line === undefined ? '' : `line ${line}`,
      value: line === undefined ? undefined : text.split(/\r?\n/)[line - 1]?.trim(),
      message: `${kind} syntax error${line === undefined ? ` in ${file}` : ` at ${file}:${line}:${col ?? 1}`}: ${reason}`,
    },
  ]);
}

function tooDeep(file: string): InvalidPolicyError {
  return new InvalidPolicyError(file, [
    { path: '', value: undefined, message: `the document is nested more than ${MAX_POLICY_DEPTH} levels deep; a policy needs fewer than ten` },
  ]);
}

/** Depth of nested objects and arrays, counted without recursion, stopping past the limit. */
function deeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [node, depth] = item;
    if (typeof node !== 'object' || node === null) continue;
    if (depth >= limit) return true;
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
  return false;
}

/** Line and column (1-based) of an offset in a text. */
function lineAndColumn(text: string, offset: number): [line: number, col: number] {
  const before = text.slice(0, offset).split(/\r?\n/);
  return [before.length, (before.at(-1)?.length ?? 0) + 1];
}

/**
 * JSON files (by their `.json` name) are parsed with JSON.parse, which is
 * linear (the YAML parser's duplicate-key check is quadratic in the keys of a
 * map), then scanned for duplicate keys, which JSON.parse would merge silently.
 * A leading byte order mark (U+FEFF, as some editors write) is skipped for both
 * formats. Every failure (syntax, a duplicate key, an alias bomb the YAML parser
 * stops, excessive nesting) becomes an InvalidPolicyError naming the file.
 */
function parsePolicyText(file: string, withBom: string): unknown {
  const text = withBom.startsWith('\uFEFF') ? withBom.slice(1) : withBom;
  let value: unknown;
  if (file.toLowerCase().endsWith('.json')) {
    try {
      value = JSON.parse(text);
    } catch (error) {
      if (error instanceof RangeError) throw tooDeep(file);
      const message = (error as Error).message;
      const position = /at position (\d+)/.exec(message)?.[1];
      const reason = message.replace(/ in JSON at position \d+.*$/s, '').replace(/^JSON\.parse: /, '');
      if (position === undefined) throw syntaxError(file, text, 'JSON', reason);
      throw syntaxError(file, text, 'JSON', reason, ...lineAndColumn(text, Number(position)));
    }
    const duplicate = findDuplicateKey(text);
    if (duplicate !== undefined) {
      const [line, col] = lineAndColumn(text, duplicate.offset);
      const key = duplicate.path.at(-1);
      throw new InvalidPolicyError(file, [
        {
          path: formatPath(duplicate.path),
          value: key,
          message: `JSON syntax error at ${file}:${line}:${col}: the key ${JSON.stringify(key)} appears twice in one object (keys must be unique: the first one's settings would be lost)`,
        },
      ]);
    }
  } else {
    try {
      const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
      const error = doc.errors[0];
      if (error !== undefined) {
        // The parser reports its own stack overflow on deep nesting as a syntax error.
        if (error.message.includes('Maximum call stack size exceeded')) throw tooDeep(file);
        const reason = (error.message.split('\n')[0] ?? error.message).replace(/ at line \d+, column \d+:?$/, '');
        throw syntaxError(file, text, 'YAML', reason, error.linePos?.[0].line, error.linePos?.[0].col);
      }
      value = doc.toJS();
    } catch (error) {
      if (error instanceof InvalidPolicyError) throw error;
      if (error instanceof RangeError) throw tooDeep(file);
      // The parser refuses alias expansion past its limit (a "billion laughs" document) with a ReferenceError.
      throw syntaxError(file, text, 'YAML', (error as Error).message);
    }
  }
  if (deeperThan(value, MAX_POLICY_DEPTH)) throw tooDeep(file);
  return value;
}

// ---------------------------------------------------------------- merge

/** Deep merge of policy documents: objects merge, arrays, `false` and `hashOn` replace. */
function mergeDocuments(...docs: readonly (Record<string, unknown> | undefined)[]): Record<string, unknown> {
  const merge = (a: unknown, b: unknown, key: string): unknown => {
    if (b === undefined) return a;
    if (!isRecord(a) || !isRecord(b) || key === 'hashOn') return b;
    const out: Record<string, unknown> = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = merge(out[k], v, k);
    return out;
  };
  let result: Record<string, unknown> = {};
  for (const doc of docs) result = merge(result, doc, '') as Record<string, unknown>;
  return result;
}

function recordLeaves(doc: unknown, prefix: string, source: SettingSource, into: Record<string, SettingSource>): void {
  if (!isRecord(doc)) {
    if (doc !== undefined) into[prefix] = source;
    return;
  }
  for (const [key, value] of Object.entries(doc)) recordLeaves(value, `${prefix}.${key}`, source, into);
}

// ---------------------------------------------------------------- loadConfig

/**
 * A candidate value of a setting and the source it comes from. A function is
 * read only when every source before it is unset (a token file is not opened
 * when code gives the token).
 */
type Candidate<T> = readonly [source: SettingSource, value: T | undefined | (() => T | undefined)];

/**
 * The one precedence rule: the first defined candidate wins, candidates listed
 * code, environment, file, default. Records the winner's source under `setting`.
 */
function choose<T>(sources: Record<string, SettingSource>, setting: string, ...candidates: readonly Candidate<T>[]): T | undefined {
  for (const [source, candidate] of candidates) {
    const value = typeof candidate === 'function' ? (candidate as () => T | undefined)() : candidate;
    if (value !== undefined) {
      sources[setting] = source;
      return value;
    }
  }
  return undefined;
}

const CONSUL_PATH_KEYS: ReadonlySet<string> = new Set(['caFile', 'caPath', 'certFile', 'keyFile']);

/** Settings that two variables set; loadConfig lists each one's candidates in the order they win. */
const ORDERED_SETTINGS: ReadonlySet<string> = new Set(['consul.secure', 'consul.token', 'telemetry.enabled']);

/** The one variable of every other setting (`consul.host` → CONSUL_HTTP_ADDR), whatever the table's order. */
const VARIABLE_OF: ReadonlyMap<string, string> = (() => {
  const found = new Map<string, string[]>();
  for (const variable of ENV_VARIABLES) {
    if (variable.apply === undefined) continue;
    for (const target of variable.target.split(', ')) found.set(target, [...(found.get(target) ?? []), variable.name]);
  }
  const one = new Map<string, string>();
  for (const [target, names] of found) {
    const [name] = names;
    if (names.length === 1 && name !== undefined) one.set(target, name);
    else if (!ORDERED_SETTINGS.has(target)) throw new Error(`${names.join(' and ')} both set ${target}: list their order in ORDERED_SETTINGS and loadConfig`);
  }
  return one;
})();

/** The source label of a setting that one variable sets. */
function onlyVariable(target: string): SettingSource {
  const name = VARIABLE_OF.get(target);
  if (name === undefined) throw new Error(`no single environment variable sets ${target}`);
  return `env:${name}`;
}

/**
 * Loads the configuration: code > environment > policy file > defaults.
 * Throws InvalidPolicyError (code INMESH_ERR_INVALID_CONFIG for variables and
 * code settings, INMESH_ERR_INVALID_POLICY for the document) listing every
 * problem of a source. Secrets are kept as `Secret` and never printed.
 */
export function loadConfig(options: LoadConfigOptions = {}): ResolvedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const fromEnv = readEnvironment(env);
  const fromCode = readCode(options.code);
  if (fromEnv.issues.length > 0) throw new InvalidPolicyError('environment', fromEnv.issues, ErrorCodes.INVALID_CONFIG);
  if (fromCode.issues.length > 0) throw new InvalidPolicyError('code configuration', fromCode.issues, ErrorCodes.INVALID_CONFIG);
  const code = fromCode.layer;
  const environment = fromEnv.layer;
  const sources: Record<string, SettingSource> = {};
  /** A setting that one variable sets: code, that variable, the default. */
  const setting = <T>(name: string, fromCodeValue: T | undefined, fromEnvValue: T | undefined, fallback?: T): T | undefined =>
    choose<T>(sources, name, ['code', fromCodeValue], [onlyVariable(name), fromEnvValue], ['default', fallback]);

  // Policy: the document merges the file, the environment and code (deep, in that order).
  const policyFileSetting = setting('policyFile', code.policyFile, environment.policyFile);
  let policyFile: string | undefined;
  let fileDoc: Record<string, unknown> | undefined;
  if (policyFileSetting !== undefined) {
    policyFile = isAbsolute(policyFileSetting) ? policyFileSetting : resolvePath(cwd, policyFileSetting);
    const raw = readPolicyFile(policyFile, sources.policyFile === 'code' ? 'policyFile' : 'INMESH_POLICY_FILE');
    const issues = policyIssues(raw, { crossField: false });
    if (issues.length > 0) throw new InvalidPolicyError(policyFile, issues);
    fileDoc = raw as Record<string, unknown>;
    recordLeaves(fileDoc, 'policy', `file:${policyFile}`, sources);
  }
  const envDoc = environment.policy === undefined ? undefined : { apiVersion: 'inmesh/v1', ...environment.policy };
  if (environment.policy !== undefined) {
    for (const variable of ENV_VARIABLES)
      if (variable.target.startsWith('policy.') && fromEnv.setBy.has(variable.name)) sources[variable.target] = `env:${variable.name}`;
  }
  const codeDoc = code.policy === undefined ? undefined : { apiVersion: 'inmesh/v1', ...code.policy };
  if (codeDoc !== undefined) {
    const issues = policyIssues(codeDoc, { crossField: false });
    if (issues.length > 0) throw new InvalidPolicyError('policy in code', issues);
    recordLeaves(code.policy, 'policy', 'code', sources);
  }
  delete sources['policy.apiVersion'];
  delete sources['policy.$schema'];

  const merged = mergeDocuments({ apiVersion: 'inmesh/v1' }, fileDoc, envDoc, codeDoc);
  delete merged.$schema;
  const label = [policyFile, envDoc && 'environment', codeDoc && 'code'].filter(Boolean).join(' + ') || 'built-in defaults';
  const policy = resolvePolicy(merged as PolicyDocument, `policy (${label})`, {
    externalEndpoints: (upstream, service) =>
      env[endpointsVariable(service)] !== undefined || env[endpointsVariable(upstream)] !== undefined,
  });

  // Consul connection: every field set by some source, each by the one rule.
  const consul: Record<string, unknown> = {};
  const consulKeys = new Set<keyof ConsulConnection>([
    ...(Object.keys(CONSUL_DEFAULTS) as (keyof ConsulConnection)[]),
    ...(Object.keys(code.consul ?? {}) as (keyof ConsulConnection)[]),
    ...(Object.keys(environment.consul ?? {}) as (keyof ConsulConnection)[]),
    ...(Object.keys(environment.consulAddress ?? {}) as (keyof ConsulConnection)[]),
    ...(environment.consulTokenFile === undefined ? [] : (['token'] as const)),
  ]);
  const tokenFile = environment.consulTokenFile;
  const address = environment.consulAddress;
  // The fields two variables set, in the order they win (as the consul CLI); every
  // other field has one variable. Written here, so the table's order decides nothing.
  const consulFromEnv: Partial<Record<keyof ConsulConnection, readonly Candidate<unknown>[]>> = {
    host: [['env:CONSUL_HTTP_ADDR', address?.host]],
    port: [['env:CONSUL_HTTP_ADDR', address?.port]],
    secure: [
      ['env:CONSUL_HTTP_SSL', environment.consul?.secure],
      ['env:CONSUL_HTTP_ADDR', address?.secure],
    ],
    token: [
      ['env:CONSUL_HTTP_TOKEN', environment.consul?.token],
      // Read only when CONSUL_HTTP_TOKEN is unset.
      ['env:CONSUL_HTTP_TOKEN_FILE', tokenFile === undefined ? undefined : () => readTokenFile(resolvePath(cwd, tokenFile))],
    ],
  };
  for (const key of consulKeys) {
    const fallback = Object.hasOwn(CONSUL_DEFAULTS, key) ? CONSUL_DEFAULTS[key as keyof typeof CONSUL_DEFAULTS] : undefined;
    let value = choose<unknown>(
      sources,
      `consul.${key}`,
      ['code', code.consul?.[key]],
      ...(consulFromEnv[key] ?? [[onlyVariable(`consul.${key}`), environment.consul?.[key]] as const]),
      ['default', fallback],
    );
    if (value === undefined) continue;
    if (CONSUL_PATH_KEYS.has(key) && typeof value === 'string' && !isAbsolute(value)) value = resolvePath(cwd, value);
    consul[key] = value;
  }

  // Service identity: only with a name.
  const serviceName = setting('service.name', code.service?.name, environment.service?.name);
  let service: ServiceIdentity | undefined;
  if (serviceName !== undefined) {
    const address = setting('service.address', code.service?.address, environment.service?.address);
    const port = setting('service.port', code.service?.port, environment.service?.port);
    service = { name: serviceName, ...(address === undefined ? {} : { address }), ...(port === undefined ? {} : { port }) };
  }

  // Telemetry: code, INMESH_TRACING, OTEL_SDK_DISABLED, default on.
  const enabled =
    choose<boolean>(
      sources,
      'telemetry.enabled',
      ['code', code.telemetry?.enabled],
      ['env:INMESH_TRACING', environment.telemetry?.enabled],
      ['env:OTEL_SDK_DISABLED', environment.telemetry?.sdkDisabled === true ? false : undefined],
      ['default', true],
    ) ?? true;
  const telemetryServiceName = choose<string>(
    sources,
    'telemetry.serviceName',
    ['code', code.telemetry?.serviceName],
    ['env:OTEL_SERVICE_NAME', environment.telemetry?.serviceName],
    [sources['service.name'] ?? 'default', service?.name],
  );

  const redisUrl = setting('redisUrl', code.redisUrl, environment.redisUrl);

  const config: ResolvedConfig = {
    policy,
    ...(policyFile === undefined ? {} : { policyFile }),
    ...(service === undefined ? {} : { service }),
    consul: consul as unknown as ConsulConnection,
    ...(redisUrl === undefined ? {} : { redisUrl }),
    telemetry: { enabled, ...(telemetryServiceName === undefined ? {} : { serviceName: telemetryServiceName }) },
    sources,
    warnings: fromEnv.warnings,
  };
  return deepFreeze(config);
}

function readTokenFile(file: string): Secret {
  const read = readBoundedFile(file, MAX_TOKEN_FILE_BYTES);
  if (!read.ok)
    throw new InvalidPolicyError(
      'environment',
      [{ path: 'CONSUL_HTTP_TOKEN_FILE', value: file, message: `cannot read the token file: ${read.reason}` }],
      ErrorCodes.INVALID_CONFIG,
    );
  // Trimmed like the variable (a trailing newline goes); a control character inside is refused.
  const token = parseSecret(read.text, 'a non-empty ACL token');
  if (!token.ok)
    throw new InvalidPolicyError(
      'environment',
      [{ path: 'CONSUL_HTTP_TOKEN_FILE', value: file, message: `the token file's content: ${token.message}` }],
      ErrorCodes.INVALID_CONFIG,
    );
  return token.value;
}

/** YAML view of a configuration (secrets redacted), with where each setting came from. */
export function explainConfig(config: ResolvedConfig): string {
  const { policy, ...settings } = config;
  const view = JSON.parse(JSON.stringify(settings)) as unknown;
  return `${stringify(view, { lineWidth: 0 })}---\n${explainPolicy(policy)}`;
}
