import { afterAll, describe, expect, it } from 'vitest';
import { consulApi, sharedConsul } from '../../harness/consul.ts';

interface HealthEntry {
  Service: { ID: string; Address: string; Port: number };
  Checks: { CheckID: string; ServiceID: string; Status: string }[];
}

describe('consul harness smoke test', () => {
  const id = `smoke-${process.pid}-${Date.now()}`;
  const checkId = `service:${id}`;
  afterAll(async () => {
    const { url } = sharedConsul();
    await consulApi(url, 'PUT', `/v1/agent/service/deregister/${id}`).catch(() => undefined);
  });

  it('registers a service with a TTL check through the HTTP API, passes the check, and reads it back as passing', async () => {
    const { url } = sharedConsul();
    await consulApi(url, 'PUT', '/v1/agent/service/register', {
      ID: id,
      Name: 'smoke',
      Address: '127.0.0.1',
      Port: 12345,
      Tags: ['smoke'],
      Check: { CheckID: checkId, Name: 'smoke TTL', TTL: '30s' },
    });
    const health = async (): Promise<HealthEntry[]> =>
      (await consulApi<HealthEntry[]>(url, 'GET', '/v1/health/service/smoke')).data.filter((e) => e.Service.ID === id);
    // A new TTL check starts critical: not passing until it is passed.
    const before = await health();
    expect(before).toHaveLength(1);
    expect(before[0]!.Checks.find((c) => c.CheckID === checkId)?.Status).toBe('critical');
    await consulApi(url, 'PUT', `/v1/agent/check/pass/${encodeURIComponent(checkId)}?note=smoke`);
    const mine = await health();
    expect(mine).toHaveLength(1);
    expect(mine[0]!.Service).toMatchObject({ Address: '127.0.0.1', Port: 12345 });
    const checks = mine[0]!.Checks;
    expect(checks.map((c) => c.Status)).toEqual(checks.map(() => 'passing')); // the node's serfHealth and ours
    expect(checks.find((c) => c.CheckID === checkId)).toMatchObject({ ServiceID: id, Status: 'passing' });
    const passing = await consulApi<HealthEntry[]>(url, 'GET', '/v1/health/service/smoke?passing=1');
    expect(passing.data.filter((e) => e.Service.ID === id)).toHaveLength(1);
  });
});
