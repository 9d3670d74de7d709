/**
 * The node:http / node:https adapter: a request listener, or every 'request'
 * listener of a Server, run behind the inbound chain.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { InvalidArgumentError } from '../errors.ts';
import { describeValue } from '../internal/describe.ts';
import type { InboundAdmission, InboundGate } from './inbound.ts';

/** A node:http / node:https request listener (its return value is ignored, as node:http ignores it). */
export type RequestListener<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> = (
  req: Req,
  res: Res,
) => unknown;

function rethrow(error: unknown): void {
  // What node:http does with a listener that throws: an uncaught exception.
  process.nextTick(() => {
    throw error;
  });
}

/** `listener` behind the inbound chain: called only for requests inbound policy lets through, inside their admission. */
export function wrapListener<Req extends IncomingMessage, Res extends ServerResponse>(
  gate: InboundGate,
  listener: RequestListener<Req, Res>,
): (req: Req, res: Res) => void {
  if (typeof listener !== 'function') throw new InvalidArgumentError(`mesh.server(listener): listener must be a function or an http(s).Server (got ${describeValue(listener)})`);
  const runApp = (admission: InboundAdmission | undefined, req: Req, res: Res): void => {
    if (admission !== undefined) admission.run(() => listener(req, res));
  };
  return function inmeshListener(req, res) {
    const admission = gate.enter(req, res);
    if (!(admission instanceof Promise)) {
      runApp(admission, req, res);
      return;
    }
    admission.then((a) => {
      try {
        runApp(a, req, res);
      } catch (error) {
        rethrow(error);
      }
    }, rethrow);
  };
}

/** Duck type of node:http(s).Server as far as wrapping goes. */
export function isServer(value: unknown): value is Server {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Server).listeners === 'function' &&
    typeof (value as Server).removeAllListeners === 'function' &&
    typeof (value as Server).on === 'function'
  );
}

/**
 * Replaces the 'request' listeners the server has now by one that runs them,
 * in order, behind the inbound chain. Listeners added later are not wrapped.
 */
export function wrapServer<S extends Server>(gate: InboundGate, server: S): S {
  const listeners = server.listeners('request') as RequestListener[];
  if (listeners.length === 0) {
    throw new InvalidArgumentError('mesh.server(server): the server has no request listener yet; pass it to createServer() first, or wrap the listener itself');
  }
  server.removeAllListeners('request');
  const all: RequestListener =
    listeners.length === 1
      ? (listeners[0] as RequestListener)
      : (req, res) => {
          for (const l of listeners) l.call(server, req, res);
        };
  server.on('request', wrapListener(gate, all));
  return server;
}
