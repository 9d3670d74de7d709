/** Free loopback ports for the real servers tests and the demo start (never a fixed port). */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/**
 * A free TCP port on 127.0.0.1 (and free for UDP too when `udp`), not in
 * `taken` (which it joins). The port is released before it is returned, so the
 * server that takes it next binds it.
 */
export async function freePort(udp = false, taken = new Set<number>()): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (taken.has(port)) continue;
    if (udp) {
      const ok = await new Promise<boolean>((resolve) => {
        const sock = createSocket('udp4');
        sock.once('error', () => {
          sock.close();
          resolve(false);
        });
        sock.bind(port, '127.0.0.1', () => sock.close(() => resolve(true)));
      });
      if (!ok) continue;
    }
    taken.add(port);
    return port;
  }
  throw new Error('could not find a free port on 127.0.0.1');
}
