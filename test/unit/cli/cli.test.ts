import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCli } from '../../../src/cli/index.ts';
import { POLICY_DEFAULTS } from '../../../src/policy/defaults.ts';
import { formatDuration } from '../../../src/policy/duration.ts';
import { VERSION } from '../../../src/internal/version.ts';

function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = runCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const dir = mkdtempSync(join(tmpdir(), 'inmesh-cli-'));
const good = join(dir, 'good.yaml');
writeFileSync(
  good,
  ['apiVersion: inmesh/v1', 'upstreams:', '  orders:', '    timeouts: { request: 3s }', '    retries: { attempts: 1 }'].join('\n'),
);
const bad = join(dir, 'bad.yaml');
writeFileSync(bad, ['apiVersion: inmesh/v1', 'defaults:', '  retries: { atempts: 3 }'].join('\n'));

describe('inmesh CLI', () => {
  it('validate accepts a good file', () => {
    const r = run('validate', good);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`${good}: valid`);
  });

  it('validate rejects a bad file with the field, the value and a suggestion', () => {
    const r = run('validate', good, bad);
    expect(r.code).toBe(1);
    expect(r.out).toBe(`${good}: valid`);
    expect(r.err).toContain('defaults.retries.atempts');
    expect(r.err).toContain("did you mean 'attempts'");
  });

  it('validate names a missing file', () => {
    const r = run('validate', join(dir, 'nope.yaml'));
    expect(r.code).toBe(1);
    expect(r.err).toContain('nope.yaml');
  });

  it.each(['/dev/zero', 'fifo', '.'])('validate refuses %s (not a regular file) at once, naming the argument and the path', (name) => {
    const file = name === 'fifo' ? join(dir, 'fifo') : name === '.' ? dir : name;
    if (name === 'fifo') execFileSync('mkfifo', [file]);
    const r = run('validate', file);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`- file argument: cannot read the policy file: a (device|FIFO \\(named pipe\\)|directory), expected a regular file \\(got "${file}"\\)`));
  });

  it('explain prints the resolved policy with defaults applied', () => {
    const r = run('explain', good);
    expect(r.code).toBe(0);
    const orders = (parse(r.out) as { upstreams: Record<string, Record<string, Record<string, unknown>>> }).upstreams.orders!;
    // From the file:
    expect(orders.timeouts).toMatchObject({ request: '3s' });
    expect(orders.retries).toMatchObject({ attempts: 1 });
    // Not in the file: the built-in defaults, written back as the document would write them.
    expect(orders.timeouts).toMatchObject({
      connect: formatDuration(POLICY_DEFAULTS.timeouts.connect),
      perTry: formatDuration(POLICY_DEFAULTS.timeouts.perTry),
      idle: formatDuration(POLICY_DEFAULTS.timeouts.idle),
    });
    expect(orders.retries).toMatchObject({ retriableStatusCodes: [...POLICY_DEFAULTS.retries.retriableStatusCodes], idempotentOnly: POLICY_DEFAULTS.retries.idempotentOnly });
    expect(orders.loadBalancer).toMatchObject({ policy: POLICY_DEFAULTS.loadBalancer.policy });
    expect(orders.outlierDetection).toMatchObject({ consecutive5xx: POLICY_DEFAULTS.outlierDetection.consecutive5xx });
    expect(orders.discovery).toMatchObject({ service: 'orders', registry: POLICY_DEFAULTS.discovery.registry });
    expect(POLICY_DEFAULTS.timeouts.connect).toBe(5_000); // so the check above is not vacuous: "5s"
    expect(orders.timeouts?.connect).toBe('5s');
  });

  it('schema prints the JSON Schema of the document', () => {
    const r = run('schema');
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.out);
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.properties.apiVersion).toBeDefined();
  });

  it('--version prints the package version', () => {
    expect(run('--version')).toEqual({ code: 0, out: VERSION, err: '' });
  });

  it('usage errors exit 2', () => {
    const extra = run('schema', 'extra');
    expect(extra.code).toBe(2);
    expect(extra.err).toContain("schema takes no arguments, got 'extra'");
    expect(run('frobnicate').code).toBe(2);
    expect(run('explain').code).toBe(2);
    expect(run().code).toBe(2);
  });

  it('export: exit 2 means lossy or dropped only, so its usage errors exit 1 like every other error', () => {
    expect(run('export', '--to', 'consul', good).code).toBe(2);
    expect(run('export', '--to', 'consul', '--allow-lossy', good).code).toBe(0);
    for (const argv of [
      ['--to', 'consul', '--bogus', good],
      ['--to', 'consul', '--allow-lossy', '--bogus', good],
      ['--to', 'nope', good],
      ['--to'],
      [good],
      ['--to', 'consul'],
      ['--to', 'istio', '--apply', '--allow-lossy', good],
      ['--to', 'consul', '--allow-lossy', '--target-version', '9.9', good],
      ['--to', 'consul', '--allow-lossy', bad],
      ['--to', 'istio', '--allow-lossy', '--namespace', 'Bad_NS!', good],
      ['--to', 'istio', '--allow-lossy', '--service', 'bad svc', good],
      ['--to', 'consul', '--allow-lossy', '--service', '', good],
    ]) {
      const r = run('export', ...argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.err, argv.join(' ')).not.toBe('');
    }
    expect(run('export', '--to', 'consul', '--bogus', good).err).toContain("Unknown option '--bogus'");
    expect(run('export', '--to', 'istio', '--namespace', 'Bad_NS!', good).err).toContain('--namespace: expected a Kubernetes namespace');
    expect(run('export', '--to', 'istio', '--namespace', 'Bad_NS!', good).err).toContain('(got "Bad_NS!")');
    expect(run('export', '--to', 'istio', '--service', 'bad svc', good).err).toContain('--service: expected a service name');
    expect(run('export', '--to', 'istio', '--allow-lossy', '--namespace', 'shop', '--service', 'checkout', good).code).toBe(0);
  });
});
