import { copyFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { defineConfig } from 'tsup';

// Two builds, because p-retry is ESM-only: in the CJS build esbuild's interop
// turns its default export into the module namespace, so we bundle it (and its
// one dependency) into the CJS output instead of leaving it external.
const entry = {
  index: 'src/index.ts',
  telemetry: 'src/telemetry/index.ts',
  // Framework adapters: their own entry points, so the core never loads fastify-plugin.
  express: 'src/server/express.ts',
  fastify: 'src/server/fastify.ts',
};

// The Node.js version check (src/internal/node-check.ts) must run before undici
// is loaded, which crashes on older Node.js. In CommonJS a banner `require` does
// that. In ES modules every import is evaluated before the importing module's
// own code, so each ESM entry becomes a two-line module that imports the check
// first and then re-exports the bundle, moved to `<name>.impl.js`.
function checkFirstInEsmEntries(): void {
  for (const name of Object.keys(entry)) {
    const code = readFileSync(`dist/${name}.js`, 'utf8').replace(
      `//# sourceMappingURL=${name}.js.map`,
      `//# sourceMappingURL=${name}.impl.js.map`,
    );
    writeFileSync(`dist/${name}.impl.js`, code);
    renameSync(`dist/${name}.js.map`, `dist/${name}.impl.js.map`);
    writeFileSync(`dist/${name}.js`, `import './node-check.js';\nexport * from './${name}.impl.js';\n`);
  }
}

export default defineConfig([
  {
    entry: { ...entry, 'node-check': 'src/internal/node-check.ts' },
    format: ['esm'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node22',
    platform: 'node',
    // The JSON Schema ships next to the code (package export `inmesh/schema.json`).
    onSuccess: () => {
      copyFileSync('src/policy/policy.schema.json', 'dist/policy.schema.json');
      checkFirstInEsmEntries();
      return Promise.resolve();
    },
  },
  {
    entry: { ...entry, 'node-check': 'src/internal/node-check.ts' },
    format: ['cjs'],
    banner: { js: "require('./node-check.cjs');" },
    dts: true,
    sourcemap: true,
    target: 'node22',
    platform: 'node',
    noExternal: ['p-retry', 'is-network-error'],
  },
  {
    // The `inmesh` command (bin); ESM only, keeps its #! line.
    entry: { cli: 'src/cli/main.ts' },
    format: ['esm'],
    sourcemap: true,
    target: 'node22',
    platform: 'node',
  },
]);
