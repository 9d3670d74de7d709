import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidPolicyError } from '../../../src/errors.ts';
import { FileRegistry, MAX_ENDPOINTS_FILE_BYTES } from '../../../src/registry/file.ts';
import { captureLogger, EndpointRecorder, ids } from '../../harness/registry-helpers.ts';

describe('FileRegistry', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  function tempDir(): string {
    const dir = mkdtempSync(join(tmpdir(), 'inmesh-file-registry-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }
  function open(path: string, logger = captureLogger()): FileRegistry {
    const r = new FileRegistry({ path, logger, debounceMs: 20 });
    cleanups.push(() => r.close());
    return r;
  }

  it('reads YAML and JSON, strings and objects', async () => {
    const dir = tempDir();
    const y = join(dir, 'endpoints.yaml');
    writeFileSync(y, 'services:\n  orders:\n    - 127.0.0.1:8080\n    - { address: 127.0.0.1, port: 8081, tags: [v2], meta: { zone: a }, weight: 2 }\n');
    const ry = open(y);
    const got = await ry.resolve({ service: 'orders' });
    expect(ids(got)).toEqual(['127.0.0.1:8080', '127.0.0.1:8081']);
    expect(got[1]).toMatchObject({ weight: 2, zone: 'a', tags: ['v2'] });
    const j = join(dir, 'endpoints.json');
    writeFileSync(j, JSON.stringify({ services: { users: ['[::1]:9000'] } }));
    expect(ids(await open(j).resolve({ service: 'users' }))).toEqual(['[::1]:9000']);
  });

  it('names the file and the bad entries when the first load fails', () => {
    const dir = tempDir();
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, 'services:\n  orders:\n    - 127.0.0.1:8080\n    - { address: 169.254.169.254, port: 80 }\n    - { address: 127.0.0.1, port: 0 }\n    - { address: 127.0.0.1, port: 1, colour: red }\n');
    let error: unknown;
    try {
      new FileRegistry({ path: f, watch: false });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidPolicyError);
    const e = error as InvalidPolicyError;
    expect(e.message).toContain(`endpoints file ${f}`);
    expect(e.issues.map((i) => i.path)).toEqual(['services.orders[1]', 'services.orders[2]', 'services.orders[3]']);
    expect(e.message).toMatch(/services\.orders\[1\]: a cloud metadata address/);
    expect(e.message).toMatch(/services\.orders\[3\]: unknown field "colour"/);
    expect(() => new FileRegistry({ path: join(dir, 'missing.yaml') })).toThrow(/missing\.yaml.*\n.*cannot read the file: no such file/);
    writeFileSync(f, 'services: [');
    expect(() => new FileRegistry({ path: f, watch: false })).toThrow(/not valid YAML/);
  });

  it('reads only a regular file of at most 1 MiB: /dev/zero, a FIFO, a directory and a larger file are refused at once', () => {
    const dir = tempDir();
    const fifo = join(dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    const directory = join(dir, 'dir.yaml');
    mkdirSync(directory);
    const big = join(dir, 'big.yaml');
    writeFileSync(big, 'services: {}\n');
    truncateSync(big, MAX_ENDPOINTS_FILE_BYTES + 1);
    expect(MAX_ENDPOINTS_FILE_BYTES).toBe(1024 * 1024);
    const cases: [string, string][] = [
      ['/dev/zero', 'a device, expected a regular file'],
      [fifo, 'a FIFO (named pipe), expected a regular file'],
      [directory, 'a directory, expected a regular file'],
      [big, '1048577 bytes is too large (the limit is 1 MiB)'],
    ];
    for (const [path, reason] of cases) {
      let error: unknown;
      try {
        new FileRegistry({ path, watch: false });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(InvalidPolicyError);
      expect((error as InvalidPolicyError).source).toBe(`endpoints file ${path}`);
      expect((error as InvalidPolicyError).issues).toEqual([{ path: '', value: path, message: `cannot read the file: ${reason}` }]);
    }
  });

  it('a reload that finds a FIFO in place of the file fails at once and keeps the last good set', async () => {
    const dir = tempDir();
    const f = join(dir, 'endpoints.yaml');
    writeFileSync(f, 'services:\n  orders: [127.0.0.1:8080]\n');
    const logger = captureLogger();
    const registry = new FileRegistry({ path: f, logger, watch: false });
    cleanups.push(() => registry.close());
    const errors: string[] = [];
    const rec = new EndpointRecorder();
    registry.subscribe({ service: 'orders' }, rec.listener, { onError: (e) => errors.push(e.message) });
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    renameSync(fifo, f);
    await registry.reload();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('cannot read the file: a FIFO (named pipe), expected a regular file');
    expect(ids(await registry.resolve({ service: 'orders' }))).toEqual(['127.0.0.1:8080']);
  });

  it('picks up a change (in place and by rename-replace), keeps the last good set on a broken version', async () => {
    const dir = tempDir();
    const f = join(dir, 'endpoints.yaml');
    writeFileSync(f, 'services:\n  orders: [127.0.0.1:1]\n');
    const logger = captureLogger();
    const r = open(f, logger);
    const rec = new EndpointRecorder();
    const errors: Error[] = [];
    const sub = r.subscribe({ service: 'orders' }, rec.listener, { onError: (e) => errors.push(e) });
    cleanups.push(() => sub.close());
    await rec.until((e) => ids(e).join() === '127.0.0.1:1');

    // In place.
    writeFileSync(f, 'services:\n  orders: [127.0.0.1:1, 127.0.0.1:2]\n');
    await rec.until((e) => e.length === 2, 5000, 'the in-place edit');

    // Broken: last good set kept, error names file and entry, staleness grows.
    writeFileSync(f, 'services:\n  orders: [127.0.0.1:1, "127.0.0.1:99999"]\n');
    await expect.poll(() => errors.length, { timeout: 5000 }).toBeGreaterThan(0);
    expect(errors[0]!.message).toContain(f);
    expect(errors[0]!.message).toMatch(/services\.orders\[1\]: port must be an integer 1-65535.*\(got "127\.0\.0\.1:99999"\)/);
    expect(logger.text()).toContain('keeping the last good set');
    expect(ids(sub.endpoints)).toEqual(['127.0.0.1:1', '127.0.0.1:2']);
    await expect.poll(() => sub.staleness(), { timeout: 2000 }).toBeGreaterThan(0);

    // Editor-style: write a temp file and rename it over the original.
    const tmp = join(dir, '.endpoints.yaml.swp');
    writeFileSync(tmp, 'services:\n  orders: [127.0.0.1:3]\n');
    renameSync(tmp, f);
    await rec.until((e) => ids(e).join() === '127.0.0.1:3', 5000, 'the renamed-over file');
    expect(sub.staleness()).toBe(0);
    // And the watcher still follows the new inode afterwards.
    writeFileSync(f, 'services:\n  orders: [127.0.0.1:4]\n');
    await rec.until((e) => ids(e).join() === '127.0.0.1:4', 5000, 'an edit after the rename');
    // Only actual changes were emitted.
    expect(rec.history.map((h) => ids(h.endpoints).join())).toEqual(['127.0.0.1:1', '127.0.0.1:1,127.0.0.1:2', '127.0.0.1:3', '127.0.0.1:4']);
  });
});
