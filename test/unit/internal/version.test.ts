import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VERSION } from '../../../src/internal/version.ts';
import { MIN_NODE } from '../../../src/internal/node-check.ts';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
  version: string;
  engines: { node: string };
};

describe('version facts', () => {
  it('VERSION is package.json version', () => {
    expect(VERSION).toBe(pkg.version);
  });

  it("the import-time Node check asks for what package.json's engines says", () => {
    expect(pkg.engines.node).toBe(`>=${MIN_NODE.join('.')}`);
  });
});
