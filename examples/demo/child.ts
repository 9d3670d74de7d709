/** What the demo's child processes (the frontend and each instance) share: how they leave. */
import type { Server } from 'node:http';
import type { Mesh } from '../../src/mesh/mesh.ts';

/**
 * On SIGTERM, SIGINT or the demo going away (the IPC channel closes), once:
 * drops the server's connections, closes it and the mesh (no drain: the demo
 * is stopping or killing this process on purpose), then exits 0. Returns
 * whether it is leaving (background work stops retrying then).
 */
export function leaveOnStop(server: Server, mesh: () => Mesh | undefined): () => boolean {
  let leaving = false;
  const leave = async (): Promise<void> => {
    if (leaving) return;
    leaving = true;
    server.closeAllConnections();
    server.close();
    await mesh()?.close({ drainMs: 0 }).catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGTERM', () => void leave());
  process.on('SIGINT', () => void leave());
  process.on('disconnect', () => void leave());
  return () => leaving;
}
