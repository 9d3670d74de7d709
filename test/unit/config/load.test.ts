import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format, inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCodes, InvalidPolicyError } from '../../../src/errors.ts';
import { ENV_VARIABLES, parseConsulAddress, type EnvVariable } from '../../../src/config/env.ts';
import { explainConfig, loadConfig } from '../../../src/config/load.ts';
import { Secret } from '../../../src/internal/secret.ts';

const fixtures = fileURLToPath(new URL('../../fixtures/policy/', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'inmesh-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function thrown(fn: () => unknown): InvalidPolicyError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidPolicyError);
    return error as InvalidPolicyError;
  }
  throw new Error('expected an error');
}

describe('loadConfig: defaults', () => {
  it('with nothing set: built-in policy, local Consul agent, telemetry on', () => {
    const config = loadConfig({ env: {}, cwd: tmp });
    expect(config.policy.defaults.timeouts.request).toBe(15_000);
    expect(config.consul).toEqual({ host: '127.0.0.1', port: 8500, secure: false });
    expect(config.service).toBeUndefined();
    expect(config.redisUrl).toBeUndefined();
    expect(config.telemetry).toEqual({ enabled: true });
    expect(config.sources).toMatchObject({ 'consul.host': 'default', 'consul.port': 'default', 'telemetry.enabled': 'default' });
    expect(config.warnings).toEqual([]);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.consul)).toBe(true);
  });
});

describe('loadConfig: precedence code > env > file > defaults', () => {
  const env = {
    INMESH_POLICY_FILE: 'valid.yaml',
    INMESH_TIMEOUT_CONNECT: '3s',
    INMESH_RETRY_ATTEMPTS: '4',
    INMESH_LB_POLICY: 'random',
  };

  it('the file sets what nothing else sets', () => {
    const config = loadConfig({ env: { INMESH_POLICY_FILE: 'valid.yaml' }, cwd: fixtures });
    expect(config.policyFile).toBe(join(fixtures, 'valid.yaml'));
    expect(config.policy.defaults.timeouts).toMatchObject({ connect: 2000, request: 10_000 });
    expect(config.policy.upstreams.orders!.timeouts.request).toBe(4000);
    expect(config.sources['policy.defaults.timeouts.connect']).toBe(`file:${join(fixtures, 'valid.yaml')}`);
  });

  it('environment beats the file (for the same setting), the file keeps what env does not set', () => {
    const config = loadConfig({ env, cwd: fixtures });
    expect(config.policy.defaults.timeouts.connect).toBe(3000); // env over file
    expect(config.policy.defaults.timeouts.request).toBe(10_000); // file
    expect(config.policy.defaults.retries.attempts).toBe(4); // env over file's 1
    expect(config.policy.defaults.loadBalancer.policy).toBe('random');
    // An upstream's own value is a more specific level, not a lower source: it stays.
    expect(config.policy.upstreams.orders!.loadBalancer.policy).toBe('least_request');
    expect(config.policy.upstreams.orders!.timeouts.connect).toBe(3000); // inherited from defaults (env)
    expect(config.sources['policy.defaults.timeouts.connect']).toBe('env:INMESH_TIMEOUT_CONNECT');
    expect(config.sources['policy.defaults.timeouts.request']).toBe(`file:${join(fixtures, 'valid.yaml')}`);
  });

  it('code beats environment and file', () => {
    const config = loadConfig({
      env,
      cwd: fixtures,
      code: { policy: { defaults: { timeouts: { connect: '1s' } }, upstreams: { orders: { timeouts: { request: '9s' } } } } },
    });
    expect(config.policy.defaults.timeouts.connect).toBe(1000);
    expect(config.policy.defaults.retries.attempts).toBe(4); // env still applies where code is silent
    expect(config.policy.upstreams.orders!.timeouts.request).toBe(9000);
    expect(config.policy.upstreams.orders!.loadBalancer.policy).toBe('least_request'); // file, merged
    expect(config.sources['policy.defaults.timeouts.connect']).toBe('code');
    expect(config.sources['policy.upstreams.orders.timeouts.request']).toBe('code');
  });

  it('code.policyFile beats INMESH_POLICY_FILE; JSON files work', () => {
    const config = loadConfig({ env, cwd: fixtures, code: { policyFile: 'valid.json' } });
    expect(config.policyFile).toBe(join(fixtures, 'valid.json'));
    expect(config.sources.policyFile).toBe('code');
    expect(config.policy.defaults.loadBalancer.policy).toBe('random');
  });

  it('settings: code > env > default for consul, service, telemetry', () => {
    const environment = {
      CONSUL_HTTP_ADDR: 'consul.internal:8600',
      INMESH_SERVICE_NAME: 'checkout',
      INMESH_SERVICE_PORT: '8080',
      OTEL_SERVICE_NAME: 'checkout-otel',
      INMESH_DATACENTER: 'dc2',
    };
    const fromEnv = loadConfig({ env: environment, cwd: tmp });
    expect(fromEnv.consul).toEqual({ host: 'consul.internal', port: 8600, secure: false, datacenter: 'dc2' });
    expect(fromEnv.service).toEqual({ name: 'checkout', port: 8080 });
    expect(fromEnv.telemetry).toEqual({ enabled: true, serviceName: 'checkout-otel' });
    expect(fromEnv.sources).toMatchObject({
      'consul.host': 'env:CONSUL_HTTP_ADDR',
      'consul.port': 'env:CONSUL_HTTP_ADDR',
      'consul.datacenter': 'env:INMESH_DATACENTER',
      'service.name': 'env:INMESH_SERVICE_NAME',
      'telemetry.serviceName': 'env:OTEL_SERVICE_NAME',
    });
    const fromCode = loadConfig({
      env: environment,
      cwd: tmp,
      code: { consul: { address: 'https://10.0.0.1:8501' }, service: { name: 'cart' }, telemetry: { serviceName: 'cart-svc', enabled: false } },
    });
    expect(fromCode.consul).toMatchObject({ host: '10.0.0.1', port: 8501, secure: true, datacenter: 'dc2' });
    expect(fromCode.service).toEqual({ name: 'cart', port: 8080 });
    expect(fromCode.telemetry).toEqual({ enabled: false, serviceName: 'cart-svc' });
    expect(fromCode.sources['consul.host']).toBe('code');
    expect(fromCode.sources['service.port']).toBe('env:INMESH_SERVICE_PORT');
  });

  it('telemetry: INMESH_TRACING wins over OTEL_SDK_DISABLED; OTEL_SDK_DISABLED=true turns it off; service name fallback', () => {
    expect(loadConfig({ env: { OTEL_SDK_DISABLED: 'true' }, cwd: tmp }).telemetry.enabled).toBe(false);
    expect(loadConfig({ env: { OTEL_SDK_DISABLED: 'TRUE' }, cwd: tmp }).telemetry.enabled).toBe(false);
    expect(loadConfig({ env: { OTEL_SDK_DISABLED: 'nope' }, cwd: tmp }).telemetry.enabled).toBe(true);
    expect(loadConfig({ env: { OTEL_SDK_DISABLED: 'true', INMESH_TRACING: 'true' }, cwd: tmp }).telemetry.enabled).toBe(true);
    expect(loadConfig({ env: { INMESH_SERVICE_NAME: 'svc' }, cwd: tmp }).telemetry.serviceName).toBe('svc');
  });

  it('INMESH_ENDPOINTS_<SERVICE> satisfies registry static without endpoints in the document', () => {
    const code = { policy: { upstreams: { 'user-api': { discovery: { registry: 'static' as const } } } } };
    expect(() => loadConfig({ env: {}, cwd: tmp, code })).toThrow(/registry static needs at least one "host:port" endpoint \(in the policy or in INMESH_ENDPOINTS_USER_API\)/);
    const config = loadConfig({ env: { INMESH_ENDPOINTS_USER_API: '127.0.0.1:1' }, cwd: tmp, code });
    expect(config.policy.upstreams['user-api']!.discovery.registry).toBe('static');
    expect(config.warnings).toEqual([]); // INMESH_ENDPOINTS_* is known
  });

  it('warns about unknown INMESH_* variables with a suggestion', () => {
    const config = loadConfig({ env: { INMESH_TIMEOUT_CONECT: '1s', INMESH_WHATEVER_ELSE_ENTIRELY: 'x' }, cwd: tmp });
    expect(config.warnings).toEqual([
      'unknown environment variable INMESH_TIMEOUT_CONECT; did you mean INMESH_TIMEOUT_CONNECT?',
      'unknown environment variable INMESH_WHATEVER_ELSE_ENTIRELY',
    ]);
  });
});

describe('loadConfig: environment errors name the variable, its value and what was expected', () => {
  it('collects every bad variable in one INVALID_CONFIG error', () => {
    const e = thrown(() =>
      loadConfig({
        env: {
          INMESH_RETRY_ATTEMPTS: 'lots',
          INMESH_TIMEOUT_REQUEST: '250',
          INMESH_LB_POLICY: 'fastest',
          INMESH_SERVICE_PORT: '99999',
          INMESH_TRACING: 'maybe',
          CONSUL_HTTP_ADDR: 'unix:///var/run/consul.sock',
          CONSUL_HTTP_SSL: 'yes',
        },
        cwd: tmp,
      }),
    );
    expect(e.code).toBe(ErrorCodes.INVALID_CONFIG);
    expect(e.source).toBe('environment');
    expect(e.issues).toEqual([
      { path: 'INMESH_LB_POLICY', value: 'fastest', message: 'expected one of round_robin, random, least_request, ring_hash, peak_ewma' },
      { path: 'INMESH_TIMEOUT_REQUEST', value: '250', message: 'expected a duration such as "250ms", "10s" or "1m30s" (units h, m, s, ms)' },
      { path: 'INMESH_RETRY_ATTEMPTS', value: 'lots', message: 'expected an integer from 0 to 10' },
      { path: 'INMESH_SERVICE_PORT', value: '99999', message: 'expected a port number from 1 to 65535' },
      { path: 'INMESH_TRACING', value: 'maybe', message: 'expected true or false' },
      { path: 'CONSUL_HTTP_ADDR', value: 'unix:///var/run/consul.sock', message: 'unix sockets are not supported: expected host:port or an http(s) URL' },
      { path: 'CONSUL_HTTP_SSL', value: 'yes', message: 'expected true or false' },
    ]);
    expect(e.message).toContain('invalid environment: 7 problems');
    expect(e.message).toContain('  - INMESH_RETRY_ATTEMPTS: expected an integer from 0 to 10 (got "lots")');
  });

  it('range errors come from the same schema as the document', () => {
    const e = thrown(() => loadConfig({ env: { INMESH_RETRY_ATTEMPTS: '11', INMESH_TIMEOUT_CONNECT: '0s' }, cwd: tmp }));
    expect(e.issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      'INMESH_TIMEOUT_CONNECT: expected a duration from 1ms to 24h',
      'INMESH_RETRY_ATTEMPTS: expected an integer from 0 to 10',
    ]);
  });

  it('bad code settings are reported too', () => {
    const e = thrown(() => loadConfig({ env: {}, cwd: tmp, code: { consul: { address: 'ftp://x' }, service: { name: '', port: 0 } } }));
    expect(e.source).toBe('code configuration');
    expect(e.issues.map((i) => i.path)).toEqual(['service.name', 'service.port', 'consul.address']);
  });
});

describe('loadConfig: policy file errors name the file', () => {
  it('a YAML syntax error names the file and line', () => {
    const file = join(fixtures, 'syntax-error.yaml');
    const e = thrown(() => loadConfig({ env: { INMESH_POLICY_FILE: file }, cwd: tmp }));
    expect(e.code).toBe(ErrorCodes.INVALID_POLICY);
    expect(e.source).toBe(file);
    expect(e.message).toMatch(new RegExp(`YAML syntax error at ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:5:\\d+: `));
    expect(e.issues[0]!.path).toBe('line 5');
    expect(e.issues[0]!.value).toBe('request: 10s');
  });

  it('a JSON syntax error names the file and line', () => {
    const file = join(fixtures, 'syntax-error.json');
    const e = thrown(() => loadConfig({ env: { INMESH_POLICY_FILE: file }, cwd: tmp }));
    expect(e.message).toContain(`JSON syntax error at ${file}:`);
    expect(e.issues[0]!.path).toMatch(/^line \d+$/);
  });

  it('a missing file', () => {
    const e = thrown(() => loadConfig({ env: { INMESH_POLICY_FILE: 'nope.yaml' }, cwd: tmp }));
    expect(e.message).toBe(`invalid ${join(tmp, 'nope.yaml')}: 1 problem\n  - INMESH_POLICY_FILE: cannot read the policy file: no such file (got "${join(tmp, 'nope.yaml')}")`);
  });

  it('an invalid document names the file and the field', () => {
    const e = thrown(() => loadConfig({ env: { INMESH_POLICY_FILE: 'invalid.yaml' }, cwd: fixtures }));
    expect(e.source).toBe(join(fixtures, 'invalid.yaml'));
    expect(e.issues).toEqual([{ path: 'defaults.retries.attempts', value: 20, message: 'expected an integer from 0 to 10' }]);
  });

  it('an invalid policy in code names the code', () => {
    const e = thrown(() => loadConfig({ env: {}, cwd: tmp, code: { policy: { defaults: { timeouts: { request: 5 as unknown as string } } } } }));
    expect(e.source).toBe('policy in code');
  });
});

describe('Consul variables', () => {
  it('parses CONSUL_HTTP_ADDR forms', () => {
    expect(parseConsulAddress('127.0.0.1:8500')).toEqual({ ok: true, value: { host: '127.0.0.1', port: 8500 } });
    expect(parseConsulAddress('consul')).toEqual({ ok: true, value: { host: 'consul', port: 8500 } });
    expect(parseConsulAddress('https://consul.internal')).toEqual({ ok: true, value: { host: 'consul.internal', port: 443, secure: true } });
    expect(parseConsulAddress('http://[::1]:8500')).toMatchObject({ ok: false });
    expect(parseConsulAddress('[::1]:8501')).toMatchObject({ ok: false });
    expect(parseConsulAddress('host:0').ok).toBe(false);
    expect(parseConsulAddress('http://h/path').ok).toBe(false);
  });

  it('reads TLS settings and the namespace; CONSUL_HTTP_SSL wins over the scheme', () => {
    const config = loadConfig({
      env: {
        CONSUL_HTTP_ADDR: 'http://consul:8501',
        CONSUL_HTTP_SSL: 'true',
        CONSUL_CACERT: 'ca.pem',
        CONSUL_CLIENT_CERT: '/etc/c.pem',
        CONSUL_CLIENT_KEY: '/etc/k.pem',
        CONSUL_TLS_SERVER_NAME: 'consul.internal',
        CONSUL_NAMESPACE: 'team-a',
      },
      cwd: tmp,
    });
    expect(config.consul).toEqual({
      host: 'consul',
      port: 8501,
      secure: true,
      caFile: join(tmp, 'ca.pem'),
      certFile: '/etc/c.pem',
      keyFile: '/etc/k.pem',
      tlsServerName: 'consul.internal',
      namespace: 'team-a',
    });
    expect(config.sources['consul.secure']).toBe('env:CONSUL_HTTP_SSL');
  });

  it('token: CONSUL_HTTP_TOKEN wins over CONSUL_HTTP_TOKEN_FILE (read and trimmed)', () => {
    const file = join(tmp, 'token');
    writeFileSync(file, '  file-token-123\n');
    const fromFile = loadConfig({ env: { CONSUL_HTTP_TOKEN_FILE: file }, cwd: tmp });
    expect(fromFile.consul.token?.reveal()).toBe('file-token-123');
    expect(fromFile.sources['consul.token']).toBe('env:CONSUL_HTTP_TOKEN_FILE');
    const both = loadConfig({ env: { CONSUL_HTTP_TOKEN_FILE: file, CONSUL_HTTP_TOKEN: 'env-token' }, cwd: tmp });
    expect(both.consul.token?.reveal()).toBe('env-token');
    const code = loadConfig({ env: { CONSUL_HTTP_TOKEN: 'env-token' }, cwd: tmp, code: { consul: { token: 'code-token' } } });
    expect(code.consul.token?.reveal()).toBe('code-token');
  });

  it('reads CONSUL_PARTITION, CONSUL_CAPATH (relative to cwd), CONSUL_HTTP_SSL_VERIFY; code wins', () => {
    const config = loadConfig({ env: { CONSUL_PARTITION: 'p1', CONSUL_CAPATH: 'ca.d', CONSUL_HTTP_SSL_VERIFY: 'false' }, cwd: tmp });
    expect(config.consul).toMatchObject({ partition: 'p1', caPath: join(tmp, 'ca.d'), tlsVerify: false });
    expect(config.sources).toMatchObject({ 'consul.partition': 'env:CONSUL_PARTITION', 'consul.caPath': 'env:CONSUL_CAPATH', 'consul.tlsVerify': 'env:CONSUL_HTTP_SSL_VERIFY' });
    const code = loadConfig({ env: { CONSUL_HTTP_SSL_VERIFY: 'false' }, cwd: tmp, code: { consul: { tlsVerify: true, partition: 'p2' } } });
    expect(code.consul).toMatchObject({ tlsVerify: true, partition: 'p2' });
    const e = thrown(() => loadConfig({ env: { CONSUL_HTTP_SSL_VERIFY: 'maybe', CONSUL_HTTP_AUTH: ' ' }, cwd: tmp }));
    expect(e.issues).toEqual([
      { path: 'CONSUL_HTTP_AUTH', value: '[redacted]', message: 'expected user:password' },
      { path: 'CONSUL_HTTP_SSL_VERIFY', value: 'maybe', message: 'expected true or false' },
    ]);
  });

  it('warns about CONSUL_* variables inmesh does not read, with a suggestion', () => {
    const config = loadConfig({ env: { CONSUL_HTTP_ADRR: 'x', CONSUL_GRPC_ADDR: '127.0.0.1:8502', CONSUL_HTTP_ADDR: '127.0.0.1:8500' }, cwd: tmp });
    expect(config.warnings).toEqual([
      'CONSUL_HTTP_ADRR is not a Consul variable inmesh reads; it is ignored (did you mean CONSUL_HTTP_ADDR?)',
      'CONSUL_GRPC_ADDR is not a Consul variable inmesh reads; it is ignored',
    ]);
  });

  it('an unreadable or empty token file is an error naming the variable', () => {
    expect(() => loadConfig({ env: { CONSUL_HTTP_TOKEN_FILE: 'missing' }, cwd: tmp })).toThrow(
      `invalid environment: 1 problem\n  - CONSUL_HTTP_TOKEN_FILE: cannot read the token file: no such file (got "${join(tmp, 'missing')}")`,
    );
    writeFileSync(join(tmp, 'empty'), ' \n');
    expect(() => loadConfig({ env: { CONSUL_HTTP_TOKEN_FILE: 'empty' }, cwd: tmp })).toThrow(/CONSUL_HTTP_TOKEN_FILE: the token file's content: expected a non-empty ACL token/);
  });
});

describe('secrets never appear in output', () => {
  const TOKEN = 's3cr3t-token-value';
  const PASSWORD = 'hunter2-redis-pass';
  const FILE_TOKEN = 'file-secret-content';

  function captured(config: unknown): string {
    return [
      inspect(config, { depth: Infinity, showHidden: false }),
      format('%o', config),
      format('%s %j', config, config),
      JSON.stringify(config),
      String((config as { consul: { token: unknown } }).consul.token),
      explainConfig(config as Parameters<typeof explainConfig>[0]),
    ].join('\n');
  }

  it('redacts the token, the token file content and the Redis password', () => {
    const file = join(tmp, 'secret-token');
    writeFileSync(file, FILE_TOKEN);
    for (const env of [
      { CONSUL_HTTP_TOKEN: TOKEN, INMESH_REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:6379/0` },
      { CONSUL_HTTP_TOKEN_FILE: file, INMESH_REDIS_URL: `redis://user:${PASSWORD}@127.0.0.1:6379` },
    ]) {
      const config = loadConfig({ env, cwd: tmp });
      const out = captured(config);
      expect(out).not.toContain(TOKEN);
      expect(out).not.toContain(PASSWORD);
      expect(out).not.toContain(FILE_TOKEN);
      expect(out).toContain('[redacted]');
      expect(config.redisUrl?.reveal()).toContain(PASSWORD);
    }
  });

  it('errors about secret variables do not echo them', () => {
    const e = thrown(() => loadConfig({ env: { INMESH_REDIS_URL: `http://:${PASSWORD}@h:1`, CONSUL_HTTP_TOKEN: TOKEN, INMESH_TRACING: 'x' }, cwd: tmp }));
    expect(e.message).not.toContain(PASSWORD);
    expect(e.message).not.toContain(TOKEN);
    expect(JSON.stringify(e.issues)).not.toContain(PASSWORD);
    expect(e.issues[0]).toEqual({ path: 'INMESH_REDIS_URL', value: 'http://[userinfo]@h:1', message: 'expected a redis:// or rediss:// URL such as redis://:password@127.0.0.1:6379/0' });
    const code = thrown(() => loadConfig({ env: {}, cwd: tmp, code: { redisUrl: `mysql://u:${PASSWORD}@h` } }));
    expect(code.message).not.toContain(PASSWORD);
  });

  it('a Consul address with credentials is refused and never echoed (env and code)', () => {
    const refused = 'credentials in the Consul address are refused (they would be sent and logged as part of a URL): put the ACL token in CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE, basic auth in CONSUL_HTTP_AUTH';
    for (const [raw, shown] of [
      [`https://admin:${PASSWORD}@consul.internal:8501`, 'https://[userinfo]@consul.internal:8501'],
      [`http://${PASSWORD}@consul:8500`, 'http://[userinfo]@consul:8500'],
      [`http://:${PASSWORD}@consul`, 'http://[userinfo]@consul'],
      [`admin:${PASSWORD}@consul:8500`, '[userinfo]@consul:8500'],
    ] as const) {
      const e = thrown(() => loadConfig({ env: { CONSUL_HTTP_ADDR: raw }, cwd: tmp }));
      expect(e.issues).toEqual([{ path: 'CONSUL_HTTP_ADDR', value: shown, message: refused }]);
      expect(e.message).not.toContain(PASSWORD);
      expect(inspect(e, { depth: Infinity })).not.toContain(PASSWORD);
      const code = thrown(() => loadConfig({ env: {}, cwd: tmp, code: { consul: { address: raw } } }));
      expect(code.issues).toEqual([{ path: 'consul.address', value: shown, message: refused }]);
      expect(inspect(code, { depth: Infinity })).not.toContain(PASSWORD);
    }
    expect(parseConsulAddress('http://user@consul:8500')).toEqual({ ok: false, message: refused });
  });

  it('Secret prints as [redacted] everywhere', () => {
    const secret = new Secret('value-123');
    expect(String(secret)).toBe('[redacted]');
    // eslint-disable-next-line @typescript-eslint/restrict-template-expressions -- what a careless log line does
    expect(`${secret}`).toBe('[redacted]');
    expect(JSON.stringify({ secret })).toBe('{"secret":"[redacted]"}');
    expect(inspect(secret)).toBe('Secret([redacted])');
    expect(inspect({ nested: { secret } }, { depth: 5 })).not.toContain('value-123');
    expect(format('%s %o %O %j', secret, secret, secret, secret)).not.toContain('value-123');
    expect(secret.reveal()).toBe('value-123');
  });
});

describe('the env table', () => {
  it('has unique names, and every readable entry can be applied', () => {
    const names = ENV_VARIABLES.map((v) => v.name);
    expect(new Set(names).size).toBe(names.length);
    for (const variable of ENV_VARIABLES) {
      expect(variable.description.length, variable.name).toBeGreaterThan(10);
      if (variable.name.includes('<')) expect(variable.apply).toBeUndefined();
      else expect(variable.apply, variable.name).toBeTypeOf('function');
    }
    expect(names).toEqual(expect.arrayContaining(['INMESH_POLICY_FILE', 'INMESH_TIMEOUT_PER_TRY', 'CONSUL_HTTP_TOKEN_FILE', 'OTEL_SDK_DISABLED']));
  });

  it('every example value in the table is accepted', () => {
    for (const variable of ENV_VARIABLES) {
      if (variable.apply === undefined || variable.name.endsWith('_FILE')) continue;
      const result = variable.apply(variable.example, {});
      expect(result.ok, `${variable.name}=${variable.example}`).toBe(true);
    }
  });
});

describe('loadConfig: bounded reads of the policy and token files', () => {
  const special = mkdtempSync(join(tmpdir(), 'inmesh-special-'));
  afterAll(() => rmSync(special, { recursive: true, force: true }));
  const fifo = join(special, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const directory = join(special, 'dir');
  mkdirSync(directory);
  const bigPolicy = join(special, 'big.yaml');
  writeFileSync(bigPolicy, 'apiVersion: inmesh/v1\n');
  truncateSync(bigPolicy, 1024 * 1024 + 1); // 1 MiB + 1 byte
  const bigToken = join(special, 'big-token');
  writeFileSync(bigToken, 'x'.repeat(64 * 1024 + 1));
  const cases: [string, string][] = [
    ['/dev/zero', 'a device, expected a regular file'],
    [fifo, 'a FIFO (named pipe), expected a regular file'],
    [directory, 'a directory, expected a regular file'],
  ];

  it.each(cases)('INMESH_POLICY_FILE=%s is refused at once, naming the variable and the path', (file, reason) => {
    const e = thrown(() => loadConfig({ env: { INMESH_POLICY_FILE: file }, cwd: tmp }));
    expect(e.issues).toEqual([{ path: 'INMESH_POLICY_FILE', value: file, message: `cannot read the policy file: ${reason}` }]);
  });

  it.each(cases)('CONSUL_HTTP_TOKEN_FILE=%s is refused at once, naming the variable and the path', (file, reason) => {
    const e = thrown(() => loadConfig({ env: { CONSUL_HTTP_TOKEN_FILE: file }, cwd: tmp }));
    expect(e.code).toBe(ErrorCodes.INVALID_CONFIG);
    expect(e.issues).toEqual([{ path: 'CONSUL_HTTP_TOKEN_FILE', value: file, message: `cannot read the token file: ${reason}` }]);
  });

  it('a policy file over 1 MiB and a token file over 64 KiB are refused with the limit', () => {
    expect(thrown(() => loadConfig({ env: { INMESH_POLICY_FILE: bigPolicy }, cwd: tmp })).issues).toEqual([
      { path: 'INMESH_POLICY_FILE', value: bigPolicy, message: 'cannot read the policy file: 1048577 bytes is too large (the limit is 1 MiB)' },
    ]);
    expect(thrown(() => loadConfig({ code: { policyFile: bigPolicy }, env: {}, cwd: tmp })).issues[0]?.path).toBe('policyFile');
    expect(thrown(() => loadConfig({ env: { CONSUL_HTTP_TOKEN_FILE: bigToken }, cwd: tmp })).issues).toEqual([
      { path: 'CONSUL_HTTP_TOKEN_FILE', value: bigToken, message: 'cannot read the token file: 65537 bytes is too large (the limit is 64 KiB)' },
    ]);
    // At the limit exactly, the token is read.
    writeFileSync(bigToken, 't'.repeat(64 * 1024));
    expect(loadConfig({ env: { CONSUL_HTTP_TOKEN_FILE: bigToken }, cwd: tmp }).consul.token?.reveal()).toHaveLength(64 * 1024);
  });
});


describe('readPolicyFile: parsing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'inmesh-parse-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string): string => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  const bigDocument = (n: number) => ({
    apiVersion: 'inmesh/v1',
    upstreams: Object.fromEntries(
      Array.from({ length: n }, (_, i) => [`svc-${i}`, { discovery: { registry: 'consul' }, timeouts: { request: '3s' }, routes: [{ name: 'r', match: { pathPrefix: '/a' } }] }]),
    ),
  });

  it('a .json file is parsed as JSON, not YAML: YAML flow style is a JSON syntax error naming the file', () => {
    const file = write('flow.json', '{apiVersion: inmesh/v1}\n');
    const e = thrown(() => loadConfig({ env: { INMESH_POLICY_FILE: file }, cwd: tmp }));
    expect(e.issues).toEqual([{ path: 'line 1', value: '{apiVersion: inmesh/v1}', message: expect.stringMatching(new RegExp(`^JSON syntax error at ${file}:1:2: `)) as unknown }]);
    // The same text in a .yaml file is a valid document.
    expect(loadConfig({ env: { INMESH_POLICY_FILE: write('flow.yaml', '{apiVersion: inmesh/v1}\n') }, cwd: tmp }).policyFile).toBe(join(dir, 'flow.yaml'));
  });

  it('a 2,000-upstream JSON document loads within a bound generous for a loaded machine', () => {
    const file = write('big.json', JSON.stringify(bigDocument(2_000)));
    const started = performance.now();
    const config = loadConfig({ env: { INMESH_POLICY_FILE: file }, cwd: tmp });
    expect(performance.now() - started).toBeLessThan(5_000); // the measured time is in docs/benchmarks.md
    expect(Object.keys(config.policy.upstreams)).toHaveLength(2_000);
    expect(config.policy.upstreams['svc-1999']?.timeouts.request).toBe(3_000);
  });

  it('a duplicate key in a JSON file is refused with its path, line and column (JSON.parse would keep the last)', () => {
    const text = '{\n  "apiVersion": "inmesh/v1",\n  "upstreams": {\n    "orders": { "retries": { "attempts": 5 } },\n    "orders": {}\n  }\n}\n';
    const file = write('dup.json', text);
    const e = thrown(() => loadConfig({ env: { INMESH_POLICY_FILE: file }, cwd: tmp }));
    expect(e.issues).toEqual([
      {
        path: 'upstreams.orders',
        value: 'orders',
        message: `JSON syntax error at ${file}:5:5: the key "orders" appears twice in one object (keys must be unique: the first one's settings would be lost)`,
      },
    ]);
    // Keys compare as JSON.parse decodes them; deeper and inside arrays too.
    const escaped = write('dup-escaped.json', '{"apiVersion":"inmesh/v1","defaults":{"retries":{"attempts":1,"\\u0061ttempts":2}}}');
    expect(thrown(() => loadConfig({ env: { INMESH_POLICY_FILE: escaped }, cwd: tmp })).issues[0]).toMatchObject({ path: 'defaults.retries.attempts', value: 'attempts' });
    const inArray = write('dup-array.json', '{"upstreams":{"a":{"routes":[{"name":"x"},{"name":"y","name":"z"}]}}}');
    expect(thrown(() => loadConfig({ env: { INMESH_POLICY_FILE: inArray }, cwd: tmp })).issues[0]).toMatchObject({ path: 'upstreams.a.routes[1].name' });
    // The same key in sibling objects, and key-like strings as values, are fine.
    const siblings = write('siblings.json', '{"apiVersion":"inmesh/v1","upstreams":{"a":{"timeouts":{"request":"1s"}},"b":{"timeouts":{"request":"upstreams"}}}}');
    expect(() => loadConfig({ env: { INMESH_POLICY_FILE: siblings }, cwd: tmp })).toThrow(/upstreams\.b\.timeouts\.request/);
    const fine = write('fine.json', '{"apiVersion":"inmesh/v1","upstreams":{"a":{"timeouts":{"request":"1s"}},"b":{"timeouts":{"request":"2s"}}}}');
    expect(loadConfig({ env: { INMESH_POLICY_FILE: fine }, cwd: tmp }).policy.upstreams.b?.timeouts.request).toBe(2_000);
  });

  it('a duplicate key in a YAML file is refused too', () => {
    const file = write('dup.yaml', 'apiVersion: inmesh/v1\nupstreams:\n  orders: { retries: { attempts: 5 } }\n  orders: {}\n');
    expect(thrown(() => loadConfig({ env: { INMESH_POLICY_FILE: file }, cwd: tmp })).issues[0]?.message).toMatch(/^YAML syntax error at .*dup\.yaml:4:3: Map keys must be unique/);
  });

  it.each(['bom.json', 'bom.yaml'])('a UTF-8 byte order mark at the start of %s is skipped', (name) => {
    const file = write(name, `\uFEFF${JSON.stringify({ apiVersion: 'inmesh/v1', defaults: { timeouts: { request: '4s' } } })}`);
    expect(loadConfig({ env: { INMESH_POLICY_FILE: file }, cwd: tmp }).policy.defaults.timeouts.request).toBe(4_000);
  });

  it('a JSON syntax error gives the file, line and column from JSON.parse', () => {
    const file = write('bad.json', '{\n  "apiVersion": "inmesh/v1",\n  "defaults": { , }\n}\n');
    const e = thrown(() => loadConfig({ env: { INMESH_POLICY_FILE: file }, cwd: tmp }));
    expect(e.issues).toEqual([{ path: 'line 3', value: '"defaults": { , }', message: expect.stringMatching(new RegExp(`^JSON syntax error at ${file}:3:17: `)) as unknown }]);
  });

  it('more than 10,000 upstreams or 1,000 routes in one upstream are refused', () => {
    const names = Array.from({ length: 10_001 }, (_, i) => [`s${i}`, {}]);
    const file = write('many.json', JSON.stringify({ apiVersion: 'inmesh/v1', upstreams: Object.fromEntries(names) }));
    expect(thrown(() => loadConfig({ env: { INMESH_POLICY_FILE: file }, cwd: tmp })).issues).toEqual([
      { path: 'upstreams', value: '10001 upstreams', message: 'expected at most 10000 upstreams in one document' },
    ]);
    const routes = Array.from({ length: 1_001 }, (_, i) => ({ name: `r${i}` }));
    const many = write('routes.json', JSON.stringify({ apiVersion: 'inmesh/v1', upstreams: { a: { routes } } }));
    expect(thrown(() => loadConfig({ env: { INMESH_POLICY_FILE: many }, cwd: tmp })).issues[0]).toMatchObject({
      path: 'upstreams.a.routes',
      message: 'expected at most 1000 routes per upstream',
    });
  });

  it('a YAML alias bomb is a syntax error naming the file, not a raw ReferenceError', () => {
    const levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (const [prev, name] of [['a', 'b'], ['b', 'c'], ['c', 'd'], ['d', 'e']] as const) levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
    const file = write('bomb.yaml', `${levels.join('\n')}\n`);
    const e = thrown(() => loadConfig({ env: { INMESH_POLICY_FILE: file }, cwd: tmp }));
    expect(e.issues).toEqual([{ path: '', value: undefined, message: `YAML syntax error in ${file}: Excessive alias count indicates a resource exhaustion attack` }]);
  });

  it.each([
    ['deep.json', `{"apiVersion":"inmesh/v1","defaults":${'['.repeat(100)}${']'.repeat(100)}}`],
    ['deep.yaml', `apiVersion: inmesh/v1\ndefaults: ${'['.repeat(100)}${']'.repeat(100)}\n`],
    ['deeper.yaml', `defaults: ${'['.repeat(50_000)}${']'.repeat(50_000)}\n`],
  ])('excessive nesting (%s) gets its own message', (name, text) => {
    const file = write(name, text);
    const e = thrown(() => loadConfig({ env: { INMESH_POLICY_FILE: file }, cwd: tmp }));
    expect(e.issues).toEqual([{ path: '', value: undefined, message: 'the document is nested more than 64 levels deep; a policy needs fewer than ten' }]);
  });
});

describe('loadConfig: Consul variables from a careless environment', () => {
  it('CONSUL_HTTP_TOKEN with a control character is refused naming the variable, never printing the token', () => {
    const e = thrown(() => loadConfig({ env: { CONSUL_HTTP_TOKEN: 'secret-1\r\nX-Injected: 1' }, cwd: tmp }));
    expect(e.issues).toEqual([{ path: 'CONSUL_HTTP_TOKEN', value: '[redacted]', message: 'expected a non-empty ACL token without control characters' }]);
    expect(e.message).not.toContain('secret-1');
  });

  it.each(['[::1]:8500', 'http://[::1]:8500'])('CONSUL_HTTP_ADDR=%s is refused at load time with a clear message', (addr) => {
    expect(thrown(() => loadConfig({ env: { CONSUL_HTTP_ADDR: addr }, cwd: tmp })).issues).toEqual([
      { path: 'CONSUL_HTTP_ADDR', value: addr, message: 'an IPv6 literal address is not supported for the Consul agent: use an IPv4 address or a host name that resolves to it' },
    ]);
  });
});

describe('loadConfig: the token and host rules are the same from every source', () => {
  const controlMessage = 'expected a non-empty ACL token without control characters';

  it('a token file with a control character inside is refused like CONSUL_HTTP_TOKEN; one trailing newline is trimmed', () => {
    const file = join(tmp, 'two-lines');
    writeFileSync(file, 'abc\ndef\n');
    const e = thrown(() => loadConfig({ env: { CONSUL_HTTP_TOKEN_FILE: file }, cwd: tmp }));
    expect(e.issues).toEqual([{ path: 'CONSUL_HTTP_TOKEN_FILE', value: file, message: `the token file's content: ${controlMessage}` }]);
    expect(e.message).not.toContain('abc');
    writeFileSync(file, 'abc-def\n');
    expect(loadConfig({ env: { CONSUL_HTTP_TOKEN_FILE: file }, cwd: tmp }).consul.token?.reveal()).toBe('abc-def');
  });

  it.each([
    ['a string', 'a\r\nb'],
    ['a Secret', new Secret('a\r\nb')],
  ])('a token in code with a control character (%s) is refused, never printed', (_, token) => {
    const e = thrown(() => loadConfig({ env: {}, cwd: tmp, code: { consul: { token } } }));
    expect(e.issues).toEqual([{ path: 'consul.token', value: '[redacted]', message: controlMessage }]);
    expect(e.code).toBe(ErrorCodes.INVALID_CONFIG);
    expect(inspect(e, { depth: Infinity })).not.toMatch(/a\\r\\nb|a\r\nb/);
  });

  it('an empty token or auth in code is refused (leave the field out for none), not taken as unset', () => {
    const e = thrown(() => loadConfig({ env: { CONSUL_HTTP_TOKEN: 'env-token' }, cwd: tmp, code: { consul: { token: '', auth: new Secret(' ') } } }));
    expect(e.issues).toEqual([
      { path: 'consul.token', value: '[redacted]', message: 'expected a non-empty ACL token' },
      { path: 'consul.auth', value: '[redacted]', message: 'expected user:password' },
    ]);
    expect(loadConfig({ env: {}, cwd: tmp, code: { consul: { auth: 'u:p' } } }).consul.auth?.reveal()).toBe('u:p');
  });

  const ipv6 = 'an IPv6 literal address is not supported for the Consul agent: use an IPv4 address or a host name that resolves to it';
  it.each(['::1', '[::1]', 'fe80::1'])('consul.host %s in code is refused like CONSUL_HTTP_ADDR=[::1]:8500', (host) => {
    expect(thrown(() => loadConfig({ env: {}, cwd: tmp, code: { consul: { host } } })).issues).toEqual([{ path: 'consul.host', value: host, message: ipv6 }]);
  });

  it('a host longer than 253 characters is refused from the variable (both forms) and from code; 253 is accepted', () => {
    const long = 'a'.repeat(5_000);
    const tooLong = 'expected a host name of at most 253 characters, got 5000';
    for (const addr of [long, `${long}:8500`, `http://${long}:8500`])
      expect(thrown(() => loadConfig({ env: { CONSUL_HTTP_ADDR: addr }, cwd: tmp })).issues).toEqual([{ path: 'CONSUL_HTTP_ADDR', value: addr, message: tooLong }]);
    expect(thrown(() => loadConfig({ env: {}, cwd: tmp, code: { consul: { host: long } } })).issues).toEqual([{ path: 'consul.host', value: long, message: tooLong }]);
    expect(thrown(() => loadConfig({ env: {}, cwd: tmp, code: { consul: { address: long } } })).issues[0]?.message).toBe(tooLong);
    const longest = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    expect(longest).toHaveLength(253);
    expect(loadConfig({ env: { CONSUL_HTTP_ADDR: `${longest}:8500` }, cwd: tmp }).consul.host).toBe(longest);
    expect(loadConfig({ env: {}, cwd: tmp, code: { consul: { host: longest } } }).consul.host).toBe(longest);
  });

  it('a host with other characters is refused from code; names with _ and IPv4 addresses are accepted everywhere', () => {
    expect(thrown(() => loadConfig({ env: {}, cwd: tmp, code: { consul: { host: 'consul/x' } } })).issues).toEqual([
      { path: 'consul.host', value: 'consul/x', message: 'expected a host name (letters, digits, ".", "-", "_") or an IPv4 address' },
    ]);
    for (const host of ['consul_server', '10.0.0.5', 'consul.internal'])
      for (const options of [{ env: { CONSUL_HTTP_ADDR: `${host}:8500` } }, { env: { CONSUL_HTTP_ADDR: `http://${host}:8500` } }, { env: {}, code: { consul: { host } } }])
        expect(loadConfig({ ...options, cwd: tmp }).consul.host).toBe(host);
  });
});

describe('loadConfig: which variable wins is written down, not taken from the table order', () => {
  const cases = (file: string) =>
    [
      // [environment, the token loaded, its source label]
      [{ CONSUL_HTTP_TOKEN: 'env-token' }, 'env-token', 'env:CONSUL_HTTP_TOKEN'],
      [{ CONSUL_HTTP_TOKEN_FILE: file }, 'file-token', 'env:CONSUL_HTTP_TOKEN_FILE'],
      [{ CONSUL_HTTP_TOKEN: 'env-token', CONSUL_HTTP_TOKEN_FILE: file }, 'env-token', 'env:CONSUL_HTTP_TOKEN'],
    ] as const;

  function check(file: string): void {
    for (const [env, token, source] of cases(file)) {
      const config = loadConfig({ env, cwd: tmp });
      expect([config.consul.token?.reveal(), config.sources['consul.token']]).toEqual([token, source]);
    }
    // CONSUL_HTTP_SSL wins over the scheme of CONSUL_HTTP_ADDR, both ways.
    const on = loadConfig({ env: { CONSUL_HTTP_ADDR: 'http://consul:8501', CONSUL_HTTP_SSL: 'true' }, cwd: tmp });
    expect([on.consul.secure, on.sources['consul.secure'], on.sources['consul.host']]).toEqual([true, 'env:CONSUL_HTTP_SSL', 'env:CONSUL_HTTP_ADDR']);
    const off = loadConfig({ env: { CONSUL_HTTP_ADDR: 'https://consul:8501', CONSUL_HTTP_SSL: 'false' }, cwd: tmp });
    expect([off.consul.secure, off.sources['consul.secure']]).toEqual([false, 'env:CONSUL_HTTP_SSL']);
    const scheme = loadConfig({ env: { CONSUL_HTTP_ADDR: 'https://consul:8501' }, cwd: tmp });
    expect([scheme.consul.secure, scheme.sources['consul.secure'], scheme.consul.port]).toEqual([true, 'env:CONSUL_HTTP_ADDR', 8501]);
  }

  it('token from the variable or the file, SSL or the scheme: the same values and labels in the table order and reversed', () => {
    const file = join(tmp, 'order-token');
    writeFileSync(file, 'file-token\n');
    check(file);
    const table = ENV_VARIABLES as EnvVariable[];
    table.reverse();
    try {
      check(file);
    } finally {
      table.reverse();
    }
  });
});

