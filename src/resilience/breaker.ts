/**
 * The error-rate circuit breaker of one upstream (policy `circuitBreaker`), an
 * adapter over opossum. This is the SDK-only Hystrix-style breaker (closed,
 * open, half-open over a failure rate in a rolling window); it is *not* Envoy's
 * "circuit breaking" (that is `limits`, see limits.ts) and not outlier
 * detection (per-host ejection, in the balancer).
 *
 * Semantics, in our words (opossum's quirks are contained here):
 * - A call is a failure when it ends with an UpstreamError, TimeoutError,
 *   NoEndpointsError, RetryBudgetExhaustedError, an untranslated (non-inmesh)
 *   error, or a final 5xx *response*. The 5xx response is still returned to
 *   the caller: it travels through opossum inside an internal marker and is
 *   unwrapped at this boundary.
 * - Partial outages are not the breaker's business: a failed call counts only
 *   when `deps.answering()` is false, i.e. no non-ejected endpoint of the
 *   upstream answered its last finished attempt with a success. While some
 *   endpoint answers, outlier detection, retries and panic mode handle the
 *   failing ones, and opening the circuit would turn a partial outage into a
 *   full one (Envoy has no error-rate breaker at all for this reason). opossum
 *   has no "ignore" outcome: a failure not counted this way is filtered through
 *   `errorFilter`, which opossum records as a success; that dilutes the window,
 *   so when a partial outage turns total the circuit opens at most one
 *   `window` later than it would otherwise.
 * - Caller aborts, LoadShedError, RateLimitedError and every other local
 *   refusal are not evidence about the upstream and never count.
 * - No decision before `minimumRequests` calls in the window (opossum
 *   `volumeThreshold`); then the circuit opens when the failure rate is at or
 *   above `errorThresholdPercent`.
 * - Open: calls fail fast with CircuitOpenError (opossum's EOPENBREAKER as
 *   `cause`); the inner handler is not called.
 * - After `halfOpenAfter` one probe is let through (every other call still
 *   fails fast): success closes, failure reopens. A probe that ends in a
 *   not-counted outcome (say, the caller aborted it) proves nothing, so it
 *   neither closes the circuit nor counts as a failure: the circuit reopens and
 *   the next probe comes after another `halfOpenAfter`.
 * - opossum's own `timeout` is off: the deadline layers own time.
 *
 * opossum's default `rollingPercentilesEnabled: true` concatenates and sorts
 * every latency of the window on each failure, which makes a failing call an
 * order of magnitude dearer (docs/benchmarks.md, "Library costs behind the
 * design choices"), hence the setting below.
 */
import CircuitBreaker from 'opossum';
import { CircuitOpenError, ClosedError, ErrorCodes, isInmeshError } from '../errors.ts';
import type { Handler, Layer, MeshRequest, MeshResponse } from '../core/types.ts';
import type { ResolvedUpstream } from '../policy/types.ts';

export type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * What the breaker factory uses of the assembler's deps. opossum reads
 * `Date.now()` and its own timers and takes no clock, so tests use short
 * windows and await the state events.
 */
export interface BreakerDeps {
  /** Called on every state change (for telemetry). Errors thrown here are swallowed. */
  readonly onStateChange?: ((state: BreakerState, service: string) => void) | undefined;
  /**
   * Whether some endpoint of the upstream is answering (the balancer's view,
   * passed structurally so resilience/ does not depend on balancer/). While it
   * returns true a failed call does not count. Absent: every failure counts.
   */
  readonly answering?: (() => boolean) | undefined;
  /**
   * Failures that prove the callee answered (a guarded resource's `neverRetry`
   * errors, such as a constraint violation): never counted, and in half-open
   * they close the circuit as a success does. Absent: none.
   */
  readonly answered?: ((error: unknown) => boolean) | undefined;
}

/** A Layer that also exposes the breaker's state and must be closed with the mesh. */
export interface BreakerLayer extends Layer {
  readonly state: BreakerState;
  /** Shut the opossum instance down (its timers stop); later calls fail with ClosedError. Idempotent. */
  close(): Promise<void>;
}

/**
 * Whether an error that ended a call counts against the upstream's error rate.
 * Our own name for the decision; opossum's `errorFilter` is its inverse.
 */
export function countsAsUpstreamFailure(error: unknown): boolean {
  if (error instanceof FailedResponse) return true;
  if (isInmeshError(error)) {
    switch (error.code) {
      case ErrorCodes.UPSTREAM:
      case ErrorCodes.TIMEOUT:
      case ErrorCodes.NO_ENDPOINTS:
      case ErrorCodes.RETRY_BUDGET:
        return true;
      default:
        // ABORTED, LOAD_SHED, RATE_LIMITED, CIRCUIT_OPEN, CLOSED, INVALID_*,
        // REGISTRY: local decisions or set-up problems, not the upstream's doing.
        return false;
    }
  }
  // An untranslated abort (DOMException or undici's RequestAbortedError) is the
  // caller's doing; any other untranslated error is a transport failure.
  if (error instanceof Error && (error.name === 'AbortError' || (error as { code?: unknown }).code === 'UND_ERR_ABORTED')) {
    return false;
  }
  return true;
}

/** Carries a final 5xx response through opossum as a rejection, so that it counts; unwrapped below. */
class FailedResponse extends Error {
  readonly response: MeshResponse;
  constructor(response: MeshResponse) {
    super(`status ${response.statusCode}`);
    this.name = 'FailedResponse';
    this.response = response;
  }
}

function failOn5xx(res: MeshResponse): MeshResponse {
  if (res.statusCode >= 500) throw new FailedResponse(res);
  return res;
}

/**
 * The action opossum runs, with the inner handler as `this` (`breaker.call(next, req)`,
 * opossum's documented form of `fire` with a context, one argument fewer to copy):
 * the inner handler, a final 5xx turned into a rejection (one promise, no async frame).
 */
function callThrough(this: Handler, req: MeshRequest): Promise<MeshResponse> {
  return this(req).then(failOn5xx);
}

/** Smallest bucket opossum gets, ms: finer buckets only add timer wake-ups. */
const MIN_BUCKET_MS = 10;
/** Buckets of the rolling window (opossum's default): the window slides in tenths. */
const MAX_BUCKETS = 10;

/**
 * The per-upstream error-rate breaker, or undefined when `circuitBreaker.enabled`
 * is false (an unused breaker costs nothing on the call path).
 */
export function createBreakerLayer(upstream: Readonly<ResolvedUpstream>, deps: BreakerDeps = {}): BreakerLayer | undefined {
  const cfg = upstream.circuitBreaker;
  if (!cfg.enabled) return undefined;
  const service = upstream.name;

  const answering = deps.answering;
  const answered = deps.answered;

  const buckets = Math.max(1, Math.min(MAX_BUCKETS, Math.floor(cfg.window / MIN_BUCKET_MS)));

  const breaker = new CircuitBreaker<[MeshRequest], MeshResponse>(callThrough, {
    name: `inmesh:${service}`,
    // One owner of time: the deadline and per-try timeout layers.
    timeout: false,
    // opossum opens when the rate is *above* its threshold; ours (like Hystrix
    // and Resilience4j) means *at or above*.
    errorThresholdPercentage: Math.max(0, cfg.errorThresholdPercent - 1e-9),
    volumeThreshold: Math.max(0, Math.ceil(cfg.minimumRequests)),
    rollingCountTimeout: cfg.window,
    rollingCountBuckets: buckets,
    resetTimeout: cfg.halfOpenAfter,
    // volumeThreshold already keeps one early failure from opening the circuit;
    // a warm-up would also hide a dead upstream for a whole window at start-up.
    allowWarmUp: false,
    // See the header: dear on every failure, and no latency stats are published from here.
    rollingPercentilesEnabled: false,
    // One timer fewer: state reaches telemetry through onStateChange.
    enableSnapshots: false,
    // opossum calls errorFilter(error, ...args); true means "do not count".
    errorFilter: (error: unknown) => {
      if (answered?.(error) === true) return true;
      if (countsAsUpstreamFailure(error) && (answering === undefined || !answering())) return false;
      // opossum reports a filtered error as a success, which would close a
      // half-open circuit on no evidence: reopen instead (see the header).
      if (breaker.halfOpen) breaker.open();
      return true;
    },
  });

  let state: BreakerState = 'closed';
  const report = (next: BreakerState): void => {
    if (next === state) return;
    state = next;
    try {
      deps.onStateChange?.(next, service);
    } catch {
      // A telemetry hook never breaks a call.
    }
  };
  breaker.on('open', () => report('open'));
  breaker.on('halfOpen', () => report('half-open'));
  breaker.on('close', () => report('closed'));

  let closed = false;

  const translate = (error: unknown): MeshResponse => {
    if (error instanceof FailedResponse) return error.response;
    if (error instanceof Error && CircuitBreaker.isOurError(error)) {
      const code = (error as { code?: unknown }).code;
      if (code === 'EOPENBREAKER') throw new CircuitOpenError(service, { cause: error });
      if (code === 'ESHUTDOWN') throw new ClosedError(`circuit breaker of ${service}`, { service, cause: error });
    }
    throw error;
  };

  const layer = ((next: Handler): Handler =>
    (req) =>
      breaker.call(next, req).then(undefined, translate)) as BreakerLayer;

  Object.defineProperty(layer, 'state', { get: () => state, enumerable: true });
  Object.defineProperty(layer, 'close', {
    value: (): Promise<void> => {
      if (!closed) {
        closed = true;
        // Clears the reset timer, the warm-up timer and the bucket interval.
        breaker.shutdown();
      }
      return Promise.resolve();
    },
  });
  return layer;
}
