/**
 * Exporting an inmesh policy to Istio and Consul, for services that run
 * behind a sidecar mesh, or to move there later (docs/policy.md, and the
 * field mappings in docs/policy-reference.md).
 *
 * It loads examples/canary-split.yaml (or the file given), and for each target
 * writes the target's documents into `<out>/<target>/` and prints the report:
 * every field of the policy as exact, lossy or dropped in that target.
 *
 *   npx node --experimental-transform-types examples/export-policy.ts [policy.yaml] [out-dir]
 *
 * The command line does the same, one target at a time; it exits 2 when a
 * field is lossy or dropped unless --allow-lossy is given:
 *
 *   npx inmesh export --to istio --out ./export/istio examples/canary-split.yaml
 *   npx inmesh export --to consul --out ./export/consul examples/canary-split.yaml
 *
 * (test/integration/examples.test.ts runs it.)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportPolicy, formatReport, loadConfig, renderFile, type ExportTarget } from '../src/index.ts';

const file = process.argv[2] ?? fileURLToPath(new URL('canary-split.yaml', import.meta.url));
const out = process.argv[3] ?? 'export';

// The policy as the mesh would resolve it from this file alone (no environment variables).
const { policy } = loadConfig({ code: { policyFile: file }, env: {} });

for (const target of ['istio', 'consul'] satisfies ExportTarget[]) {
  const { files, report } = exportPolicy(target, [{ source: file, policy }]);
  const dir = join(out, target);
  mkdirSync(dir, { recursive: true });
  for (const f of files) writeFileSync(join(dir, f.name), renderFile(f));
  console.log(formatReport(report));
  console.log(`wrote ${String(files.length)} file(s) to ${dir}: ${files.map((f) => f.name).join(', ')}\n`);
}
