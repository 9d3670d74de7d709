/**
 * guard: runs a call to a non-HTTP resource (cache, database, queue) under a
 * resource policy — total and per-try timeout, retries with backoff and the
 * retry budget, the error-rate breaker, a concurrency limit with load
 * shedding, a rate limit (local or shared through Redis). The chain is
 * chain.ts's, the one assembler for `Guard` and `mesh.guard()`.
 *
 * When a failure is retried (the resource's classification, `classify()`):
 * - never, when its code or name is in `neverRetry` (wins over everything);
 * - for any call, when a predicate in code says so, or its code or name is in `retryOn`;
 * - only for an idempotent call (the call says `idempotent: true`, or the
 *   resource `retries.idempotent`), when it is a per-try timeout, a connect
 *   failure or a reset: the operation may have run, so only an operation that
 *   may run twice is tried again;
 * - never otherwise (an error reply such as WRONGTYPE, a uniqueness violation).
 *
 * A name with no policy calls the function directly, with no signal and no timer.
 */
import { EMPTY_OPTIONS, callOverridesOf } from '../core/call-options.ts';
import type { CallOptions, FailureVerdict, MeshRequest, ResourceCallInfo } from '../core/types.ts';
import { InvalidArgumentError, isInmeshError, ErrorCodes } from '../errors.ts';
import { describeValue } from '../internal/describe.ts';
import { POLICY_DEFAULTS as D } from '../policy/defaults.ts';
import { MAX_RETRY_ATTEMPTS } from '../policy/schema.ts';
import type { ResolvedResource } from '../policy/types.ts';
import type { BreakerState } from '../resilience/breaker.ts';
import { failureKind } from '../resilience/classify.ts';
import { assembleResourceChain, errorNames, upstreamView, type GuardRequest, type GuardResponse, type ResourceChain, type ResourceChainDeps } from './chain.ts';

/** How a resource is guarded, given in code (the `resources:` block of the policy document is the other way). */
export interface ResourcePolicy {
  /** Total time for the call, all tries and backoff included, in ms. @default none */
  readonly timeout?: number;
  /** Time for one try, in ms. @default none */
  readonly perTryTimeout?: number;
  /** Retries after the first try, 0 to 10 (as the document's retries.attempts). @default 0 */
  readonly retries?: number;
  /** Backoff base and cap between tries, in ms. @default the policy defaults (retries.backoff) */
  readonly retryBaseInterval?: number;
  readonly retryMaxInterval?: number;
  /** Calls in flight at once; above it a call waits (up to maxPendingRequests) or is shed with LoadShedError. @default unlimited */
  readonly maxRequests?: number;
  /** Calls waiting for a slot. @default 0 (shed at once) */
  readonly maxPendingRequests?: number;
  /** Error codes or names retried for any call (e.g. ECONNRESET, READONLY, ETIMEDOUT). */
  readonly retryOn?: readonly string[];
  /** Error codes or names never retried (e.g. 23505, WRONGTYPE). */
  readonly neverRetry?: readonly string[];
  /** Predicate: true = retry for any call, false = never; wins over retryOn (not over neverRetry). */
  readonly isRetryable?: (error: unknown) => boolean;
  /** Every call to this resource is idempotent. @default false */
  readonly idempotent?: boolean;
}

/** Per-call options, named as mesh.request's, plus what the span reports. */
export interface GuardOptions extends Pick<CallOptions, 'timeout' | 'perTryTimeout' | 'retries' | 'idempotent'> {
  readonly signal?: AbortSignal;
  /** Predicate for this call: true = retry for any call, false = never; wins over the policy's retryOn (not over neverRetry). */
  readonly isRetryable?: (error: unknown) => boolean;
  /** `db` (default) or `messaging`: which OpenTelemetry conventions the span follows. */
  readonly kind?: 'db' | 'messaging';
  /** `db.system.name` / `messaging.system`, e.g. `redis`, `postgresql`, `rabbitmq`. */
  readonly system?: string;
  /** `db.operation.name` / `messaging.operation.name`, e.g. `GET`, `SELECT`, `publish`. */
  readonly operation?: string;
  /** `db.collection.name` / `messaging.destination.name`. */
  readonly target?: string;
}

/** The guarded call: returns a value, a Promise or any thenable (a knex or Mongoose query), awaited inside the try. */
export type GuardedFn<T> = (signal: AbortSignal | undefined) => PromiseLike<T> | T;

/** The state of one resource, as the admin view reads it. */
export interface ResourceState {
  readonly name: string;
  /** Undefined when the resource has no breaker. */
  readonly breaker: BreakerState | undefined;
  readonly inFlight: number;
  readonly pending: number;
  readonly maxRequests: number;
  readonly maxPendingRequests: number;
  readonly rateLimit: { readonly requestsPerSecond: number; readonly burst: number; readonly shared: boolean } | undefined;
  readonly retryBudget: { readonly active: number; readonly retries: number; readonly limit: number } | undefined;
}

function listed(list: readonly string[], names: readonly string[]): boolean {
  return list.length > 0 && names.some((n) => list.includes(n));
}

/**
 * The resource's verdict on a failure (see the header). Our own errors are
 * classified by kind: a per-try timeout is `idempotent`, a local refusal `never`.
 */
export function classify(resource: Readonly<ResolvedResource>, error: unknown, isRetryable?: (error: unknown) => boolean): FailureVerdict {
  const names = errorNames(error);
  if (listed(resource.retries.neverRetry, names)) return 'never';
  if (isInmeshError(error)) {
    // A per-try timeout: the operation may have run. Everything else of ours is a local decision.
    return error.code === ErrorCodes.TIMEOUT && (error as { phase?: string }).phase === 'attempt' ? 'idempotent' : 'never';
  }
  if (isRetryable !== undefined) return isRetryable(error) ? 'any' : 'never';
  if (listed(resource.retries.retryOn, names)) return 'any';
  const kind = failureKind(error);
  return kind === 'connect-failure' || kind === 'reset' || kind === 'timeout' ? 'idempotent' : 'never';
}

function checkList(name: string, field: string, v: unknown): readonly string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x !== '')) {
    throw new InvalidArgumentError(`resource ${name}: ${field} must be a list of error codes or names (got ${describeValue(v)})`);
  }
  return v as readonly string[];
}

/** A number of the policy given in code; an integer field with no max may be Infinity (unlimited). */
function checkNumber(name: string, field: string, v: unknown, integer: boolean, min: number, max = Infinity): number | undefined {
  if (v === undefined) return undefined;
  const whole = Number.isInteger(v) || (v === Infinity && max === Infinity);
  if (!(typeof v === 'number' && v >= min && v <= max && (integer ? whole : Number.isFinite(v)))) {
    const range = max === Infinity ? `>= ${min}` : `from ${min} to ${max}`;
    throw new InvalidArgumentError(`resource ${name}: ${field} must be ${integer ? 'an integer' : 'a number'} ${range} (got ${describeValue(v)})`);
  }
  return v;
}

/**
 * A policy given in code, resolved: what is given and nothing more (no
 * breaker, no rate limit, no budget: those come from the policy document).
 */
export function resourceFromCode(name: string, p: ResourcePolicy): ResolvedResource {
  // Checked for callers without types (JavaScript, a parsed file).
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
  if (typeof p !== 'object' || p === null) throw new InvalidArgumentError(`resource ${name}: the policy must be an object (got ${describeValue(p)})`);
  if (p.isRetryable !== undefined && typeof p.isRetryable !== 'function') {
    throw new InvalidArgumentError(`resource ${name}: isRetryable must be a function (got ${describeValue(p.isRetryable)})`);
  }
  if (p.idempotent !== undefined && typeof p.idempotent !== 'boolean') {
    throw new InvalidArgumentError(`resource ${name}: idempotent must be true or false (got ${describeValue(p.idempotent)})`);
  }
  const base = checkNumber(name, 'retryBaseInterval', p.retryBaseInterval, false, 1) ?? D.retries.backoffBase;
  const max = checkNumber(name, 'retryMaxInterval', p.retryMaxInterval, false, 1) ?? Math.max(base, D.retries.backoffMax);
  return {
    name,
    timeouts: { request: checkNumber(name, 'timeout', p.timeout, false, 0) ?? 0, perTry: checkNumber(name, 'perTryTimeout', p.perTryTimeout, false, 0) ?? 0 },
    retries: {
      // The document's bounds of retries.attempts: retries are bounded in count.
      attempts: checkNumber(name, 'retries', p.retries, true, 0, MAX_RETRY_ATTEMPTS) ?? 0,
      retryOn: checkList(name, 'retryOn', p.retryOn) ?? [],
      neverRetry: checkList(name, 'neverRetry', p.neverRetry) ?? [],
      backoff: { base, max },
      idempotent: p.idempotent ?? false,
      budget: undefined,
    },
    limits: {
      maxRequests: checkNumber(name, 'maxRequests', p.maxRequests, true, 1) ?? Infinity,
      maxPendingRequests: checkNumber(name, 'maxPendingRequests', p.maxPendingRequests, true, 0) ?? 0,
    },
    circuitBreaker: { ...D.circuitBreaker, enabled: false },
    rateLimit: undefined,
  };
}

/** One resource: its policy, its chain (built on first use), its classification. */
export class ResourceRuntime {
  readonly name: string;
  readonly resource: Readonly<ResolvedResource>;
  readonly #chain: ResourceChain;
  readonly #upstream: ReturnType<typeof upstreamView>;
  readonly #isRetryable: ((error: unknown) => boolean) | undefined;
  readonly #classify: (error: unknown) => FailureVerdict;

  constructor(resource: Readonly<ResolvedResource>, deps: ResourceChainDeps, isRetryable?: (error: unknown) => boolean) {
    this.name = resource.name;
    this.resource = resource;
    this.#upstream = upstreamView(resource);
    this.#chain = assembleResourceChain(resource, deps);
    this.#isRetryable = isRetryable;
    this.#classify = (error) => classify(resource, error, isRetryable);
  }

  /** The layers present, outermost first (tests). */
  get layerNames(): readonly string[] {
    return this.#chain.names;
  }

  run<T>(name: string, fn: GuardedFn<T>, options: GuardOptions | undefined): Promise<T> {
    let req: GuardRequest;
    try {
      req = this.#request(name, fn, options);
    } catch (error) {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the client's own failure passes through unchanged
      return Promise.reject(error);
    }
    return this.#chain.handler(req).then((res) => (res as GuardResponse).value as T);
  }

  #request<T>(name: string, fn: GuardedFn<T>, options: GuardOptions | undefined): GuardRequest {
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- checked for callers without types
    if (options !== undefined && options !== null && typeof options !== 'object') {
      throw new InvalidArgumentError(`guard(${JSON.stringify(name)}): options must be an object (got ${describeValue(options)})`);
    }
    const o = options ?? {};
    if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
      throw new InvalidArgumentError(`signal must be an AbortSignal (got ${describeValue(o.signal)})`);
    }
    if (o.isRetryable !== undefined && typeof o.isRetryable !== 'function') {
      throw new InvalidArgumentError(`isRetryable must be a function (got ${describeValue(o.isRetryable)})`);
    }
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- checked for callers without types
    if (o.kind !== undefined && o.kind !== 'db' && o.kind !== 'messaging') {
      throw new InvalidArgumentError(`kind must be 'db' or 'messaging' (got ${describeValue(o.kind)})`);
    }
    for (const key of ['system', 'operation', 'target'] as const) {
      if (o[key] !== undefined && typeof o[key] !== 'string') throw new InvalidArgumentError(`${key} must be a string (got ${describeValue(o[key])})`);
    }
    const callOptions = options === undefined ? EMPTY_OPTIONS : callOverridesOf(o);
    const info: ResourceCallInfo = { kind: o.kind ?? 'db', system: o.system, operation: o.operation, target: o.target };
    const isRetryable = o.isRetryable ?? this.#isRetryable;
    const upstream = this.#upstream;
    const request: MeshRequest & { call: GuardRequest['call'] } = {
      service: name,
      upstream,
      policy: upstream,
      method: 'CALL',
      path: '',
      host: name,
      hostname: name,
      protocol: 'http:',
      headers: Object.create(null) as MeshRequest['headers'],
      body: undefined,
      signal: o.signal,
      attemptControl: undefined,
      options: callOptions,
      deadline: Infinity,
      deadlineMs: 0,
      tried: undefined,
      attempt: 0,
      endpoint: undefined,
      classifyFailure: isRetryable === this.#isRetryable ? this.#classify : (error) => classify(this.resource, error, isRetryable),
      resource: info,
      call: fn,
    };
    return request;
  }

  state(): ResourceState {
    const { breaker, limit, rateLimit, retry } = this.#chain.layers;
    const budget = retry?.budget;
    const rate = this.resource.rateLimit;
    return {
      name: this.name,
      breaker: breaker?.state,
      inFlight: limit?.inFlight ?? 0,
      pending: limit?.pending ?? 0,
      maxRequests: this.resource.limits.maxRequests,
      maxPendingRequests: this.resource.limits.maxPendingRequests,
      rateLimit: rate === undefined ? undefined : { requestsPerSecond: rate.requestsPerSecond, burst: rate.burst, shared: rateLimit?.shared ?? rate.shared },
      retryBudget: budget === undefined ? undefined : { active: budget.active, retries: budget.retries, limit: budget.limit },
    };
  }

  close(): Promise<void> {
    return this.#chain.close();
  }
}

/** Options of a Guard that the mesh sets: resolved resources from the policy document and the chain's dependencies. */
export interface GuardSetup extends ResourceChainDeps {
  /** Resources of the policy document (`policy.resources`). */
  readonly resources?: Readonly<Record<string, Readonly<ResolvedResource>>> | undefined;
}

/** `fn(undefined)` as a promise: what it returns, or what it throws as the rejection (the client's own failure, unchanged). */
export function callUnguarded<T>(fn: GuardedFn<T>): Promise<T> {
  try {
    return Promise.resolve(fn(undefined));
  } catch (error) {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the client's own failure passes through unchanged
    return Promise.reject(error);
  }
}

/** `fn` wrapped for repeated use through `guarder.guard(name, …)`: the signal first, then the arguments (Guard's and the mesh's guarded()). */
export function guardedWith<A extends unknown[], T>(
  guarder: Pick<Guard, 'guard'>,
  name: string,
  fn: (signal: AbortSignal | undefined, ...args: A) => PromiseLike<T> | T,
  options: GuardOptions | undefined,
): (...args: A) => Promise<T> {
  if (typeof fn !== 'function') throw new InvalidArgumentError(`guarded(${JSON.stringify(name)}): fn must be a function (got ${describeValue(fn)})`);
  return (...args: A): Promise<T> => guarder.guard(name, (signal) => fn(signal, ...args), options);
}

/** A call with options for a name that has no policy: the chain with no per-resource state (shared by all such names). */
const UNPOLICED: ResolvedResource = resourceFromCode('', {});

/** Guards calls by resource name; a name with no policy calls fn directly (no signal, no timer). */
export class Guard {
  readonly #runtimes = new Map<string, ResourceRuntime>();
  readonly #deps: ResourceChainDeps;
  #unpoliced: ResourceRuntime | undefined;

  constructor(policies: Readonly<Record<string, ResourcePolicy>> = {}, setup: GuardSetup = {}) {
    this.#deps = setup;
    const predicates = new Map<string, (error: unknown) => boolean>();
    for (const [name, policy] of Object.entries(policies)) {
      if (policy.isRetryable !== undefined) predicates.set(name, policy.isRetryable);
    }
    try {
      for (const [name, resource] of Object.entries(setup.resources ?? {})) this.#runtimes.set(name, new ResourceRuntime(resource, setup));
      for (const [name, policy] of Object.entries(policies)) {
        this.#runtimes.set(name, new ResourceRuntime(resourceFromCode(name, policy), setup, predicates.get(name)));
      }
    } catch (error) {
      void this.close();
      throw error;
    }
  }

  /** Runs `fn(signal)` under the policy of resource `name`; returns what fn returns, or a typed error. */
  guard<T>(name: string, fn: GuardedFn<T>, options?: GuardOptions): Promise<T> {
    if (typeof fn !== 'function') return Promise.reject(new InvalidArgumentError(`guard(${JSON.stringify(name)}): fn must be a function (got ${describeValue(fn)})`));
    const runtime = this.#runtimes.get(name);
    if (runtime !== undefined) return runtime.run(name, fn, options);
    // No policy and no option: the call itself, no signal, no timer.
    if (options === undefined) return callUnguarded(fn);
    this.#unpoliced ??= new ResourceRuntime(UNPOLICED, { telemetry: this.#deps.telemetry });
    return this.#unpoliced.run(name, fn, options);
  }

  /** `fn` wrapped for repeated use: each call runs under the resource's policy, the signal first, then the arguments. */
  guarded<A extends unknown[], T>(
    name: string,
    fn: (signal: AbortSignal | undefined, ...args: A) => PromiseLike<T> | T,
    options?: GuardOptions,
  ): (...args: A) => Promise<T> {
    return guardedWith(this, name, fn, options);
  }

  /** The state of every resource with a policy. */
  states(): ResourceState[] {
    return [...this.#runtimes.values()].map((r) => r.state());
  }

  /** The runtime of a resource with a policy (tests, admin). */
  runtime(name: string): ResourceRuntime | undefined {
    return this.#runtimes.get(name);
  }

  /** Stops the breakers' timers, rejects queued calls, disconnects a shared rate limit's Redis. */
  async close(): Promise<void> {
    await Promise.all([...this.#runtimes.values(), ...(this.#unpoliced === undefined ? [] : [this.#unpoliced])].map((r) => r.close()));
  }
}
