/**
 * The Express adapter (package entry `inmesh/express`): a middleware that runs
 * the inbound chain, then the routes after it inside the request's admission
 * (its deadline, its SERVER span). `http.route` is Express's matched route
 * (`req.baseUrl + req.route.path`), read when the response closes.
 *
 * ```ts
 * import { inmeshExpress } from 'inmesh/express';
 * app.use(inmeshExpress(mesh)); // first, before the routes
 * ```
 *
 * The middleware's type is written against node:http's request and response
 * rather than `@types/express`, so it fits `app.use()` (an Express request
 * *is* an IncomingMessage) and users need no Express types to compile.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { InboundOptions } from './inbound.ts';
import type { InboundSource } from './source.ts';

export type { InboundSource } from './source.ts';

/** An Express (or connect) middleware. */
export type InmeshMiddleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

export type InmeshExpressOptions = InboundOptions;

/** Express's route template of a request: `req.baseUrl + req.route.path`, when a route with a string path matched. */
export function expressRoute(req: IncomingMessage): string | undefined {
  const r = req as IncomingMessage & { route?: { path?: unknown }; baseUrl?: unknown };
  const path = r.route?.path;
  if (typeof path !== 'string') return undefined;
  return (typeof r.baseUrl === 'string' ? r.baseUrl : '') + path;
}

/** The inbound chain as Express middleware; mount it first (`app.use(inmeshExpress(mesh))`). */
export function inmeshExpress(mesh: InboundSource, options: InmeshExpressOptions = {}): InmeshMiddleware {
  const gate = mesh.inbound({ route: expressRoute, ...options });
  return function inmesh(req, res, next) {
    const admission = gate.enter(req, res);
    if (admission === undefined) return;
    if (!(admission instanceof Promise)) {
      admission.run(next);
      return;
    }
    admission.then((a) => a?.run(next), next);
  };
}
