/**
 * The `inmesh` command: check and explain policy files with the same schema the
 * library uses, so a policy can be validated in CI before it ships.
 *
 *   inmesh validate <file...>   exit 0 when every file is a valid policy, 1 otherwise
 *   inmesh explain <file>       print the resolved policy, every default applied
 *   inmesh schema               print the JSON Schema of the policy document
 *   inmesh --version            print the version of inmesh
 */
import { readPolicyFile } from '../config/load.ts';
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

options:
  --version           print the version of inmesh
  -h, --help          print this help
`;

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Runs one command; returns the exit code. Exported for tests. */
export function runCli(argv: readonly string[], io: CliIo): number {
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

function usage(io: CliIo, problem: string): number {
  io.err(`inmesh: ${problem}\n\n${USAGE}`);
  return 2;
}
