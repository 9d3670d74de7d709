/**
 * The Fastify adapter (package entry `inmesh/fastify`): a plugin (wrapped with
 * fastify-plugin, so its hooks apply to the whole instance) that runs the
 * inbound chain in an `onRequest` hook, answers refusals through `reply`, and
 * runs each route's handler inside the request's admission (its deadline, its
 * SERVER span) from a `preHandler` hook: the async context does not survive
 * Fastify's body parsing, so it is entered again right before the handler.
 * `http.route` is the route's URL template (`request.routeOptions.url`).
 *
 * ```ts
 * import { inmeshFastify } from 'inmesh/fastify';
 * await app.register(inmeshFastify, { mesh }); // before the routes
 * ```
 */
import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { InvalidArgumentError } from '../errors.ts';
import { describeValue } from '../internal/describe.ts';
import type { InboundAnswer } from './answer.ts';
import type { HealthOptions } from './health.ts';
import type { InboundAdmission } from './inbound.ts';
import type { InboundSource } from './source.ts';

export type { InboundSource } from './source.ts';

export interface InmeshFastifyOptions {
  /** The mesh whose inbound policy applies (`createMesh()`). */
  readonly mesh: InboundSource;
  /** Liveness and readiness paths (answered before routing's 404). */
  readonly health?: HealthOptions;
}

const kAdmission = Symbol('inmesh.admission');

type WithAdmission = FastifyRequest & { [kAdmission]?: InboundAdmission };

const plugin: FastifyPluginCallback<InmeshFastifyOptions> = (fastify, options, done) => {
  const mesh = (options as Partial<InmeshFastifyOptions>).mesh;
  if (typeof mesh?.inbound !== 'function') {
    done(new InvalidArgumentError(`inmeshFastify: options.mesh must be a mesh from createMesh() (got ${describeValue(mesh)})`));
    return;
  }
  const gate = mesh.inbound(options.health === undefined ? {} : { health: options.health });

  fastify.addHook('onRequest', (request, reply, next) => {
    const respond = (answer: InboundAnswer): void => {
      void reply.code(answer.status).headers(answer.headers).send(answer.body);
    };
    const admitted = (admission: InboundAdmission | undefined): void => {
      // Undefined: inbound policy answered through `respond` (or the client left); the lifecycle stops here.
      if (admission === undefined) return;
      (request as WithAdmission)[kAdmission] = admission;
      next();
    };
    const out = gate.enter(request.raw, reply.raw, { respond, route: request.routeOptions.url });
    if (out instanceof Promise) out.then(admitted, next);
    else admitted(out);
  });

  fastify.addHook('preHandler', (request, _reply, next) => {
    const admission = (request as WithAdmission)[kAdmission];
    if (admission === undefined) next();
    else admission.run(next);
  });

  done();
};

/** The inbound chain as a Fastify plugin: `app.register(inmeshFastify, { mesh })`. */
export const inmeshFastify = fp(plugin, { fastify: '5.x', name: 'inmesh' });
