/**
 * The `inmesh` command: check and explain policy files with the same schema the
 * library uses, so a policy can be validated in CI before it ships.
 *
 *   inmesh validate <file...>   exit 0 when every file is a valid policy, 1 otherwise
 *   inmesh explain <file>       print the resolved policy, every default applied
 *   inmesh schema               print the JSON Schema of the policy document
 *   inmesh export --to T <file...>  write the policy for a sidecar mesh, with a report;
 *                               exit 2 when a field is lossy or dropped, 1 on any error
 *   inmesh --version            print the version of inmesh
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readPolicyFile } from '../config/load.ts';
import { EXPORT_TARGETS, exportPolicy, exporterFor, formatReport, isExportTarget, renderFile, reportJson, type ExportCaller } from '../export/index.ts';
import { isInmeshError } from '../errors.ts';
import { buildJsonSchema } from '../policy/schema.ts';
import { parsePolicy } from '../policy/validate.ts';
import { explainPolicy, resolvePolicy } from '../policy/index.ts';
import { VERSION } from '../internal/version.ts';

const USAGE = `usage: inmesh <command> [args]

commands:
  validate <file...>  check policy files (YAML or JSON); exit 1 on the first invalid one
  explain <file>      print the resolved policy, every default applied
  schema              print the JSON Schema (draft 2020-12) of the policy document
  export --to TARGET [options] <file...>
                      write the policies (one per calling service) for a sidecar
                      mesh and report every field as exact, lossy or dropped (on
                      stderr); exit 2 when one is lossy or dropped, 1 on any
                      error (a bad option included)
    --to T              ${EXPORT_TARGETS.join(' | ')}
    --target-version V  version of the target to write for (default: the exporter's first)
    --out DIR           write the files into DIR (default: print them to stdout)
    --report FILE       also write the report as JSON
    --allow-lossy       exit 0 even when a field is lossy or dropped
    --service NAME      the caller's own service (exports its inbound policy; one file only)
    --namespace NS      Kubernetes namespace of the resources (default: default)
    --apply             also write the result to the running target (where it has an API)

options:
  --version           print the version of inmesh
  -h, --help          print this help
`;

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Runs one command; returns the exit code (a promise only for `export --apply`). Exported for tests. */
export function runCli(argv: readonly string[], io: CliIo): number | Promise<number> {
  const [command, ...args] = argv;
  try {
    switch (command) {
      case 'validate': {
        if (args.length === 0) return usage(io, 'validate needs at least one file');
        for (const file of args) {
          resolvePolicy(parsePolicy(readPolicyFile(file, 'file argument'), `policy file ${file}`), `policy file ${file}`);
          io.out(`${file}: valid`);
        }
        return 0;
      }
      case 'explain': {
        const [file] = args;
        if (file === undefined || args.length !== 1) return usage(io, 'explain needs exactly one file');
        io.out(explainPolicy(resolvePolicy(parsePolicy(readPolicyFile(file, 'file argument'), `policy file ${file}`), `policy file ${file}`)));
        return 0;
      }
      case 'schema':
        if (args.length > 0) return usage(io, `schema takes no arguments, got '${args.join(' ')}'`);
        io.out(JSON.stringify(buildJsonSchema(), null, 2));
        return 0;
      case 'export':
        return runExport(args, io);
      case '--version':
        io.out(VERSION);
        return 0;
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        io.out(USAGE);
        return command === undefined ? 2 : 0;
      default:
        return usage(io, `unknown command '${command}'`);
    }
  } catch (error) {
    io.err(isInmeshError(error) || error instanceof Error ? error.message : String(error));
    return 1;
  }
}

/**
 * Exit 2 of `export` means "written, but some field is lossy or dropped", which a
 * script may accept; so a usage error of `export` exits 1, like every other error.
 */
function exportUsage(io: CliIo, problem: string): number {
  usage(io, problem);
  return 1;
}

function runExport(args: readonly string[], io: CliIo): number | Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        to: { type: 'string' },
        'target-version': { type: 'string' },
        out: { type: 'string' },
        report: { type: 'string' },
        'allow-lossy': { type: 'boolean' },
        service: { type: 'string' },
        namespace: { type: 'string' },
        apply: { type: 'boolean' },
      },
    });
  } catch (error) {
    return exportUsage(io, `export: ${(error as Error).message}`);
  }
  const { values, positionals } = parsed;
  const to = values.to;
  if (to === undefined) return exportUsage(io, `export needs --to (${EXPORT_TARGETS.join(', ')})`);
  if (!isExportTarget(to)) return exportUsage(io, `export --to: unknown target '${to}' (one of ${EXPORT_TARGETS.join(', ')})`);
  if (positionals.length === 0) return exportUsage(io, 'export needs at least one policy file');
  const exporter = exporterFor(to);
  if (values.apply === true && exporter.apply === undefined) return exportUsage(io, `export --apply: ${to} has no API to apply to; use --out and the target's own tools`);

  const callers: ExportCaller[] = positionals.map((file) => ({
    source: file,
    policy: resolvePolicy(parsePolicy(readPolicyFile(file, 'file argument'), `policy file ${file}`), `policy file ${file}`),
  }));
  const { files, report } = exportPolicy(to, callers, {
    ...(values['target-version'] === undefined ? {} : { targetVersion: values['target-version'] }),
    ...(values.service === undefined ? {} : { service: values.service }),
    ...(values.namespace === undefined ? {} : { namespace: values.namespace }),
  });
  if (values.out === undefined) {
    for (const file of files) io.out(`# ${file.name}\n${renderFile(file)}`);
  } else {
    mkdirSync(values.out, { recursive: true });
    for (const file of files) writeFileSync(join(values.out, file.name), renderFile(file));
  }
  if (values.report !== undefined) writeFileSync(values.report, reportJson(report));
  io.err(formatReport(report));
  const code = report.lossy + report.dropped > 0 && values['allow-lossy'] !== true ? 2 : 0;
  if (values.apply !== true || exporter.apply === undefined) return code;
  return exporter.apply(files, process.env).then(
    () => {
      io.err(`applied ${files.length} file(s) to ${to}`);
      return code;
    },
    (error: unknown) => {
      io.err(error instanceof Error ? error.message : String(error));
      return 1;
    },
  );
}

function usage(io: CliIo, problem: string): number {
  io.err(`inmesh: ${problem}\n\n${USAGE}`);
  return 2;
}
