/** The harness's own checks: a CONSUL_BIN that is not there fails with the how-to, and the version warning. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EXPECTED_CONSUL_VERSION, findConsulBinary, HOW_TO, versionWarning } from './consul-binary.ts';

describe('consul binary harness', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('CONSUL_BIN=/nonexistent fails with the how-to text, and does not fall back to another binary', async () => {
    vi.stubEnv('CONSUL_BIN', '/nonexistent');
    const error = await findConsulBinary().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe(`CONSUL_BIN=/nonexistent is not an executable file.\n${HOW_TO}`);
    expect(HOW_TO).toContain('CONSUL_BIN=/path/to/consul');
    expect(HOW_TO).toContain("apt access to the Debian archive");
  });

  it(`warns unless the binary is ${EXPECTED_CONSUL_VERSION}; TEST_CONSUL_VERSION accepts another`, () => {
    expect(versionWarning(`Consul v${EXPECTED_CONSUL_VERSION}`, undefined)).toBeUndefined();
    const warning = versionWarning('Consul v1.15.4', undefined);
    expect(warning).toContain(`The Consul binary is v1.15.4, not v${EXPECTED_CONSUL_VERSION}.`);
    expect(warning).toContain('TEST_CONSUL_VERSION=1.15.4');
    expect(versionWarning('Consul v1.15.4', '1.15.4')).toBeUndefined();
    expect(versionWarning('Consul v1.15.4', 'v1.15.4')).toBeUndefined();
    expect(versionWarning('Consul v1.15.4', '1.15.3')).toContain('not v1.8.7');
    expect(versionWarning('Consul v1.15.4', 'any')).toBeUndefined();
    expect(versionWarning('garbage', undefined)).toContain('of unknown version ("garbage")');
  });
});
