/**
 * TLS to the agent (own agent with an HTTPS listener that requires a client
 * certificate): CA, client certificate/key and server name from the
 * ConsulConnection shape, as CONSUL_CACERT / CONSUL_CLIENT_CERT /
 * CONSUL_CLIENT_KEY / CONSUL_TLS_SERVER_NAME give them.
 */
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.ts';
import { RegistryError } from '../../../src/errors.ts';
import { ConsulRegistry } from '../../../src/registry/consul.ts';
import { MAX_TLS_FILE_BYTES } from '../../../src/registry/consul-http.ts';
import { registerService } from '../../../src/registry/consul-register.ts';
import { findConsulBinary } from '../../harness/consul-binary.ts';
import { startConsulAgent, type ConsulAgent } from '../../harness/consul-agent.ts';
import { captureLogger, ids } from '../../harness/registry-helpers.ts';

const run = promisify(execFile);

describe('consul over TLS (own agent, mTLS on the HTTPS port)', () => {
  let dir: string;
  let agent: ConsulAgent;
  const pem = (name: string): string => join(dir, name);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'inmesh-consul-tls-'));
    const { path } = await findConsulBinary();
    await run(path, ['tls', 'ca', 'create'], { cwd: dir });
    await run(path, ['tls', 'cert', 'create', '-server', '-dc', 'dc1'], { cwd: dir });
    await run(path, ['tls', 'cert', 'create', '-client', '-dc', 'dc1'], { cwd: dir });
    agent = await startConsulAgent({
      tls: { caFile: pem('consul-agent-ca.pem'), certFile: pem('dc1-server-consul-0.pem'), keyFile: pem('dc1-server-consul-0-key.pem'), verifyIncoming: true },
    });
  });
  afterAll(async () => {
    await agent.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('registers and discovers over HTTPS with a client certificate and server name', async () => {
    const connection = {
      host: '127.0.0.1',
      port: agent.httpsPort!,
      secure: true,
      caFile: pem('consul-agent-ca.pem'),
      certFile: pem('dc1-client-consul-0.pem'),
      keyFile: pem('dc1-client-consul-0-key.pem'),
      tlsServerName: 'server.dc1.consul',
    };
    const reg = await registerService({ name: 'tls-svc', port: 18500, address: '127.0.0.1', connection, verifyIntervalMs: 0 });
    const registry = new ConsulRegistry({ connection, logger: captureLogger() });
    try {
      expect(ids(await registry.resolve({ service: 'tls-svc' }))).toEqual([reg.id]);
    } finally {
      await registry.close();
      await reg.deregister();
      reg.close();
    }
  });

  it('fails clearly without the client certificate, or with an unknown CA file', async () => {
    const noCert = new ConsulRegistry({
      connection: { host: '127.0.0.1', port: agent.httpsPort!, secure: true, caFile: pem('consul-agent-ca.pem') },
      logger: captureLogger(),
    });
    try {
      const error = await noCert.resolve({ service: 'tls-svc' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RegistryError);
      expect((error as Error).message).toMatch(/consul GET \/v1\/health\/service\/tls-svc at 127\.0\.0\.1:\d+ failed/);
    } finally {
      await noCert.close();
    }
    expect(() => new ConsulRegistry({ connection: { secure: true, caFile: pem('missing.pem') } })).toThrow(/cannot read the Consul CA file \(CONSUL_CACERT \/ caFile\) .*missing\.pem: no such file/);
  });

  it('CONSUL_CAPATH (a CA directory) verifies the agent; CONSUL_HTTP_SSL_VERIFY=false skips verification; neither fails', async () => {
    const caDir = join(dir, 'ca.d');
    mkdirSync(caDir, { recursive: true });
    copyFileSync(pem('consul-agent-ca.pem'), join(caDir, 'consul-agent-ca.pem'));
    const base = {
      CONSUL_HTTP_ADDR: `https://127.0.0.1:${agent.httpsPort!}`,
      CONSUL_CLIENT_CERT: pem('dc1-client-consul-0.pem'),
      CONSUL_CLIENT_KEY: pem('dc1-client-consul-0-key.pem'),
      CONSUL_TLS_SERVER_NAME: 'server.dc1.consul',
    };
    const resolveWith = async (env: Record<string, string>): Promise<unknown> => {
      const registry = new ConsulRegistry({ connection: loadConfig({ env: { ...base, ...env }, cwd: dir }).consul, logger: captureLogger() });
      try {
        return await registry.resolve({ service: 'nothing-here' }).catch((e: unknown) => e);
      } finally {
        await registry.close();
      }
    };
    expect(await resolveWith({ CONSUL_CAPATH: caDir })).toEqual([]);
    expect(await resolveWith({ CONSUL_HTTP_SSL_VERIFY: 'false' })).toEqual([]);
    const unverified = await resolveWith({});
    expect(unverified).toBeInstanceOf(RegistryError);
    expect((unverified as Error).message).toMatch(/failed: (SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|DEPTH_ZERO_SELF_SIGNED_CERT)/);
    const empty = join(dir, 'empty.d');
    mkdirSync(empty, { recursive: true });
    expect(() => new ConsulRegistry({ connection: { secure: true, caPath: empty } })).toThrow(`the Consul CA directory (CONSUL_CAPATH / caPath) ${empty} holds no *.pem or *.crt file`);
  });

  it('reads only regular TLS files of at most 1 MiB: /dev/zero, a FIFO and a directory are refused at once, naming the setting and the path', () => {
    const special = join(dir, 'special');
    mkdirSync(special, { recursive: true });
    const fifo = join(special, 'fifo.pem');
    execFileSync('mkfifo', [fifo]);
    const directory = join(special, 'dir.pem');
    mkdirSync(directory);
    const big = join(special, 'big.pem');
    writeFileSync(big, '');
    truncateSync(big, MAX_TLS_FILE_BYTES + 1);
    const cases: [string, string][] = [
      ['/dev/zero', 'a device, expected a regular file'],
      [fifo, 'a FIFO (named pipe), expected a regular file'],
      [directory, 'a directory, expected a regular file'],
      [big, '1048577 bytes is too large (the limit is 1 MiB)'],
    ];
    const settings: [string, string][] = [
      ['caFile', 'CA file (CONSUL_CACERT / caFile)'],
      ['certFile', 'client certificate (CONSUL_CLIENT_CERT / certFile)'],
      ['keyFile', 'client key (CONSUL_CLIENT_KEY / keyFile)'],
    ];
    for (const [field, setting] of settings) {
      for (const [file, reason] of cases) {
        expect(() => new ConsulRegistry({ connection: { secure: true, [field]: file } })).toThrow(new RegistryError(`cannot read the Consul ${setting} ${file}: ${reason}`));
      }
    }
  });

  it('CONSUL_CAPATH: only regular files of the directory are read; a FIFO, a directory or a link to a device named *.pem is never read', async () => {
    const caDir = join(dir, 'ca-special.d');
    mkdirSync(caDir, { recursive: true });
    copyFileSync(pem('consul-agent-ca.pem'), join(caDir, 'consul-agent-ca.pem'));
    execFileSync('mkfifo', [join(caDir, 'fifo.pem')]);
    mkdirSync(join(caDir, 'sub.crt'));
    const connection = {
      host: '127.0.0.1',
      port: agent.httpsPort!,
      secure: true,
      caPath: caDir,
      certFile: pem('dc1-client-consul-0.pem'),
      keyFile: pem('dc1-client-consul-0-key.pem'),
      tlsServerName: 'server.dc1.consul',
    };
    const registry = new ConsulRegistry({ connection, logger: captureLogger() });
    try {
      expect(await registry.resolve({ service: 'nothing-here' })).toEqual([]);
    } finally {
      await registry.close();
    }
    symlinkSync('/dev/zero', join(caDir, 'zero.pem'));
    expect(() => new ConsulRegistry({ connection })).toThrow(
      new RegistryError(`cannot read the Consul CA directory (CONSUL_CAPATH / caPath) ${join(caDir, 'zero.pem')}: a device, expected a regular file`),
    );
  });
});
