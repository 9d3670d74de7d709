/**
 * The exporters' golden files: what an export writes, compared byte for byte
 * with the files under test/fixtures/export/. With UPDATE_GOLDEN=1 the files
 * are written first from the output (then the comparison passes and git diff
 * shows the change).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { formatReport, renderFile, type ExportedFile, type ExportReport } from '../../../src/export/index.ts';

/** The files of an export as they are written (name → text), with the report as report.txt. */
export function exportOutputs(files: readonly ExportedFile[], report: ExportReport): Map<string, string> {
  const outputs = new Map(files.map((f) => [f.name, renderFile(f)]));
  outputs.set('report.txt', `${formatReport(report)}\n`);
  return outputs;
}

/**
 * Expects each of `outputs` (name → text) to equal the file of that name in
 * `dir`; `testFile` is the test that regenerates them. With `wholeDirectory`
 * the directory holds exactly these files (a regeneration empties it first).
 */
export function expectGolden(dir: string, outputs: ReadonlyMap<string, string>, testFile: string, { wholeDirectory = false } = {}): void {
  const hint = `regenerate with UPDATE_GOLDEN=1 npx vitest run ${testFile} --no-coverage`;
  if (process.env['UPDATE_GOLDEN'] === '1') {
    if (wholeDirectory) rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    for (const [name, text] of outputs) writeFileSync(join(dir, name), text);
  }
  if (wholeDirectory) {
    expect(existsSync(dir), `${dir} is missing: ${hint}`).toBe(true);
    expect(readdirSync(dir).sort(), `the files of ${dir}: ${hint}`).toEqual([...outputs.keys()].sort());
  }
  for (const [name, text] of outputs) {
    const file = join(dir, name);
    expect(text, `${file} differs: ${hint}`).toBe(readFileSync(file, 'utf8'));
  }
}
