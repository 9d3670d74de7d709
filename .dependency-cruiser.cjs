/**
 * The one direction of imports between the folders of src/, as drawn in
 * docs/architecture.md. A folder may import only itself and the folders listed
 * for it (each of those sits lower); anything else — a back-arrow — fails
 * `npm run lint`, and so does a cycle, also inside one folder.
 */
const LOWER = {
  'errors.ts': [],
  internal: ['errors.ts'],
  policy: ['errors.ts', 'internal'],
  core: ['policy', 'errors.ts', 'internal'],
  registry: ['core', 'policy', 'errors.ts', 'internal'],
  balancer: ['core', 'policy', 'errors.ts', 'internal'],
  resilience: ['core', 'policy', 'errors.ts', 'internal'],
  guard: ['resilience', 'core', 'policy', 'errors.ts', 'internal'],
  telemetry: ['core', 'policy', 'errors.ts', 'internal'],
  config: ['registry', 'policy', 'errors.ts', 'internal'],
  client: ['core', 'registry', 'balancer', 'resilience', 'telemetry', 'policy', 'errors.ts', 'internal'],
  server: ['core', 'registry', 'resilience', 'telemetry', 'config', 'policy', 'errors.ts', 'internal'],
  mesh: ['admin', 'guard', 'server', 'client', 'config', 'core', 'registry', 'balancer', 'resilience', 'telemetry', 'policy', 'errors.ts', 'internal'],
  admin: ['policy', 'errors.ts', 'internal'],
  export: ['config', 'registry', 'policy', 'errors.ts', 'internal'],
  cli: ['export', 'config', 'policy', 'errors.ts', 'internal'],
  'index.ts': ['export', 'guard', 'mesh', 'admin', 'server', 'client', 'config', 'core', 'registry', 'balancer', 'resilience', 'telemetry', 'policy', 'errors.ts', 'internal'],
};

const escape = (s) => s.replace(/[.]/g, '\\.');
const place = (name) => (name.endsWith('.ts') ? `${escape(name)}$` : `${name}/`);

module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      comment: 'A cycle of imports (also inside one folder): the code cannot be read bottom-up.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'nothing-imports-index',
      comment: 'src/index.ts is the public surface only.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^src/index\\.ts$' },
    },
  ],
  allowed: [
    { comment: 'packages and node built-ins', from: {}, to: { dependencyTypesNot: ['local'] } },
    { comment: 'type declarations of undici internals', from: {}, to: { path: '^src/types/' } },
    ...Object.entries(LOWER).map(([name, lower]) => ({
      comment: `${name} imports ${lower.length === 0 ? 'nothing of src' : lower.join(', ')}`,
      from: { path: `^src/${place(name)}` },
      to: { path: `^src/(${[name, ...lower].map(place).join('|')})` },
    })),
  ],
  allowedSeverity: 'error',
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
};
