/**
 * The built package (dist/) for tests that use it as a user would: built when
 * missing or older than src/, once at a time (test files run in parallel
 * workers; a lock directory keeps two builds from writing dist/ together),
 * and a temp directory where `inmesh` resolves to it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OUTPUTS = ['index.js', 'index.cjs', 'telemetry.cjs', 'express.cjs', 'fastify.cjs', 'cli.js', 'policy.schema.json'].map((f) => join(ROOT, 'dist', f));
const LOCK = join(ROOT, 'dist.build-lock');
const LOCK_WAIT_MS = 180_000;

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function fresh(): boolean {
  if (!OUTPUTS.every((f) => existsSync(f))) return false;
  const built = Math.min(...OUTPUTS.map((f) => statSync(f).mtimeMs));
  return built >= newestMtime(join(ROOT, 'src'));
}

/** Builds dist/ when it is missing or older than src/ (with this Node first on PATH). */
export function ensureBuild(): void {
  if (fresh()) return;
  const until = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      // Another worker builds: wait for it (bounded), then look again.
      if (Date.now() > until) throw new Error(`dist/ build lock ${LOCK} held for over ${LOCK_WAIT_MS} ms; remove it if no build runs`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try {
    if (fresh()) return;
    const build = spawnSync('npm', ['run', 'build'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` },
    });
    if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stdout}\n${build.stderr}`);
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/**
 * A new empty directory under the system temp directory (named `prefix` and a
 * random tail) in which `inmesh` resolves to this checkout's built package, as
 * in a user's project: dist/ is built first when stale. The caller removes it.
 */
export function packageUserDir(prefix: string): string {
  ensureBuild();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules', 'inmesh'), 'dir');
  return dir;
}
