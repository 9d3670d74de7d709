/**
 * Draining the servers of a process that shuts down: stop accepting
 * connections, close the idle keep-alive sockets, answer the requests left
 * with `Connection: close`, wait for the requests in flight up to a deadline,
 * then cut what remains. The step of `mesh.shutdown()` between the
 * propagation delay and the deregistration (mesh/lifecycle.ts has the order).
 */
import type { Server } from 'node:http';
import type { InboundServer } from './inbound.ts';

export interface DrainOutcome {
  /** True when requests were still in flight at the deadline and their connections were cut. */
  readonly timedOut: boolean;
  /** Requests through the inbound chain still in flight at the deadline (0 when all completed). */
  readonly cut: number;
}

/**
 * Drains `servers` and the inbound side. Resolves once every server has
 * closed (all its connections ended) and no inbound request is in flight, or
 * at `timeoutMs`: then `closeAllConnections()` cuts what is left. A server
 * that is not listening counts as closed.
 */
export async function drainServers(servers: readonly Server[], inbound: InboundServer | undefined, timeoutMs: number): Promise<DrainOutcome> {
  const closeIdle = (): void => {
    for (const server of servers) server.closeIdleConnections();
  };
  // First: responses not yet started (and every later one) carry `Connection: close`.
  inbound?.drain(closeIdle);
  // close() stops accepting at once; its callback runs when the last connection has ended
  // (with ERR_SERVER_NOT_RUNNING at once for a server that is not listening: closed as well).
  const closed = servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
  closeIdle();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(resolve, timeoutMs, 'timeout');
  });
  const drained = Promise.all([...closed, inbound?.idle()]).then(() => 'drained' as const);
  const outcome = await Promise.race([drained, deadline]);
  clearTimeout(timer);
  if (outcome === 'drained') return { timedOut: false, cut: 0 };
  const cut = inbound?.active ?? 0;
  for (const server of servers) server.closeAllConnections();
  return { timedOut: true, cut };
}
