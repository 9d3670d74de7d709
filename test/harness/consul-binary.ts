/**
 * Finds (or fetches) the Consul binary the integration tests run against.
 *
 * Order: `CONSUL_BIN`, then `consul` on the PATH, then the git-ignored cache
 * `.cache/consul/usr/bin/consul`. When none exists and apt is usable, Debian
 * bullseye's `consul` package (1.8.7) is downloaded into that cache WITHOUT
 * installing it and without touching the system's apt configuration: a private
 * sources list, lists dir and cache dir are passed through `-o` options, then
 * `dpkg -x` unpacks the static binary. Concurrent fetches (several vitest
 * workers, two test runs) are serialised with a lock file.
 *
 * When no binary can be had this throws an error saying how to provide one:
 * the Consul tests then fail; they never skip quietly.
 *
 * The suite targets Consul 1.8.7 (Debian bullseye; its API decoder refuses
 * unknown fields, which is what keeps our registration bodies honest). Another
 * version is used, with a loud warning, unless TEST_CONSUL_VERSION names it
 * (`TEST_CONSUL_VERSION=1.15.4`, or `any`).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { isExecutable, onPath } from './executables.ts';
import { withLock } from './pids.ts';

const run = promisify(execFile);

export const PROJECT_ROOT = resolve(import.meta.dirname, '..', '..');
export const CACHE_DIR = join(PROJECT_ROOT, '.cache', 'consul');
export const CACHED_BINARY = join(CACHE_DIR, 'usr', 'bin', 'consul');

export interface ConsulBinary {
  path: string;
  /** Where it came from: `CONSUL_BIN`, `PATH`, `cache` or `apt (fetched now)`. */
  source: string;
  /** `Consul v1.8.7` style first line of `consul version`. */
  version: string;
}

/** The version the suite is written against. */
export const EXPECTED_CONSUL_VERSION = '1.8.7';

export const HOW_TO = [
  'No Consul binary is available for the integration tests. Provide one of:',
  '  - CONSUL_BIN=/path/to/consul (any Consul 1.8+ binary; the suite targets 1.8.7)',
  '  - a `consul` on the PATH',
  `  - apt access to the Debian archive (deb.debian.org), so the harness can fetch bullseye's consul 1.8.7 into ${CACHED_BINARY}`,
  '    (it runs apt-get with a private sources list; nothing is installed and the system apt set-up is untouched)',
].join('\n');


async function versionOf(path: string): Promise<string> {
  const { stdout } = await run(path, ['version'], { timeout: 15_000 });
  return stdout.split('\n')[0]?.trim() ?? 'unknown';
}

/**
 * The warning for a binary that is not the expected version, or undefined when it
 * is (or when `accept` — TEST_CONSUL_VERSION — names its version, or is `any`).
 */
export function versionWarning(versionLine: string, accept: string | undefined = process.env.TEST_CONSUL_VERSION): string | undefined {
  const found = /v?(\d+\.\d+\.\d+\S*)/.exec(versionLine)?.[1];
  if (found === EXPECTED_CONSUL_VERSION) return undefined;
  if (accept !== undefined && (accept === 'any' || accept.replace(/^v/, '') === found)) return undefined;
  const bar = '!'.repeat(78);
  return [
    bar,
    `!! The Consul binary is ${found === undefined ? `of unknown version (${JSON.stringify(versionLine)})` : `v${found}`}, not v${EXPECTED_CONSUL_VERSION}.`,
    `!! The suite targets ${EXPECTED_CONSUL_VERSION} (Debian bullseye); other versions accept or refuse different fields,`,
    '!! so passing or failing tests may not mean what they say.',
    `!! Use ${EXPECTED_CONSUL_VERSION} (unset CONSUL_BIN and remove other consul binaries from the PATH to use the cached one),`,
    `!! or accept this one with TEST_CONSUL_VERSION=${found ?? 'any'} (or TEST_CONSUL_VERSION=any).`,
    bar,
  ].join('\n');
}

/** Prints the version warning (once per process and binary) to stderr. */
const warned = new Set<string>();
function warnAboutVersion(binary: ConsulBinary): ConsulBinary {
  const warning = versionWarning(binary.version);
  if (warning !== undefined && !warned.has(binary.path)) {
    warned.add(binary.path);
    console.warn(`${warning}\n(binary: ${binary.path}, from ${binary.source})`);
  }
  return binary;
}

/** Locates the binary, fetching it into the cache if needed; warns loudly unless it is the expected version. */
export async function findConsulBinary(): Promise<ConsulBinary> {
  return warnAboutVersion(await locate());
}

async function locate(): Promise<ConsulBinary> {
  const fromEnv = process.env.CONSUL_BIN;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`CONSUL_BIN=${fromEnv} is not an executable file.\n${HOW_TO}`);
    return { path: fromEnv, source: 'CONSUL_BIN', version: await versionOf(fromEnv) };
  }
  const fromPath = onPath('consul');
  if (fromPath) return { path: fromPath, source: 'PATH', version: await versionOf(fromPath) };
  if (isExecutable(CACHED_BINARY)) return { path: CACHED_BINARY, source: 'cache', version: await versionOf(CACHED_BINARY) };

  await withLock(join(PROJECT_ROOT, '.cache', 'consul.lock'), async () => {
    if (!isExecutable(CACHED_BINARY)) await fetchFromDebian();
  });
  if (!isExecutable(CACHED_BINARY)) throw new Error(HOW_TO);
  return { path: CACHED_BINARY, source: 'apt (fetched now into .cache/consul)', version: await versionOf(CACHED_BINARY) };
}

async function fetchFromDebian(): Promise<void> {
  if (!onPath('apt-get') || !onPath('dpkg')) throw new Error(`apt-get/dpkg not found.\n${HOW_TO}`);
  const keyring = '/usr/share/keyrings/debian-archive-keyring.gpg';
  if (!existsSync(keyring)) throw new Error(`${keyring} is missing (package debian-archive-keyring).\n${HOW_TO}`);

  const work = join(CACHE_DIR, 'apt');
  rmSync(work, { recursive: true, force: true });
  const lists = join(work, 'lists');
  const cache = join(work, 'cache');
  const parts = join(work, 'sources.list.d');
  const debs = join(work, 'debs');
  for (const d of [join(lists, 'partial'), join(cache, 'archives', 'partial'), parts, debs]) mkdirSync(d, { recursive: true });
  const sources = join(work, 'sources.list');
  writeFileSync(sources, `deb [signed-by=${keyring}] http://deb.debian.org/debian bullseye main\n`);

  const opts = [
    '-o', `Dir::Etc::SourceList=${sources}`,
    '-o', `Dir::Etc::SourceParts=${parts}`,
    '-o', `Dir::State::Lists=${lists}`,
    '-o', `Dir::Cache=${cache}`,
    '-o', 'Debug::NoLocking=1',
    '-o', 'APT::Sandbox::User=root',
  ];
  try {
    await run('apt-get', [...opts, '-q', 'update'], { timeout: 180_000, maxBuffer: 16 << 20 });
    await run('apt-get', [...opts, '-q', 'download', 'consul'], { cwd: debs, timeout: 180_000, maxBuffer: 16 << 20 });
    const { stdout } = await run('sh', ['-c', 'ls -1 *.deb'], { cwd: debs });
    const deb = stdout.trim().split('\n')[0];
    if (!deb) throw new Error('apt-get download consul produced no .deb');
    await run('dpkg', ['-x', join(debs, deb), CACHE_DIR], { timeout: 120_000 });
  } catch (err) {
    throw new Error(`fetching Debian's consul package failed: ${(err as Error).message}\n${HOW_TO}`, { cause: err });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

