/**
 * The export report: what became of every field. The reporter refuses a field
 * that is not in the policy (an exporter naming a path wrongly would otherwise
 * pass unnoticed) and a field reported twice; `finish` marks every field no
 * one mentioned as dropped.
 */
import { ExportError } from '../errors.ts';
import type { ExportedFile, ExportReport, ExportTarget, FieldVerdict, ReportEntry, Reporter } from './types.ts';

export interface ReportBuilder extends Reporter {
  finish(files: readonly ExportedFile[], callers: readonly string[]): ExportReport;
}

/**
 * `report` for the fields the policy sets only: a field it does not carry (an
 * unset hashOn, no budget, an absent optional block) is passed over, as there
 * is nothing to report of it. Whole prefixes (droppedUnder) go through.
 */
export function scopedReporter(report: Reporter, fields: ReadonlyMap<string, unknown>): Reporter {
  return {
    exact: (field, to) => fields.has(field) && report.exact(field, to),
    lossy: (field, why, to) => fields.has(field) && report.lossy(field, why, to),
    dropped: (field, why) => fields.has(field) && report.dropped(field, why),
    droppedUnder: (prefix, why) => report.droppedUnder(prefix, why),
  };
}

export function createReporter(target: ExportTarget, targetVersion: string, fields: ReadonlyMap<string, unknown>): ReportBuilder {
  const entries = new Map<string, ReportEntry>();

  const record = (field: string, verdict: FieldVerdict, why: string | undefined, to: string | undefined): void => {
    if (!fields.has(field)) throw new ExportError(`the ${target} exporter reported '${field}', which is not a field of the policy`);
    if (entries.has(field)) throw new ExportError(`the ${target} exporter reported '${field}' twice`);
    entries.set(field, { field, value: fields.get(field), verdict, why, to });
  };

  return {
    exact: (field, to) => record(field, 'exact', undefined, to),
    lossy: (field, why, to) => record(field, 'lossy', why, to),
    dropped: (field, why) => record(field, 'dropped', why, undefined),
    droppedUnder(prefix, why) {
      for (const field of fields.keys()) {
        if ((field === prefix || field.startsWith(`${prefix}.`)) && !entries.has(field)) record(field, 'dropped', why, undefined);
      }
    },
    finish(files, callers) {
      const list: ReportEntry[] = [];
      for (const [field, value] of fields) {
        list.push(entries.get(field) ?? { field, value, verdict: 'dropped', why: `the ${target} exporter does not map this field`, to: undefined });
      }
      const count = (v: FieldVerdict): number => list.filter((e) => e.verdict === v).length;
      return {
        target,
        targetVersion,
        callers: [...callers],
        files: files.map((f) => ({ name: f.name, scope: f.scope })),
        fields: list,
        exact: count('exact'),
        lossy: count('lossy'),
        dropped: count('dropped'),
      };
    },
  };
}

/**
 * Why a sidecar target has no place for `resources.*`: they guard calls the
 * process makes through its own non-HTTP clients; the proxy sees only their
 * TCP bytes. (Dapr is the exception: its Resiliency has component targets.)
 */
export const RESOURCES_NOT_EXPRESSIBLE =
  'resources guard calls this process makes through its own clients (Redis, SQL, queues); a sidecar proxy sees only their TCP bytes and has no policy for them';

/**
 * A field's value as the report shows it: JSON, except a limit that is off
 * (Infinity in the resolved policy), shown as Infinity where JSON writes null.
 */
export function showValue(value: unknown): string {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : JSON.stringify(value);
}

/** The report as JSON (`--report FILE`): an unbounded value (limits off) is null, as on the admin endpoint. */
export function reportJson(report: ExportReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** The report as text, one line per field, for stderr. */
export function formatReport(report: ExportReport): string {
  const lines = [`export to ${report.target} ${report.targetVersion} from ${report.callers.join(', ')}`];
  for (const file of report.files) lines.push(`  file ${file.name}: applies to ${file.scope}`);
  for (const e of report.fields) {
    const detail = e.verdict === 'exact' ? `-> ${e.to ?? ''}` : e.verdict === 'lossy' ? `${e.why ?? ''} -> ${e.to ?? ''}` : (e.why ?? '');
    lines.push(`  ${e.verdict.padEnd(7)} ${e.field} = ${showValue(e.value)}: ${detail}`);
  }
  lines.push(`${report.exact} exact, ${report.lossy} lossy, ${report.dropped} dropped`);
  return lines.join('\n');
}
