/**
 * The inbound chain: the server half of the mesh, which answers health probes
 * and enforces the policy's `inbound` block before the app does any work, in
 * one order (`INBOUND_ORDER`), on one core shared by every adapter (node:http
 * listener, Express middleware, Fastify plugin).
 *
 * Order (array order = call order, first is outermost, like the client's
 * LAYER_ORDER), pinned by test/integration/server/order.test.ts:
 *
 *   health → telemetry → deadline → rateLimit → concurrency → timeout → app
 *
 * - `health`: liveness/readiness probes are answered first, so they are never
 *   traced, limited or shed (a probe must not fail because the app is busy).
 * - `telemetry`: the SERVER span and the server metrics cover every request
 *   after that, refusals included (a refusal is visible as such).
 * - `deadline`: the request's deadline (headers and `inbound.timeouts.request`,
 *   see deadline.ts); an already expired one is answered 504 at once, before
 *   it can spend a token or a slot.
 * - `rateLimit`: `inbound.rateLimit`, 429 + Retry-After; before concurrency so
 *   that a refused request never holds a slot.
 * - `concurrency`: `inbound.maxConcurrent`, 503 + Retry-After (load shedding).
 * - `timeout`: one timer for the request's deadline: 504, and the app's signal
 *   (`requestSignal(req)`) aborted with `TimeoutError('inbound')`.
 *
 * Each stage has `enter` (may answer instead of the app, may be async) and an
 * optional `exit`, run in reverse order for the stages entered when the
 * response closes (finished or cut). Refusals are answered by inbound policy
 * and never reach the app, so the app's own error handling never sees them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AbortedError, InvalidArgumentError, LoadShedError, RateLimitedError, TimeoutError, type InmeshError } from '../errors.ts';
import { describeValue } from '../internal/describe.ts';
import type { ResolvedInbound } from '../policy/types.ts';
import type { RateLimitLogger } from '../resilience/rate-limit.ts';
import type { InboundSpan, ServerTelemetry } from '../telemetry/server.ts';
import { dropLateWrites, refusalAnswer, writeAnswer, type InboundAnswer, type RefusalReason, type Respond } from './answer.ts';
import { callerBudgetMs } from './deadline.ts';
import { deadlineStorage, type DeadlineHolder } from '../core/deadline-context.ts';
import { CLOSING, OK, healthPaths, pathOf, type HealthOptions } from './health.ts';
import { createInboundBucket, type InboundBucket } from './rate-limit.ts';

/** The stages of the inbound chain, outermost first. */
export const INBOUND_ORDER = ['health', 'telemetry', 'deadline', 'rateLimit', 'concurrency', 'timeout'] as const;
export type InboundStageName = (typeof INBOUND_ORDER)[number];

/** Retry-After of a shed request, seconds: a slot frees as soon as any request ends. */
const SHED_RETRY_AFTER_SECONDS = 1;

/** Options of one wrapped server (`mesh.server(listener, options)`, the Express and Fastify adapters). */
export interface InboundOptions {
  /** Liveness and readiness paths. */
  readonly health?: HealthOptions;
  /**
   * `http.route` of a request (a template such as `/orders/:id`), read when
   * its response closes. The Express adapter passes Express's matched route.
   */
  readonly route?: (req: IncomingMessage) => string | undefined;
}

/** Per-request hints from an adapter. */
export interface EnterHints {
  /** Writes inbound policy's answers (default: written to the raw response). */
  readonly respond?: Respond;
  /** `http.route`, when the framework knows it at entry. */
  readonly route?: string | undefined;
}

/** A request the inbound chain let through to the app. */
export interface InboundAdmission {
  /**
   * Runs the app: inside the request's deadline (`currentDeadline()`) and,
   * with telemetry on, with its SERVER span active (mesh calls made in it
   * continue the trace).
   */
  run<T>(fn: () => T): T;
  /** Aborted when the request times out (`TimeoutError`, phase `inbound`) or the client goes away (`AbortedError`). */
  readonly signal: AbortSignal;
}

/** The one core every adapter uses: `enter()` a request, then run the app through the admission (or not at all). */
export interface InboundGate {
  /**
   * Runs the inbound chain for one request. Returns the admission when the app
   * should handle it; undefined when inbound policy answered (or the client
   * left while it waited). Synchronous unless a stage had to wait (the rate limit).
   */
  enter(req: IncomingMessage, res: ServerResponse, hints?: EnterHints): InboundAdmission | undefined | Promise<InboundAdmission | undefined>;
}

export interface InboundServerDeps {
  readonly policy: Readonly<ResolvedInbound>;
  /** This process's service name: names errors and the shared rate-limit bucket. */
  readonly service: string | undefined;
  /** Undefined when telemetry is off: the stage is then absent. */
  readonly telemetry: ServerTelemetry | undefined;
  /** True from the moment the mesh starts closing (readiness fails). */
  readonly closing: () => boolean;
  /** Share the inbound rate limit through this Redis. */
  readonly redis?: { readonly url: string } | undefined;
  readonly logger?: RateLimitLogger | undefined;
}

// A global symbol: `requestSignal` from another copy of this module (the CommonJS
// build of another entry point) finds the call too.
const kCall = Symbol.for('inmesh.inboundCall');

type StageResult = InboundAnswer | undefined | Promise<InboundAnswer | undefined>;

interface Stage {
  enter(call: InboundCall): StageResult;
  exit?(call: InboundCall): void;
}

/** One inbound request on its way through the chain. */
class InboundCall implements InboundAdmission, DeadlineHolder {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly stages: readonly Stage[];
  readonly respond: Respond | undefined;
  readonly routeOf: ((req: IncomingMessage) => string | undefined) | undefined;
  route: string | undefined;
  /** Stages entered (their exits run when the response closes). */
  entered = 0;
  done = false;
  deadline = Infinity;
  /** The bound that set `deadline`, ms (for the timeout error's message). */
  boundMs = 0;
  span: InboundSpan | undefined;
  /** Set with `span` by the telemetry stage. */
  telemetry: ServerTelemetry | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Told when the response closes (the inbound side's count of requests in flight). */
  readonly onFinish: (call: InboundCall) => void;
  refusal: RefusalReason | undefined;
  /** The error a refusal stands for (its code is `error.type`). */
  error: InmeshError | undefined;
  /** The abort reason of the app's signal. */
  reason: InmeshError | undefined;
  #controller: AbortController | undefined;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    stages: readonly Stage[],
    routeOf: ((req: IncomingMessage) => string | undefined) | undefined,
    hints: EnterHints | undefined,
    onFinish: (call: InboundCall) => void,
  ) {
    this.req = req;
    this.onFinish = onFinish;
    this.res = res;
    this.stages = stages;
    this.routeOf = routeOf;
    this.respond = hints?.respond;
    this.route = hints?.route;
    (req as unknown as Record<symbol, unknown>)[kCall] = this;
    (res as unknown as Record<symbol, unknown>)[kCall] = this;
    // 'on', not 'once': a response closes once, finish() is idempotent, and once() allocates a wrapper per request.
    res.on('close', onResponseClose);
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.reason !== undefined) this.#controller.abort(this.reason);
    }
    return this.#controller.signal;
  }

  run<T>(fn: () => T): T {
    const { span, telemetry } = this;
    if (span === undefined || telemetry === undefined) return deadlineStorage.run(this, fn);
    return deadlineStorage.run(this, () => telemetry.run(span, fn));
  }

  abort(reason: InmeshError): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.#controller?.abort(reason);
  }

  answer(answer: InboundAnswer): void {
    if (this.respond === undefined) writeAnswer(this.res, answer);
    else this.respond(answer);
  }

  refuse(reason: RefusalReason, error: InmeshError, answer: InboundAnswer): InboundAnswer {
    this.refusal = reason;
    this.error = error;
    return answer;
  }

  finish(): void {
    if (this.done) return;
    this.done = true;
    if (!this.res.writableFinished) this.abort(new AbortedError());
    for (let i = this.entered - 1; i >= 0; i--) (this.stages[i] as Stage).exit?.(this);
    this.onFinish(this);
  }
}

function onResponseClose(this: ServerResponse): void {
  ((this as unknown as Record<symbol, unknown>)[kCall] as InboundCall).finish();
}

/**
 * The AbortSignal of an inbound request that went through the inbound chain
 * (a node:http/Express request, or a Fastify request): aborted with
 * `TimeoutError` (phase `inbound`) when inbound policy answered 504, or with
 * `AbortedError` when the client went away before the response was complete.
 */
export function requestSignal(req: IncomingMessage | { readonly raw: IncomingMessage }): AbortSignal {
  const given: unknown = req; // checked as unknown: plain JavaScript callers pass anything
  const raw: unknown = typeof given === 'object' && given !== null && 'raw' in given ? given.raw : given;
  const call = typeof raw === 'object' && raw !== null ? (raw as Record<symbol, InboundAdmission | undefined>)[kCall] : undefined;
  if (call === undefined) {
    throw new InvalidArgumentError(`requestSignal(req): req did not go through mesh.server() or an inmesh adapter (got ${describeValue(req)})`);
  }
  return call.signal;
}

/** The adapter's `route(req)`; one that throws gives no route (this runs in the response's 'close' event). */
function routeFor(call: InboundCall, req: IncomingMessage): string | undefined {
  try {
    return call.routeOf?.(req);
  } catch {
    return undefined;
  }
}

function onTimeout(call: InboundCall, service: string): void {
  call.timer = undefined;
  if (call.done || call.res.writableFinished) return;
  const error = new TimeoutError('inbound', call.boundMs, { service });
  call.refusal = 'timeout';
  call.error = error;
  if (call.res.headersSent) {
    call.abort(error);
    call.res.destroy();
    return;
  }
  call.answer(refusalAnswer('timeout', error));
  if (call.respond === undefined) dropLateWrites(call.res);
  call.abort(error);
}

/** The inbound side of one mesh: its limits are shared by every server the mesh wraps. */
export class InboundServer {
  readonly #deps: InboundServerDeps;
  readonly #service: string;
  readonly #bucket: InboundBucket | undefined;
  #inFlight = 0;
  /** Every request from arrival until its response closes (probes and refusals included): what a drain waits for. */
  readonly #active = new Set<InboundCall>();
  #draining = false;
  /** drain()'s callback, run each time a request ends while draining. */
  #onEnded: (() => void) | undefined;
  readonly #idleWaiters: (() => void)[] = [];
  readonly #finish = (call: InboundCall): void => {
    this.#active.delete(call);
    this.#onEnded?.();
    if (this.#active.size === 0) for (const resolve of this.#idleWaiters.splice(0)) resolve();
  };

  constructor(deps: InboundServerDeps) {
    this.#deps = deps;
    this.#service = deps.service ?? 'server';
    this.#bucket = createInboundBucket(this.#service, deps.policy.rateLimit, { redis: deps.redis, logger: deps.logger });
  }

  /** An inbound chain with these options (health paths, route), on this server's shared limits. */
  gate(options: InboundOptions = {}): InboundGate {
    if (options.route !== undefined && typeof options.route !== 'function') {
      throw new InvalidArgumentError(`route must be a function (got ${describeValue(options.route)})`);
    }
    const stages = this.#stages(options);
    const routeOf = options.route;
    const active = this.#active;
    const finish = this.#finish;
    const draining = (): boolean => this.#draining;
    const step = (call: InboundCall, from: number): InboundAdmission | undefined | Promise<InboundAdmission | undefined> => {
      for (let i = from; i < stages.length; i++) {
        const out = (stages[i] as Stage).enter(call);
        if (out === undefined) {
          call.entered = i + 1;
          continue;
        }
        if (out instanceof Promise) {
          return out.then((answer) => {
            if (call.done) return undefined; // the client left while the stage waited
            if (answer !== undefined) {
              call.answer(answer);
              return undefined;
            }
            call.entered = i + 1;
            return step(call, i + 1);
          });
        }
        call.answer(out);
        return undefined;
      }
      return call;
    };
    return {
      enter(req, res, hints) {
        const call = new InboundCall(req, res, stages, routeOf, hints, finish);
        active.add(call);
        if (draining()) closeAfterResponse(res);
        return step(call, 0);
      },
    };
  }

  /** Builds the stages of INBOUND_ORDER that the policy and options turn on (an absent stage costs nothing). */
  #stages(options: InboundOptions): Stage[] {
    const factories: Record<InboundStageName, () => Stage | undefined> = {
      health: () => this.#healthStage(options.health),
      telemetry: () => this.#telemetryStage(),
      deadline: () => this.#deadlineStage(),
      rateLimit: () => this.#rateLimitStage(),
      concurrency: () => this.#concurrencyStage(),
      timeout: () => timeoutStage(this.#service),
    };
    const stages: Stage[] = [];
    for (const name of INBOUND_ORDER) {
      const stage = factories[name]();
      if (stage !== undefined) stages.push(stage);
    }
    return stages;
  }

  #healthStage(options: HealthOptions | undefined): Stage | undefined {
    const { liveness, readiness } = healthPaths(options);
    if (liveness === undefined && readiness === undefined) return undefined;
    const closing = this.#deps.closing;
    return {
      enter(call) {
        const method = call.req.method;
        if (method !== 'GET' && method !== 'HEAD') return undefined;
        const path = pathOf(call.req.url);
        if (path === liveness) return OK;
        if (path === readiness) return closing() ? CLOSING : OK;
        return undefined;
      },
    };
  }

  #telemetryStage(): Stage | undefined {
    const telemetry = this.#deps.telemetry;
    if (telemetry === undefined) return undefined;
    return {
      enter(call) {
        call.telemetry = telemetry;
        call.span = telemetry.start(call.req);
        return undefined;
      },
      exit(call) {
        const { req, res, refusal } = call;
        const error = call.error ?? call.reason;
        telemetry.end(call.span as InboundSpan, {
          status: res.headersSent ? res.statusCode : undefined,
          route: call.route ?? routeFor(call, req),
          errorType: error?.code,
          refusal,
        });
      },
    };
  }

  #deadlineStage(): Stage {
    const requestTimeout = this.#deps.policy.timeouts.request;
    const service = this.#service;
    return {
      enter(call) {
        const budget = callerBudgetMs(call.req.headers);
        if (budget !== undefined && budget <= 0) {
          const error = new TimeoutError('inbound', 0, { service });
          return call.refuse('deadline_expired', error, refusalAnswer('deadline_expired', error));
        }
        const bound = budget === undefined ? requestTimeout : requestTimeout > 0 ? Math.min(budget, requestTimeout) : budget;
        if (bound > 0) {
          call.boundMs = bound;
          call.deadline = performance.now() + bound;
        }
        return undefined;
      },
    };
  }

  #rateLimitStage(): Stage | undefined {
    const bucket = this.#bucket;
    if (bucket === undefined) return undefined;
    const rate = this.#deps.policy.rateLimit;
    const error = new RateLimitedError(this.#service, { limit: `inbound rate limit (${rate?.requestsPerSecond ?? 0} requests/s)` });
    const refused = refusalAnswer('rate_limited', error, bucket.retryAfterSeconds);
    return {
      enter(call) {
        const ok = bucket.take();
        if (ok === true) return undefined;
        if (ok === false) return call.refuse('rate_limited', error, refused);
        return ok.then((got) => (got ? undefined : call.refuse('rate_limited', error, refused)));
      },
    };
  }

  #concurrencyStage(): Stage | undefined {
    const max = this.#deps.policy.maxConcurrent;
    if (max <= 0) return undefined;
    const error = new LoadShedError(this.#service, `inbound maxConcurrent (${max})`);
    const refused = refusalAnswer('load_shed', error, SHED_RETRY_AFTER_SECONDS);
    return {
      enter: (call) => {
        if (this.#inFlight >= max) return call.refuse('load_shed', error, refused);
        this.#inFlight++;
        return undefined;
      },
      exit: () => {
        this.#inFlight--;
      },
    };
  }

  /**
   * Requests holding an `inbound.maxConcurrent` slot now (in the app, or
   * answered and not yet closed); undefined when `maxConcurrent` is 0, where
   * nothing is counted. Read-only (the admin endpoint reads it).
   */
  get inFlight(): number | undefined {
    return this.#deps.policy.maxConcurrent > 0 ? this.#inFlight : undefined;
  }

  /** Requests in flight, whatever the limits: arrived, response not yet closed (what a drain waits for). */
  get active(): number {
    return this.#active.size;
  }

  /**
   * Starts draining: every response not yet started, and every one of a
   * request arriving from now on, carries `Connection: close`, so that each
   * keep-alive socket is closed by the server after its current response
   * instead of being reset while a client sends on it. `onEnded` runs each
   * time a request ends from then on (a response already sent with
   * keep-alive leaves its socket idle: the caller closes it). Idempotent.
   */
  drain(onEnded?: () => void): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#onEnded = onEnded;
    for (const call of this.#active) closeAfterResponse(call.res);
  }

  /** Resolves once no request is in flight. */
  idle(): Promise<void> {
    if (this.#active.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Frees what the inbound side holds (the shared rate limit's Redis connection). */
  async close(): Promise<void> {
    await this.#bucket?.close();
  }
}

/** `Connection: close` on a response whose headers are not sent yet: node:http then ends the socket after it. */
function closeAfterResponse(res: ServerResponse): void {
  if (!res.headersSent) res.setHeader('connection', 'close');
}

function timeoutStage(service: string): Stage {
  return {
    enter(call) {
      const left = call.deadline - performance.now();
      if (left === Infinity) return undefined;
      call.timer = setTimeout(onTimeout, Math.max(0, left), call, service);
      return undefined;
    },
    exit(call) {
      if (call.timer !== undefined) clearTimeout(call.timer);
    },
  };
}
