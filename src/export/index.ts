/**
 * export/: writes a resolved policy as the documents of a sidecar mesh
 * (Istio, Consul config entries, Gateway API, Envoy, Dapr), with a report of
 * what became of every field. `exportPolicy` is the one driver every target
 * goes through: merge the callers (refusing conflicts), run the target's
 * exporter, complete the report.
 */
import { ExportError } from '../errors.ts';
import { describeValue } from '../internal/describe.ts';
import { UPSTREAM_NAME_PATTERN } from '../policy/schema.ts';
import { daprExporter } from './dapr.ts';
import { envoyExporter } from './envoy.ts';
import { consulExporter } from './consul.ts';
import { policyFields } from './fields.ts';
import { gatewayApiExporter } from './gateway-api.ts';
import { mergeCallers } from './merge.ts';
import { istioExporter } from './istio.ts';
import { createReporter } from './report.ts';
import { EXPORT_TARGETS, type ExportCaller, type ExportOptions, type ExportResult, type ExportTarget, type TargetExporter } from './types.ts';

export { formatReport, reportJson } from './report.ts';
export { renderFile } from './render.ts';
export { policyFields } from './fields.ts';
export * from './types.ts';

/** A Kubernetes namespace name: an RFC 1123 label (what the API server accepts in metadata.namespace). */
const K8S_NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** The exporter of each target; a target with none yet is refused by name. */
const EXPORTERS: Partial<Record<ExportTarget, TargetExporter>> = {
  dapr: daprExporter,
  envoy: envoyExporter,
  'gateway-api': gatewayApiExporter,
  istio: istioExporter,
  consul: consulExporter,
};

export function isExportTarget(value: string): value is ExportTarget {
  return (EXPORT_TARGETS as readonly string[]).includes(value);
}

/** The exporter of a target, or an ExportError naming it. */
export function exporterFor(target: ExportTarget): TargetExporter {
  const exporter = EXPORTERS[target];
  if (exporter === undefined) throw new ExportError(`export to ${target} is not available yet`);
  return exporter;
}

export function exportPolicy(target: ExportTarget, callers: readonly ExportCaller[], options: ExportOptions = {}): ExportResult {
  const exporter = exporterFor(target);
  const targetVersion = options.targetVersion ?? exporter.versions[0] ?? '';
  if (!exporter.versions.includes(targetVersion)) {
    throw new ExportError(`--target-version: ${target} ${JSON.stringify(targetVersion)} is not supported; supported: ${exporter.versions.join(', ')}`);
  }
  if (options.service !== undefined && !new RegExp(UPSTREAM_NAME_PATTERN).test(options.service)) {
    throw new ExportError(`--service: expected a service name of letters, digits, ".", "_" and "-", as an upstream's (got ${describeValue(options.service)})`);
  }
  if (options.namespace !== undefined && !K8S_NAMESPACE.test(options.namespace)) {
    throw new ExportError(`--namespace: expected a Kubernetes namespace (lower-case letters, digits and "-", at most 63) (got ${describeValue(options.namespace)})`);
  }
  if (options.service !== undefined && callers.length !== 1) {
    throw new ExportError(`--service names the caller's own service, so it takes exactly one policy (got ${callers.length})`);
  }
  const policy = mergeCallers(callers, { defaults: exporter.writesDefaults === true, resources: exporter.writesResources === true });
  const report = createReporter(target, targetVersion, policyFields(policy));
  if (options.service === undefined) {
    report.droppedUnder('inbound', "inbound policy governs the caller's own service: give --service NAME (with one policy) to export it");
  }
  const files = exporter.export(
    { policy, callers, targetVersion, service: options.service, namespace: options.namespace ?? 'default' },
    report,
  );
  return { files, report: report.finish(files, callers.map((c) => c.source)) };
}
