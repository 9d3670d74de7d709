/**
 * THE assembler of a resource's chain (the Guard class and mesh.guard both
 * call it): the resilience layers of an upstream's chain, built by the same
 * factories, around the guarded function instead of a transport.
 *
 * Rule as in client/chain.ts: array order = call order, first = outermost.
 *
 *   telemetry → deadline → breaker → rateLimit → limit → retry → attemptTimeout → (fn)
 *
 * - telemetry: one CLIENT span and duration per call (telemetry/resource.ts, handed in by the mesh).
 * - deadline: fixes `req.deadline` from the total timeout (or the inbound request's deadline, if sooner).
 * - breaker, rateLimit, limit, retry: resilience/ as for an upstream (opossum, the token bucket
 *   local or shared through Redis, max in flight + pending with shedding, p-retry with the
 *   budget); the retry layer asks the resource's own classification (`req.classifyFailure`).
 * - attemptTimeout: one AbortSignal per try, aborted at min(per-try timeout, time left) or
 *   when the caller's signal fires; `fn` gets it, and a try whose `fn` ignores it is
 *   settled by it all the same.
 *
 * The layers read an upstream's resolved policy: a resource's is laid onto the
 * same fields (`upstreamView`); the HTTP-only fields keep their defaults and
 * are read by no layer here (no balance layer, no transport).
 */
import { currentDeadline } from '../core/deadline-context.ts';
import { buildLayers, composeLayers } from '../core/layers.ts';
import type { AttemptHandle, Handler, Layer, MeshRequest, MeshResponse } from '../core/types.ts';
import { AbortedError, TimeoutError } from '../errors.ts';
import { deepFreeze } from '../internal/deep-freeze.ts';
import { resolvePolicy } from '../policy/resolve.ts';
import type { ResolvedResource, ResolvedUpstream, ResolvedUpstreamPolicy } from '../policy/types.ts';
import { createBreakerLayer, type BreakerDeps, type BreakerLayer } from '../resilience/breaker.ts';
import { createLimitLayer, type LimitLayer } from '../resilience/limits.ts';
import { createRateLimitLayer, type RateLimitDeps, type RateLimitLayer } from '../resilience/rate-limit.ts';
import { failureCode } from '../resilience/classify.ts';
import { createRetryLayer, type RetryDeps, type RetryLayer } from '../resilience/retry.ts';

export const RESOURCE_LAYER_ORDER = ['telemetry', 'deadline', 'breaker', 'rateLimit', 'limit', 'retry', 'attemptTimeout'] as const;
export type ResourceLayerName = (typeof RESOURCE_LAYER_ORDER)[number];

/** What the assembler needs besides the policy: the state hooks and Redis of the resilience layers, and the telemetry layer. */
export interface ResourceChainDeps extends BreakerDeps, RateLimitDeps, RetryDeps {
  /** The resource telemetry layer (telemetry/resource.ts); undefined = none. */
  readonly telemetry?: Layer | undefined;
}

export interface ResourceLayers {
  readonly telemetry?: Layer;
  readonly deadline?: Layer;
  readonly breaker?: BreakerLayer;
  readonly rateLimit?: RateLimitLayer;
  readonly limit?: LimitLayer;
  readonly retry?: RetryLayer;
  readonly attemptTimeout?: Layer;
}

export interface ResourceChain {
  readonly handler: Handler;
  /** The layers present, outermost first. */
  readonly names: readonly ResourceLayerName[];
  readonly layers: ResourceLayers;
  /** Shuts down the layers with state (breaker timers, queued calls, a Redis connection). */
  close(): Promise<void>;
}

/** A guarded call as it travels down the chain: a MeshRequest carrying the function. */
export interface GuardRequest extends MeshRequest {
  readonly call: (signal: AbortSignal) => unknown;
}

/** What the innermost handler returns: the function's value, in the response shape the layers pass up. */
export interface GuardResponse extends MeshResponse {
  readonly value: unknown;
}

let baseUpstream: Readonly<ResolvedUpstreamPolicy> | undefined;

/** A resource's policy on an upstream's fields, for the resilience layer factories (deep-frozen). */
export function upstreamView(r: Readonly<ResolvedResource>): Readonly<ResolvedUpstream> {
  baseUpstream ??= resolvePolicy({ apiVersion: 'inmesh/v1' }, 'built-in defaults').defaults;
  const base = baseUpstream;
  return deepFreeze({
    ...base,
    name: r.name,
    subsets: Object.create(null) as ResolvedUpstream['subsets'],
    routes: [],
    split: undefined,
    timeouts: { ...base.timeouts, request: r.timeouts.request, perTry: r.timeouts.perTry },
    retries: {
      ...base.retries,
      attempts: r.retries.attempts,
      // The resource classifies its own failures (req.classifyFailure); no HTTP condition applies.
      retryOn: [],
      retriableStatusCodes: [],
      backoff: r.retries.backoff,
      // A guarded call is idempotent when the call or the resource says so (isIdempotent in retry.ts).
      idempotentOnly: !r.retries.idempotent,
      budget: r.retries.budget,
      maxRetryAfter: 0,
    },
    limits: { ...base.limits, maxRequests: r.limits.maxRequests, maxPendingRequests: r.limits.maxPendingRequests },
    circuitBreaker: r.circuitBreaker,
    rateLimit: r.rateLimit,
  });
}

const deadlineLayer: Layer = (next: Handler): Handler =>
  function deadline(req) {
    const ms = req.options.timeout ?? req.policy.timeouts.request;
    const inbound = currentDeadline();
    const now = performance.now();
    if (inbound !== undefined && (ms <= 0 || inbound < now + ms)) {
      req.deadline = inbound;
      req.deadlineMs = Math.max(0, inbound - now);
    } else if (ms > 0) {
      req.deadline = now + ms;
      req.deadlineMs = ms;
    }
    return next(req);
  };

/** An AttemptHandle over an AbortController: the signal is what `fn` gets. */
function attemptHandle(controller: AbortController): AttemptHandle {
  return {
    get reason() {
      return controller.signal.aborted ? (controller.signal.reason as Error) : undefined;
    },
    ended: false,
    signal: controller.signal,
    abort: (reason) => controller.abort(reason),
  };
}

const attemptTimeoutLayer: Layer = (next: Handler): Handler =>
  function attemptTimeout(req) {
    const service = req.service;
    const perTry = req.options.perTryTimeout ?? req.policy.timeouts.perTry;
    const left = req.deadline - performance.now();
    if (left <= 0) return Promise.reject(new TimeoutError('total', Math.round(req.deadlineMs), { service }));
    const byTry = perTry > 0 && perTry < left;
    const controller = new AbortController();
    req.attemptControl = attemptHandle(controller);
    const ms = byTry ? perTry : left;
    const timer =
      ms === Infinity
        ? undefined
        : setTimeout(() => {
            controller.abort(byTry ? new TimeoutError('attempt', perTry, { service }) : new TimeoutError('total', Math.round(req.deadlineMs), { service }));
          }, ms);
    const caller = req.signal;
    const onAbort = (): void => controller.abort(new AbortedError({ service, cause: caller?.reason }));
    if (caller !== undefined) {
      if (caller.aborted) onAbort();
      else caller.addEventListener('abort', onAbort, { once: true });
    }
    const done = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      caller?.removeEventListener('abort', onAbort);
    };
    return next(req).then(
      (res) => {
        done();
        return res;
      },
      (error: unknown) => {
        done();
        throw error;
      },
    );
  };

const NO_HEADERS = Object.freeze({}) as MeshResponse['headers'];
const NO_TRAILERS: Record<string, string> = Object.freeze({});
/** A guarded call has no HTTP body; the layers read one only from a status of 400 and above, which it never has. */
const NO_BODY = undefined as unknown as MeshResponse['body'];

function respond(req: MeshRequest, value: unknown): GuardResponse {
  return { statusCode: 200, headers: NO_HEADERS, body: NO_BODY, trailers: NO_TRAILERS, endpoint: req.service, attempts: req.attempt + 1, value };
}

/** The innermost handler: runs the function with the try's signal; a try aborted first fails with the signal's reason. */
function callFunction(req: MeshRequest): Promise<MeshResponse> {
  const signal = (req.attemptControl as AttemptHandle).signal;
  const failure = (error: unknown): never => {
    // The try's own deadline or the caller's abort is the failure; the client's error (if any) is its cause.
    if (signal.aborted) throw signal.reason as Error;
    throw error;
  };
  let value: unknown;
  try {
    value = (req as GuardRequest).call(signal);
  } catch (error) {
    try {
      failure(error);
    } catch (failed) {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the client's own failure passes through unchanged
      return Promise.reject(failed);
    }
  }
  // A thenable that is not a Promise (a knex or Mongoose query, a promise of another library)
  // is run and awaited here, inside the try, like a Promise: returned as a value, it would
  // run after the chain, outside its timeouts, retries and breaker.
  if (!isThenable(value)) return Promise.resolve(respond(req, value));
  return raceSignal(value instanceof Promise ? value : Promise.resolve(value), signal).then((v) => respond(req, v), failure);
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** Settles with the call, or rejects when the signal fires first (a client that ignores the signal). */
function raceSignal(value: Promise<unknown>, signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    value.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the client's own failure passes through unchanged
        reject(e);
      },
    );
  });
}

/** The codes and names an error answers to: `code` (also of its cause), `name`, and a Redis reply's first word (READONLY, WRONGTYPE). */
export function errorNames(error: unknown): string[] {
  const out: string[] = [];
  const code = failureCode(error);
  if (code !== undefined) out.push(code);
  if (error instanceof Error) {
    out.push(error.name);
    const word = /^[A-Z][A-Z0-9_]*(?= |$)/.exec(error.message)?.[0];
    if (word !== undefined) out.push(word);
  }
  return out;
}

/** Whether an error's code or name is in `list`. */
export function isListed(list: readonly string[], error: unknown): boolean {
  return list.length > 0 && errorNames(error).some((n) => list.includes(n));
}

/** Builds every layer of a resource and composes them around the function call, in RESOURCE_LAYER_ORDER. */
export function assembleResourceChain(resource: Readonly<ResolvedResource>, deps: ResourceChainDeps = {}): ResourceChain {
  const upstream = upstreamView(resource);
  const build: { readonly [K in ResourceLayerName]: () => Layer | undefined } = {
    telemetry: () => deps.telemetry,
    deadline: () => deadlineLayer,
    // An error the resource lists in neverRetry is its answer (the caller's mistake): not an outage.
    breaker: () => createBreakerLayer(upstream, { ...deps, answered: (error) => isListed(resource.retries.neverRetry, error) }),
    rateLimit: () => createRateLimitLayer(upstream, deps),
    limit: () => createLimitLayer(upstream),
    retry: () => createRetryLayer(upstream, deps),
    attemptTimeout: () => attemptTimeoutLayer,
  };
  const { layers, close } = buildLayers(RESOURCE_LAYER_ORDER, (name) => build[name]());
  // Each entry of `build` makes its layer's own type (a BreakerLayer for `breaker`, …).
  return { ...composeLayers(RESOURCE_LAYER_ORDER, layers, callFunction), layers: layers as ResourceLayers, close };
}
