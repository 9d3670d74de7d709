/**
 * The contract between the export driver (index.ts) and one exporter per
 * target. An exporter turns the resolved policy into the target's documents and
 * says, for every field it was given, whether the target now has it exactly,
 * approximately (`lossy`) or not at all (`dropped`). The driver fills in any
 * field an exporter did not mention as dropped, so nothing is skipped silently.
 */
import type { ResolvedPolicy } from '../policy/types.ts';

export const EXPORT_TARGETS = ['istio', 'consul', 'gateway-api', 'envoy', 'dapr'] as const;
export type ExportTarget = (typeof EXPORT_TARGETS)[number];

export type FieldVerdict = 'exact' | 'lossy' | 'dropped';

/** What became of one field of the resolved policy. */
export interface ReportEntry {
  /** Dotted path in the resolved policy, e.g. `upstreams.orders.retries.attempts` (see `policyFields`). */
  readonly field: string;
  /** The field's resolved value. */
  readonly value: unknown;
  readonly verdict: FieldVerdict;
  /** Why the target has it only approximately or not at all; undefined when exact. */
  readonly why: string | undefined;
  /** Where it went: output file and the path inside it; undefined when dropped. */
  readonly to: string | undefined;
}

/** One output file. */
export interface ExportedFile {
  /** File name, relative to the output directory. */
  readonly name: string;
  /** The documents of the file, in the order the target needs them applied. */
  readonly documents: readonly unknown[];
  /** yaml: one YAML document per entry, separated by `---`; json: one document, or a JSON array when several. */
  readonly format: 'yaml' | 'json';
  /** Whom the file's settings apply to, in words (every caller of a service, one namespace, one workload…). */
  readonly scope: string;
}

/** One caller's policy, as given to `export`. */
export interface ExportCaller {
  /** Where the policy came from (a file path), used in reports and conflict errors. */
  readonly source: string;
  readonly policy: ResolvedPolicy;
}

export interface ExportOptions {
  /** Version of the target to write for; each exporter has a default (its `defaultVersion`). */
  readonly targetVersion?: string;
  /**
   * Name of the service the caller itself is (needed to export `inbound`, which
   * governs the caller's own service; without it, inbound fields are dropped).
   * Only with one caller.
   */
  readonly service?: string;
  /** Kubernetes namespace of the generated resources (Istio, Gateway API, Dapr); default `default`. */
  readonly namespace?: string;
}

/** What an exporter receives. */
export interface ExportInput {
  /** The callers' policies merged: every upstream once (conflicts were refused before). */
  readonly policy: ResolvedPolicy;
  readonly callers: readonly ExportCaller[];
  readonly targetVersion: string;
  readonly service: string | undefined;
  readonly namespace: string;
}

/** How an exporter records what became of each field. `field` is a path from `policyFields`. */
export interface Reporter {
  exact(field: string, to: string): void;
  lossy(field: string, why: string, to: string): void;
  dropped(field: string, why: string): void;
  /**
   * Records the same verdict for every field under `prefix` that has not been
   * reported yet (e.g. a whole `rateLimit` block the target cannot express).
   */
  droppedUnder(prefix: string, why: string): void;
}

export interface TargetExporter {
  readonly target: ExportTarget;
  /** Versions this exporter can write for; the first is the default. */
  readonly versions: readonly string[];
  export(input: ExportInput, report: Reporter): readonly ExportedFile[];
  /**
   * The exporter writes the policy's `defaults` block itself (Dapr's default
   * policies), so several callers must agree on it. Elsewhere each upstream
   * carries the values it inherits and `defaults` is not written, so callers
   * with different defaults export together. @default false
   */
  readonly writesDefaults?: boolean;
  /** The exporter writes `resources` (Dapr's component targets), so callers naming the same resource must agree on it. @default false */
  readonly writesResources?: boolean;
  /** Writes the files to a running instance of the target (`inmesh export --apply`); only where the target has an API for it. */
  apply?(files: readonly ExportedFile[], env: NodeJS.ProcessEnv): Promise<void>;
}

export interface ExportReport {
  readonly target: ExportTarget;
  readonly targetVersion: string;
  readonly callers: readonly string[];
  /** Scope of each output file. */
  readonly files: readonly { readonly name: string; readonly scope: string }[];
  readonly fields: readonly ReportEntry[];
  readonly exact: number;
  readonly lossy: number;
  readonly dropped: number;
}

export interface ExportResult {
  readonly files: readonly ExportedFile[];
  readonly report: ExportReport;
}
