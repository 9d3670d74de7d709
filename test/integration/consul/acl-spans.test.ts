/**
 * ACLs on, default deny (own agent): a mesh whose discovery uses a wrong token
 * fails its request, and the token appears in no span: not in a name, an
 * attribute, an event, a status message or the recorded exception, of any span
 * the SDK (an in-memory exporter, as in test/integration/telemetry) received.
 */
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMesh, NoEndpointsError, RegistryError } from '../../../src/index.ts';
import { Secret } from '../../../src/internal/secret.ts';
import { registerService, type ConsulRegistration } from '../../../src/registry/consul-register.ts';
import { startConsulAgent, type ConsulAgent } from '../../harness/consul-agent.ts';
import { captureLogger } from '../../harness/registry-helpers.ts';
import { registerOtel, type OtelHarness } from '../../unit/telemetry/otel-harness.ts';

describe('the ACL token never appears in a span', () => {
  const master = randomUUID();
  const wrong = randomUUID();
  let agent: ConsulAgent;
  let instance: ConsulRegistration;
  let otel: OtelHarness;

  beforeAll(async () => {
    otel = registerOtel({ metrics: false });
    agent = await startConsulAgent({ acl: { masterToken: master } });
    instance = await registerService({ name: 'secure', port: 18900, address: '127.0.0.1', connection: { host: agent.address, port: agent.port, token: new Secret(master) }, verifyIntervalMs: 0 });
  });
  afterAll(async () => {
    await instance.deregister().catch(() => undefined);
    instance.close();
    await agent.close();
    await otel.shutdown();
  });

  it('a request whose discovery is refused (403) records spans without the token', async () => {
    const logger = captureLogger();
    const mesh = createMesh({
      env: { CONSUL_HTTP_ADDR: agent.httpAddr, CONSUL_HTTP_TOKEN: wrong },
      consulWatch: { refusedPauseMs: 2_000 },
      logger,
    });
    try {
      otel.reset();
      const error = await mesh.request('http://secure.service.consul/orders?id=1', { retries: 0 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NoEndpointsError);
      const cause = (error as Error).cause;
      expect(cause).toBeInstanceOf(RegistryError);
      expect((cause as RegistryError).statusCode).toBe(403);
      const spans = await otel.spans();
      expect(spans.length).toBeGreaterThan(0);
      const rendered = spans.map((s) =>
        JSON.stringify({ name: s.name, attributes: s.attributes, events: s.events, status: s.status, links: s.links, resource: s.resource.attributes }),
      );
      // The failed call is in a span, with its error recorded: the check below looks at something real.
      expect(rendered.join('\n')).toMatch(/INMESH_ERR_NO_ENDPOINTS|NoEndpointsError/);
      for (const text of rendered) expect(text).not.toContain(wrong);
      expect(inspect(spans, { depth: 8 })).not.toContain(wrong);
      expect(inspect(error, { depth: Infinity })).not.toContain(wrong);
      expect(logger.text()).not.toContain(wrong);
      expect(mesh.discoveryStatus('secure.service.consul')?.lastError?.message).not.toContain(wrong);
    } finally {
      await mesh.close();
    }
  });
});
