import { copyFileSync } from 'node:fs';
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

export default defineConfig([
  {
    entry,
    format: ['esm'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node22',
    platform: 'node',
    // The JSON Schema ships next to the code (package export `inmesh/schema.json`).
    onSuccess: () => {
      copyFileSync('src/policy/policy.schema.json', 'dist/policy.schema.json');
      return Promise.resolve();
    },
  },
  {
    entry,
    format: ['cjs'],
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
