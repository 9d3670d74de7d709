/**
 * Dapr exporter: one `Resiliency` (dapr.io/v1alpha1) holding a timeout, a retry
 * and (when enabled) a circuit-breaker policy per upstream, each named for the
 * upstream and referenced from `targets.apps.<app-id>`; the `defaults` block
 * becomes Dapr's default app policies (`DefaultAppTimeoutPolicy`, …), which
 * apply to every app id the caller invokes without a target of its own. Each
 * resource becomes `targets.components.<name>.outbound` with policies of its
 * own (`<name>-component-timeout`, …): the resource name must be the Dapr
 * component's metadata.name.
 *
 * How Dapr reads what is written here (daprd `pkg/resiliency`, Dapr's
 * resiliency docs):
 * - An app id listed in `targets.apps` takes only the policies its target
 *   names; the `Default*` policies apply to app ids not listed at all.
 * - A timeout policy bounds each attempt (daprd runs it inside the retry loop),
 *   so it carries `timeouts.perTry`; the model's total deadline has no place.
 *   A timeout of `0s` is none, and is written as such, every value explicit.
 * - `maxRetries` counts retries after the first try, as `retries.attempts`;
 *   `0` is written as such: a named retry policy also turns off daprd's built-in
 *   sidecar-to-sidecar retries, which would otherwise still run.
 * - Backoff: `exponential` starts at a fixed 500 ms and grows ×1.5 with ±50 %
 *   randomization up to `maxInterval`; none of that but the cap is settable.
 * - `matching.httpStatusCodes` (Dapr 1.15+) keeps only the listed statuses
 *   retryable; transport errors are always retried. Older versions retry every
 *   error, so the field is left out and reported dropped.
 * - daprd keeps one breaker per app id and method (the invoked path), up to
 *   the target's circuitBreakerCacheSize (default 100) of them; inmesh keeps
 *   one per upstream.
 * - The breaker's `trip` is a CEL expression over the counts of gobreaker
 *   (requests, totalSuccesses, totalFailures, consecutiveSuccesses,
 *   consecutiveFailures, all int), evaluated on each failure; `interval` is a
 *   tumbling window (counts cleared every interval), `timeout` the open time
 *   before half-open, `maxRequests` the probes let through half-open.
 * - A component's outbound target governs the sidecar's calls to that
 *   component (state, pub/sub publish, output bindings) with the same runner
 *   as apps: timeout per attempt, the breaker around each attempt, one breaker
 *   per component. `matching` filters HTTP and gRPC status codes only (from
 *   1.15), which the model's error codes (ECONNRESET, 23505) are not, so it
 *   is not written: every failed operation is retried.
 * - daprd skips a whole Resiliency it cannot decode (it logs and goes on), so what is
 *   written here must already be valid: test/integration/export/dapr*.test.ts
 *   checks every document against the CRD made strict plus daprd's decode rules.
 */
import { ExportError } from '../errors.ts';
import type {
  ResolvedCircuitBreaker,
  ResolvedPolicy,
  ResolvedResource,
  ResolvedResourceRetries,
  ResolvedRetries,
  ResolvedTimeouts,
  ResolvedUpstreamPolicy,
} from '../policy/types.ts';
import { goDuration } from './duration.ts';
import type { ExportedFile, ExportInput, Reporter, TargetExporter } from './types.ts';

/** Dapr versions written for; the first is the default. */
const VERSIONS = ['1.16', '1.15', '1.14'] as const;

/** The first version whose retry policies take `matching` (status-code filters). */
const MATCHING_SINCE = [1, 15] as const;

/** The probes a half-open breaker lets through: inmesh sends one (src/resilience/breaker.ts). */
const HALF_OPEN_PROBES = 1;

const FILE = 'resiliency.yaml';

/** The statuses each status condition of the model retries (src/resilience/classify.ts). */
const STATUS_CONDITIONS: Readonly<Record<string, string>> = {
  '5xx': '500-599',
  'gateway-error': '502-504',
  'retriable-4xx': '409',
};

/** The transport conditions of the model; daprd retries every transport error, listed or not. */
const TRANSPORT_CONDITIONS = ['connect-failure', 'refused-stream', 'reset'] as const;

const NO_POOL = 'daprd manages its connections to an app itself, with no setting';
const NO_LB = 'Dapr service invocation picks an instance through its name-resolution component, with no setting';
const NO_OUTLIER = 'Dapr ejects no single instance (its circuit breakers are per app id and method, over every instance)';
const NO_MATCH =
  "a Resiliency target is a whole app id, with no request matching: calls this route matches get the upstream's policies";
const NO_SPLIT = 'Dapr service invocation has no subsets or traffic split: every instance of an app id takes calls';
const APP_BREAKER =
  'daprd keeps one breaker per app id and method (path), where inmesh keeps one per upstream, and counts every failed call, where inmesh counts a failure only while no endpoint of the upstream answers (a partial outage is left to outlier detection)';
const COMPONENT_BREAKER =
  'daprd keeps one breaker per component and counts each failed attempt (its breaker sits inside the retry loop), where inmesh counts each failed guarded call once, retries included, and does not count a neverRetry error';
const COMPONENT_RETRIES_ALL =
  "Dapr retries every failed operation of a component, whatever its error (its matching filters HTTP and gRPC status codes only, not a client's error codes, so none is written)";

export interface DaprRetryPolicy {
  policy: 'constant' | 'exponential';
  duration?: string;
  maxInterval?: string;
  maxRetries: number;
  matching?: { httpStatusCodes: string };
}

export interface DaprCircuitBreakerPolicy {
  maxRequests: number;
  interval: string;
  timeout: string;
  trip: string;
}

export interface DaprAppTarget {
  timeout?: string;
  retry?: string;
  circuitBreaker?: string;
}

/** One direction of a component target (`components.<name>.outbound|inbound`). */
export interface DaprComponentTarget {
  outbound?: DaprAppTarget;
  inbound?: DaprAppTarget;
}

export interface DaprResiliency {
  apiVersion: 'dapr.io/v1alpha1';
  kind: 'Resiliency';
  metadata: { name: string; namespace: string };
  scopes?: string[];
  spec: {
    policies: {
      timeouts?: Record<string, string>;
      retries?: Record<string, DaprRetryPolicy>;
      circuitBreakers?: Record<string, DaprCircuitBreakerPolicy>;
    };
    targets: {
      apps?: Record<string, DaprAppTarget>;
      /**
       * Component targets (state stores, bindings, pub/sub the caller uses):
       * one `components.<name>.outbound` per resource, named as the component.
       */
      components?: Record<string, DaprComponentTarget>;
    };
  };
}

/** Whether `version` (major.minor) is at least `since`. */
function atLeast(version: string, since: readonly [number, number]): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > since[0] || (major === since[0] && minor >= since[1]);
}

/**
 * The trip expression of an error-rate breaker: at least `minimumRequests`
 * calls counted and failures at or above `errorThresholdPercent` of them, in
 * integer arithmetic (the counts are CEL ints; `100 * f >= p * n` avoids a
 * division and its rounding).
 */
export function tripExpression(breaker: Readonly<ResolvedCircuitBreaker>): string {
  const min = Math.max(0, Math.ceil(breaker.minimumRequests));
  const percent = breaker.errorThresholdPercent;
  if (!Number.isInteger(percent)) {
    // CEL ints only: scale both sides so a fractional percent stays exact.
    const scale = 10 ** (String(percent).split('.')[1]?.length ?? 0);
    return `requests >= ${min} && totalFailures * ${100 * scale} >= requests * ${Math.round(percent * scale)}`;
  }
  return `requests >= ${min} && totalFailures * 100 >= requests * ${percent}`;
}

/** `matching.httpStatusCodes` for a retry policy: ranges and codes, sorted, deduplicated. */
export function httpStatusCodes(retries: Readonly<ResolvedRetries>): string {
  const parts = new Set<string>();
  for (const condition of retries.retryOn) {
    const range = STATUS_CONDITIONS[condition];
    if (range !== undefined) parts.add(range);
  }
  if (retries.retryOn.includes('retriable-status-codes')) for (const code of retries.retriableStatusCodes) parts.add(String(code));
  return [...parts].sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10) || a.localeCompare(b)).join(',');
}

interface Names {
  timeout: string;
  retry: string;
  breaker: string;
}

/** Builds the Resiliency's policies for one upstream (or the defaults) and reports the fields they carry. */
class PolicyWriter {
  readonly timeouts: Record<string, string> = {};
  readonly retries: Record<string, DaprRetryPolicy> = {};
  readonly circuitBreakers: Record<string, DaprCircuitBreakerPolicy> = {};

  private readonly report: Reporter;
  private readonly version: string;

  constructor(report: Reporter, version: string) {
    this.report = report;
    this.version = version;
  }

  /** Writes the call policies of `prefix` (`defaults` or `upstreams.<name>`) under `names`; returns the app target. */
  write(prefix: string, policy: Readonly<ResolvedUpstreamPolicy>, names: Names): DaprAppTarget {
    const target: DaprAppTarget = {};
    target.timeout = this.writeTimeouts(prefix, policy.timeouts, names.timeout);
    this.report.dropped(`${prefix}.timeouts.connect`, NO_POOL);
    this.report.dropped(`${prefix}.timeouts.idle`, NO_POOL);
    target.retry = this.writeRetries(prefix, policy.retries, names.retry);
    const breaker = this.writeBreaker(prefix, policy.circuitBreaker, names.breaker, APP_BREAKER);
    if (breaker !== undefined) target.circuitBreaker = breaker;
    this.dropUnmappable(prefix, policy);
    return target;
  }

  /** Writes the policies of resource `r` under `names`; returns its component's outbound target. */
  writeResource(r: Readonly<ResolvedResource>, names: Names): DaprAppTarget {
    const prefix = `resources.${r.name}`;
    const target: DaprAppTarget = {};
    target.timeout = this.writeTimeouts(prefix, r.timeouts, names.timeout);
    target.retry = this.writeResourceRetries(prefix, r.retries, names.retry);
    const breaker = this.writeBreaker(prefix, r.circuitBreaker, names.breaker, COMPONENT_BREAKER);
    if (breaker !== undefined) target.circuitBreaker = breaker;
    const unlimited = `${FILE} (nothing written: no limit, and Dapr sets none on component operations)`;
    if (r.limits.maxRequests === Number.POSITIVE_INFINITY) this.report.exact(`${prefix}.limits.maxRequests`, unlimited);
    if (r.limits.maxPendingRequests === Number.POSITIVE_INFINITY) this.report.exact(`${prefix}.limits.maxPendingRequests`, unlimited);
    this.report.droppedUnder(`${prefix}.limits`, 'Dapr has no concurrency limit or load shedding for component operations');
    this.report.droppedUnder(`${prefix}.rateLimit`, "Dapr's ratelimit middleware limits HTTP requests into an app; component operations have no rate limit");
    return target;
  }

  /** Refuses a policy name already written (a resource `x` and an upstream `x-component` would share names). */
  private claim(kind: 'timeouts' | 'retries' | 'circuitBreakers', name: string): void {
    if (Object.hasOwn(this[kind], name)) throw new ExportError(`two targets would both write the Dapr ${kind} policy '${name}'; rename the upstream or resource`);
  }

  private writeTimeouts(prefix: string, t: Readonly<Pick<ResolvedTimeouts, 'request' | 'perTry'>>, name: string): string {
    this.claim('timeouts', name);
    const at = `${FILE} spec.policies.timeouts.${name}`;
    const p = `${prefix}.timeouts`;
    if (t.perTry > 0) {
      this.timeouts[name] = goDuration(t.perTry);
      this.report.exact(`${p}.perTry`, at);
      if (t.request > 0) {
        this.report.dropped(`${p}.request`, 'a Dapr timeout bounds each attempt, not the call with its retries: give the caller its own deadline');
      } else {
        this.report.exact(`${p}.request`, `${at} (no total deadline; Dapr has none either)`);
      }
    } else if (t.request > 0) {
      this.timeouts[name] = goDuration(t.request);
      this.report.lossy(
        `${p}.request`,
        'written as the per-attempt timeout (Dapr bounds each attempt, not the call): with retries a call can take (maxRetries + 1) times as long, plus backoff',
        at,
      );
      this.report.exact(`${p}.perTry`, `${at} (0 = no per-attempt timeout of its own; the total stands in)`);
    } else {
      // daprd reads 0s as no timeout.
      this.timeouts[name] = goDuration(0);
      this.report.exact(`${p}.request`, `${at} = 0s (none)`);
      this.report.exact(`${p}.perTry`, `${at} = 0s (none)`);
    }
    return name;
  }

  /** The backoff fields, written the same way for apps and components. */
  private writeBackoff(p: string, at: string): void {
    this.report.lossy(
      `${p}.backoff.max`,
      "Dapr caps its exponential backoff here, but grows it from a fixed 500 ms ×1.5 with ±50 % randomization, not inmesh's full jitter",
      `${at}.maxInterval`,
    );
    this.report.dropped(
      `${p}.backoff.base`,
      "Dapr's exponential backoff starts at a fixed 500 ms (×1.5, ±50 % randomization), not configurable; a constant policy would lose the growth and the cap",
    );
  }

  private writeResourceRetries(prefix: string, r: Readonly<ResolvedResourceRetries>, name: string): string {
    this.claim('retries', name);
    const at = `${FILE} spec.policies.retries.${name}`;
    const p = `${prefix}.retries`;
    this.retries[name] = { policy: 'exponential', maxInterval: goDuration(r.backoff.max), maxRetries: r.attempts };
    this.report.exact(`${p}.attempts`, `${at}.maxRetries`);
    this.writeBackoff(p, at);
    // An empty list is no field of the report (fields.ts).
    if (r.retryOn.length > 0) this.report.lossy(`${p}.retryOn`, `${COMPONENT_RETRIES_ALL}, not only the codes listed`, at);
    if (r.neverRetry.length > 0) this.report.dropped(`${p}.neverRetry`, `${COMPONENT_RETRIES_ALL}: these are retried too; Dapr has no per-error exclusion`);
    if (r.idempotent) this.report.exact(`${p}.idempotent`, `${at} (Dapr retries every operation, timed-out and reset ones included)`);
    else this.report.dropped(`${p}.idempotent`, `${COMPONENT_RETRIES_ALL}, timed-out and reset ones included: keep non-idempotent operations out of a retrying component target`);
    this.report.droppedUnder(`${p}.budget`, 'Dapr has no retry budget');
    return name;
  }

  private writeRetries(prefix: string, r: Readonly<ResolvedRetries>, name: string): string {
    this.claim('retries', name);
    const at = `${FILE} spec.policies.retries.${name}`;
    const p = `${prefix}.retries`;
    const policy: DaprRetryPolicy = { policy: 'exponential', maxInterval: goDuration(r.backoff.max), maxRetries: r.attempts };
    if (prefix === 'defaults') {
      this.report.lossy(
        `${p}.attempts`,
        "daprd's built-in retries of sidecar-to-sidecar connection failures still run beside a default policy (only a named app policy turns them off)",
        `${at}.maxRetries`,
      );
    } else {
      this.report.exact(`${p}.attempts`, `${at}.maxRetries`);
    }
    this.writeBackoff(p, at);

    const transportWhy = `daprd retries every transport failure (${TRANSPORT_CONDITIONS.join(', ')}) whatever the list says; only status codes are filtered`;
    const missingTransport = TRANSPORT_CONDITIONS.filter((c) => !r.retryOn.includes(c));
    const codes = httpStatusCodes(r);
    const codesUsed = r.retryOn.includes('retriable-status-codes');
    if (!atLeast(this.version, MATCHING_SINCE)) {
      const why = `matching.httpStatusCodes needs Dapr 1.15+; Dapr ${this.version} retries every failed call (transport errors and error statuses)`;
      this.report.dropped(`${p}.retryOn`, why);
      if (r.retriableStatusCodes.length > 0) this.report.dropped(`${p}.retriableStatusCodes`, why);
    } else {
      if (codes === '') {
        this.report.lossy(`${p}.retryOn`, `${transportWhy}; with no status condition listed, Dapr also retries error statuses (an empty matching means every status)`, at);
      } else {
        policy.matching = { httpStatusCodes: codes };
        if (missingTransport.length > 0) this.report.lossy(`${p}.retryOn`, transportWhy, `${at}.matching.httpStatusCodes`);
        else this.report.exact(`${p}.retryOn`, `${at}.matching.httpStatusCodes`);
      }
      if (r.retriableStatusCodes.length > 0) {
        if (codesUsed) this.report.exact(`${p}.retriableStatusCodes`, `${at}.matching.httpStatusCodes`);
        else this.report.dropped(`${p}.retriableStatusCodes`, 'inert: retryOn has no retriable-status-codes, so inmesh does not use them either');
      }
    }

    if (r.idempotentOnly) this.report.dropped(`${p}.idempotentOnly`, 'Dapr retries every method; keep non-idempotent calls out of a retrying app target');
    else this.report.exact(`${p}.idempotentOnly`, `${at} (Dapr retries every method)`);
    this.report.droppedUnder(`${p}.budget`, 'Dapr has no retry budget');
    this.report.dropped(`${p}.maxBodyBytes`, "daprd buffers by its own http-max-request-size and does not retry a streamed body");
    if (r.maxRetryAfter === 0) this.report.exact(`${p}.maxRetryAfter`, `${at} (Retry-After ignored; Dapr ignores it as well)`);
    else this.report.dropped(`${p}.maxRetryAfter`, 'Dapr does not honour Retry-After');
    this.retries[name] = policy;
    return name;
  }

  private writeBreaker(prefix: string, b: Readonly<ResolvedCircuitBreaker>, name: string, enabledWhy: string): string | undefined {
    const p = `${prefix}.circuitBreaker`;
    if (!b.enabled) {
      this.report.exact(`${p}.enabled`, `${FILE} (no circuitBreaker for this target)`);
      this.report.droppedUnder(p, 'inert: the breaker is off, so no breaker policy is written');
      return undefined;
    }
    this.claim('circuitBreakers', name);
    const at = `${FILE} spec.policies.circuitBreakers.${name}`;
    this.circuitBreakers[name] = {
      maxRequests: HALF_OPEN_PROBES,
      interval: goDuration(b.window),
      timeout: goDuration(b.halfOpenAfter),
      trip: tripExpression(b),
    };
    const tumbling = 'Dapr counts in a tumbling window (all counts cleared every interval) where inmesh rolls its window';
    this.report.lossy(`${p}.enabled`, enabledWhy, at);
    this.report.lossy(`${p}.errorThresholdPercent`, tumbling, `${at}.trip`);
    this.report.lossy(`${p}.minimumRequests`, tumbling, `${at}.trip`);
    this.report.lossy(`${p}.window`, tumbling, `${at}.interval`);
    this.report.exact(`${p}.halfOpenAfter`, `${at}.timeout`);
    return name;
  }

  /** Reports what Dapr has no place for: balancing, connection pools, outlier detection, rate limits, split. */
  private dropUnmappable(prefix: string, policy: Readonly<ResolvedUpstreamPolicy>): void {
    this.report.droppedUnder(`${prefix}.loadBalancer`, NO_LB);
    this.report.droppedUnder(`${prefix}.split`, NO_SPLIT);
    const o = policy.outlierDetection;
    const off = o.consecutive5xx === 0 && o.consecutiveGatewayErrors === 0;
    const none = `${FILE} (nothing written: off, and Dapr has no outlier detection)`;
    if (o.consecutive5xx === 0) this.report.exact(`${prefix}.outlierDetection.consecutive5xx`, none);
    if (o.consecutiveGatewayErrors === 0) this.report.exact(`${prefix}.outlierDetection.consecutiveGatewayErrors`, none);
    if (o.panicThresholdPercent === 0) this.report.exact(`${prefix}.outlierDetection.panicThresholdPercent`, `${FILE} (nothing written: no panic mode, as in Dapr)`);
    this.report.droppedUnder(`${prefix}.outlierDetection`, off ? `inert: outlier detection is off; ${NO_OUTLIER}` : NO_OUTLIER);
    const l = policy.limits;
    const unlimited = `${FILE} (nothing written: no limit, and daprd sets none on calls out)`;
    if (l.maxPendingRequests === Number.POSITIVE_INFINITY) this.report.exact(`${prefix}.limits.maxPendingRequests`, unlimited);
    if (l.maxRequests === Number.POSITIVE_INFINITY) this.report.exact(`${prefix}.limits.maxRequests`, unlimited);
    if (l.maxRequestsPerConnection === 0) this.report.exact(`${prefix}.limits.maxRequestsPerConnection`, unlimited);
    this.report.droppedUnder(`${prefix}.limits`, NO_POOL);
    this.report.droppedUnder(`${prefix}.rateLimit`, "Dapr's ratelimit middleware limits requests into an app, not one caller's calls out of it");
  }
}

function exportDapr(input: ExportInput, report: Reporter): readonly ExportedFile[] {
  const { policy, service, namespace, targetVersion } = input;
  const writer = new PolicyWriter(report, targetVersion);

  writer.write('defaults', policy.defaults, {
    timeout: 'DefaultAppTimeoutPolicy',
    retry: 'DefaultAppRetryPolicy',
    breaker: 'DefaultAppCircuitBreakerPolicy',
  });
  report.droppedUnder('defaults.discovery', 'app ids are resolved by the name-resolution component (Configuration nameResolution), not the Resiliency');

  const apps: Record<string, DaprAppTarget> = {};
  const appOwner = new Map<string, string>();
  for (const [name, upstream] of Object.entries(policy.upstreams)) {
    const appId = upstream.discovery.service ?? name;
    const other = appOwner.get(appId);
    if (other !== undefined) {
      throw new ExportError(`upstreams.${name} and upstreams.${other} both call app id '${appId}'; a Resiliency holds one target per app id, so merge the two upstreams`);
    }
    appOwner.set(appId, name);
    apps[appId] = writer.write(`upstreams.${name}`, upstream, { timeout: `${name}-timeout`, retry: `${name}-retry`, breaker: `${name}-breaker` });
    reportUpstream(report, name, upstream.discovery.service, appId);
  }
  const components: Record<string, DaprComponentTarget> = {};
  for (const [name, resource] of Object.entries(policy.resources)) {
    components[name] = {
      outbound: writer.writeResource(resource, { timeout: `${name}-component-timeout`, retry: `${name}-component-retry`, breaker: `${name}-component-breaker` }),
    };
    report.exact(`resources.${name}.name`, `${FILE} spec.targets.components.${name} (must equal the Dapr component's metadata.name)`);
  }
  reportInbound(report, policy, service);

  const doc: DaprResiliency = {
    apiVersion: 'dapr.io/v1alpha1',
    kind: 'Resiliency',
    metadata: { name: service === undefined ? 'inmesh' : `inmesh-${service}`, namespace },
    ...(service === undefined ? {} : { scopes: [service] }),
    spec: {
      policies: {
        timeouts: writer.timeouts,
        retries: writer.retries,
        ...(Object.keys(writer.circuitBreakers).length > 0 ? { circuitBreakers: writer.circuitBreakers } : {}),
      },
      targets: { apps, ...(Object.keys(components).length > 0 ? { components } : {}) },
    },
  };
  const callers = service === undefined ? 'every Dapr app of the namespace that loads it (no scopes)' : `app id ${service} only (scopes)`;
  return [
    {
      name: FILE,
      documents: [doc],
      format: 'yaml',
      scope:
        `namespace ${namespace}: calls made by ${callers} to the app ids in targets.apps; the Default* policies to every other app id they call` +
        (Object.keys(components).length > 0 ? `; their operations on the components in targets.components (each named as its resource, which must be the component's metadata.name)` : ''),
    },
  ];
}

/** The upstream's own identity and discovery fields. */
function reportUpstream(report: Reporter, name: string, service: string | undefined, appId: string): void {
  const p = `upstreams.${name}`;
  const target = `${FILE} spec.targets.apps.${appId}`;
  report.exact(`${p}.name`, `${FILE} policy names ${name}-timeout, ${name}-retry, ${name}-breaker`);
  if (service !== undefined) report.exact(`${p}.discovery.service`, target);
  report.droppedUnder(`${p}.discovery.registry`, 'Dapr resolves app ids through the Configuration nameResolution component (consul, kubernetes, mdns), not the Resiliency');
  report.droppedUnder(`${p}.discovery.datacenter`, "Dapr's consul name resolution queries the agent's own datacenter");
  report.droppedUnder(`${p}.discovery.tags`, 'service invocation reaches every instance of an app id');
  report.droppedUnder(`${p}.discovery.passingOnly`, 'the name-resolution component decides (consul: passing only)');
  report.droppedUnder(`${p}.discovery`, 'app ids are resolved by the name-resolution component');
  report.droppedUnder(`${p}.subsets`, NO_SPLIT);
  report.droppedUnder(`${p}.routes`, NO_MATCH);
}

/** inbound governs the caller's own service: nothing of it is a Resiliency field. */
function reportInbound(report: Reporter, policy: Readonly<ResolvedPolicy>, service: string | undefined): void {
  if (service === undefined) return; // the driver dropped inbound.* already
  const inbound = policy.inbound;
  if (inbound.maxConcurrent === 0) report.exact('inbound.maxConcurrent', `${FILE} (nothing written: daprd without dapr.io/app-max-concurrency is unlimited)`);
  else report.dropped('inbound.maxConcurrent', `not a Resiliency field: annotate ${service}'s pod with dapr.io/app-max-concurrency: "${inbound.maxConcurrent}"`);
  report.droppedUnder(
    'inbound.rateLimit',
    "not a Resiliency field: Dapr's middleware.http.ratelimit Component (maxRequestsPerSecond, no burst) in the app's Configuration httpPipeline",
  );
  report.dropped('inbound.timeouts.request', "Dapr has no timeout for the calls its sidecar makes into the app's own service invocation endpoint");
}

export const daprExporter: TargetExporter = {
  target: 'dapr',
  versions: VERSIONS,
  export: exportDapr,
  writesDefaults: true,
  writesResources: true,
};
