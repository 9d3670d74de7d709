/** Helpers for tests that use the shared Consul agent started by global-setup.ts. */
import { inject } from 'vitest';

/** `127.0.0.1:PORT` of the shared agent; throws (the test fails) when it could not be started. */
export function sharedConsulAddr(): string {
  const addr = inject('consulAddr');
  if (!addr) throw new Error(`the shared Consul agent is not running: ${inject('consulError') || 'unknown reason'}`);
  return addr;
}

/** `{ host, port }` of the shared agent. */
export function sharedConsul(): { host: string; port: number; url: string } {
  const addr = sharedConsulAddr();
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i), port: Number(addr.slice(i + 1)), url: `http://${addr}` };
}

/** Calls the Consul HTTP API directly (plain fetch), throwing on a non-2xx answer. */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the JSON shape it expects
export async function consulApi<T = unknown>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; index: string | null; data: T }> {
  const headers: Record<string, string> = {};
  if (token) headers['X-Consul-Token'] = token;
  const init: RequestInit = { method, headers, signal: AbortSignal.timeout(15_000) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return { status: res.status, index: res.headers.get('x-consul-index'), data: (text ? JSON.parse(text) : undefined) as T };
}
