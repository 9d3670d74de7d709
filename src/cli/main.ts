#!/usr/bin/env node
import '../internal/node-check.ts';
import { runCli } from './index.ts';

void Promise.resolve(
  runCli(process.argv.slice(2), {
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
  }),
).then((code) => {
  process.exitCode = code;
});
