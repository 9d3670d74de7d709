import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import express from 'express';
import Fastify from 'fastify';
import { describe, expectTypeOf, it } from 'vitest';
import {
  SHUTDOWN_DEFAULTS,
  SHUTDOWN_ORDER,
  createMesh,
  currentDeadline,
  requestSignal,
  type ShutdownResult,
  type ShutdownStep,
  type SignalOptions,
} from '../../src/index.ts';
import { inmeshExpress } from '../../src/server/express.ts';
import { inmeshFastify } from '../../src/server/fastify.ts';

describe('server public types', () => {
  it('mesh.server wraps a listener (keeping its request and response types) or returns the server it wrapped', () => {
    const mesh = createMesh();
    const listener = mesh.server((req, res) => {
      expectTypeOf(req).toEqualTypeOf<IncomingMessage>();
      expectTypeOf(res).toEqualTypeOf<ServerResponse>();
      res.end();
    });
    createServer(listener);
    createHttpsServer({}, listener);
    const server = createServer(() => undefined);
    expectTypeOf(mesh.server(server)).toEqualTypeOf(server);
    // @ts-expect-error the health paths are strings or false
    mesh.server(listener, { health: { livenessPath: 1 } });
  });

  it('currentDeadline and requestSignal', () => {
    expectTypeOf(currentDeadline()).toEqualTypeOf<number | undefined>();
    expectTypeOf(requestSignal).returns.toEqualTypeOf<AbortSignal>();
  });

  it('inmeshExpress fits app.use(); inmeshFastify fits fastify.register() and needs the mesh', () => {
    const mesh = createMesh();
    const app = express();
    app.use(inmeshExpress(mesh));
    app.get('/x', (req, res) => {
      expectTypeOf(requestSignal(req)).toEqualTypeOf<AbortSignal>();
      res.end();
    });
    const f = Fastify();
    void f.register(inmeshFastify, { mesh });
    void f.register(inmeshFastify, { mesh, health: { readinessPath: '/ready' } });
    // @ts-expect-error the mesh is required
    void f.register(inmeshFastify, {});
    f.get('/x', (request) => requestSignal(request).aborted);
  });

  it('mesh.shutdown() and its order, defaults and result are public', () => {
    const mesh = createMesh();
    expectTypeOf(mesh.shutdown({ propagationDelayMs: 0, drainTimeoutMs: SHUTDOWN_DEFAULTS.drainTimeoutMs })).toEqualTypeOf<Promise<ShutdownResult>>();
    expectTypeOf(SHUTDOWN_ORDER[0]).toEqualTypeOf<'maintenance'>();
    expectTypeOf<ShutdownResult['errors'][number]['step']>().toEqualTypeOf<ShutdownStep>();
    const options: SignalOptions = { signals: ['SIGTERM'], exit: false };
    expectTypeOf(mesh.handleSignals(options)).toEqualTypeOf<() => void>();
    // @ts-expect-error: durations are numbers of ms
    void mesh.shutdown({ drainTimeoutMs: '20s' });
  });
});
