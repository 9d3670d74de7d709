/**
 * A call to a host that is not a mesh service: one plain request through the
 * pass-through dispatcher. The input is checked as for a mesh call and `query`
 * applies; the per-call overrides (timeout, retries, …) are mesh policy and do
 * not.
 */
import type { Dispatcher } from 'undici';
import type { MeshResponse } from '../core/types.ts';
import { checkCall, type CallInput } from './request.ts';

export async function passThroughRequest(dispatcher: Dispatcher, url: URL, input: CallInput): Promise<MeshResponse> {
  const call = checkCall(url, input);
  const res = await dispatcher.request({
    origin: url.origin,
    path: call.path,
    method: call.method,
    headers: call.headers,
    body: call.body ?? null,
    signal: call.signal ?? null,
  });
  return {
    statusCode: res.statusCode,
    headers: res.headers,
    body: res.body,
    trailers: res.trailers,
    endpoint: url.host,
    attempts: 1,
  };
}
