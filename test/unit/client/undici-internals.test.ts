/**
 * The undici internal inmesh reads (src/client/undici-internals.ts). When an
 * undici upgrade drops or renames it, this fails first: the mesh then falls
 * back to a signal per attempt (correct, slower), tested below too.
 */
import { once } from 'node:events';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { AttemptControl } from '../../../src/client/attempt-control.ts';
import { QUEUED_ABORT } from '../../../src/client/undici-internals.ts';
import { TimeoutError } from '../../../src/errors.ts';
import { closeAll, hanging, startServer } from '../../integration/client/helpers.ts';

afterEach(closeAll);

describe('undici internals', () => {
  it("undici still has its queued-abort key (lib/core/symbols.js kQueuedAbort)", () => {
    expect(typeof QUEUED_ABORT).toBe('symbol');
    expect(String(QUEUED_ABORT)).toBe('Symbol(queued abort)');
  });

  it('the fallback signal of a control aborted before undici asked for it is already aborted, with the reason', () => {
    const control = new AttemptControl('attempt', 50, 'orders');
    const why = new TimeoutError('attempt', 50, { service: 'orders' });
    control.abort(why);
    expect(control.signal.aborted).toBe(true);
    expect(control.signal.reason).toBe(why);
  });

  it('the fallback: an AttemptControl aborts a plain Pool request through its signal, also while queued', async () => {
    const s = await startServer((req, res) => {
      if (req.url === '/hold') hanging.push(res);
      else res.end('ok');
    });
    const pool = new Pool(`http://${s.address}`, { connections: 1 });
    try {
      const holder = pool.request({ path: '/hold', method: 'GET' });
      await once(s.server, 'request');
      const control = new AttemptControl('attempt', 50, 'orders');
      const queued = pool.request({ path: '/queued', method: 'GET', signal: control.signal });
      const why = new TimeoutError('attempt', 50, { service: 'orders' });
      control.abort(why);
      await expect(queued).rejects.toBe(why);
      for (const r of hanging.splice(0)) r.end('held');
      await (await holder).body.text();
      expect(s.hits).toBe(1);
      expect(s.connections).toBe(1);
    } finally {
      await pool.destroy();
    }
  });
});
