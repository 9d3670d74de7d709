import { afterAll, describe, expect, it } from 'vitest';
import { consulApi, sharedConsul } from '../../harness/consul.ts';

describe('consul harness smoke test', () => {
  const id = `smoke-${process.pid}-${Date.now()}`;
  afterAll(async () => {
    const { url } = sharedConsul();
    await consulApi(url, 'PUT', `/v1/agent/service/deregister/${id}`).catch(() => undefined);
  });

  it('registers a service through the HTTP API and reads it back as passing', async () => {
    const { url } = sharedConsul();
    await consulApi(url, 'PUT', '/v1/agent/service/register', {
      ID: id,
      Name: 'smoke',
      Address: '127.0.0.1',
      Port: 12345,
      Tags: ['smoke'],
    });
    const { data } = await consulApi<{ Service: { ID: string; Address: string; Port: number } }[]>(
      url,
      'GET',
      '/v1/health/service/smoke?passing=1',
    );
    const mine = data.filter((e) => e.Service.ID === id);
    expect(mine).toHaveLength(1);
    expect(mine[0]!.Service).toMatchObject({ Address: '127.0.0.1', Port: 12345 });
  });
});
