/**
 * The balance layer: a fresh pick on every attempt (so a retry can move to
 * another host), excluding the endpoints this call already tried when another
 * one exists, and exactly one `pick.done(outcome, latencyMs)` per attempt so
 * that least-request, peak-EWMA and outlier detection (per-endpoint health)
 * see every outcome. Nothing to pick → NoEndpointsError: "all endpoints ejected"
 * when endpoints are known but outlier detection ejected every one, and, while
 * discovery is failing, the registry's last error as `cause` and the staleness
 * of the endpoint set in the message.
 *
 * With a `split` in the call's policy, the subset is chosen once per call
 * (weighted, with the mesh's random source) and kept on `req.subset`, so every
 * retry picks from the same subset's balancer. A subset with no endpoint to
 * pick fails the call with a NoEndpointsError naming the subset: no fallback to
 * other endpoints (src/policy/defaults.ts `split`).
 */
import type { LoadBalancer, PickContext } from '../balancer/types.ts';
import { NoEndpointsError } from '../errors.ts';
import type { SubsetBalancers } from '../balancer/subsets.ts';
import type { ResolvedHashOn, ResolvedSplitTarget, ResolvedUpstream } from '../policy/types.ts';
import { classify, outcomeOfStatus } from '../resilience/classify.ts';
import type { Handler, Layer, MeshRequest } from '../core/types.ts';

function headerValue(req: MeshRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The ring_hash key of a request: the per-call `hashKey`, else the policy's `hashOn` source. */
export function hashKeyOf(req: MeshRequest): string | undefined {
  if (req.options.hashKey !== undefined) return req.options.hashKey;
  const lb = req.policy.loadBalancer;
  if (lb.policy !== 'ring_hash') return undefined;
  const on: Readonly<ResolvedHashOn> | undefined = lb.hashOn;
  if (on === undefined) return undefined;
  if (on.header !== undefined) return headerValue(req, on.header.toLowerCase());
  if (on.cookie !== undefined) {
    const cookie = headerValue(req, 'cookie');
    if (cookie === undefined) return undefined;
    for (const part of cookie.split(';')) {
      const eq = part.indexOf('=');
      if (eq !== -1 && part.slice(0, eq).trim() === on.cookie) return part.slice(eq + 1).trim();
    }
    return undefined;
  }
  if (on.queryParameter !== undefined) {
    const q = req.path.indexOf('?');
    if (q === -1) return undefined;
    return new URLSearchParams(req.path.slice(q + 1)).get(on.queryParameter) ?? undefined;
  }
  return undefined;
}

/** The discovery side of an upstream, as the balance layer reports it in a NoEndpointsError. */
export interface DiscoveryState {
  /** The registry's last failure, undefined while it answers. */
  readonly error: Error | undefined;
  /** Milliseconds since the last good answer (0 when fresh, Infinity before the first). */
  readonly stalenessMs: number;
  /** The error's message with known secrets taken out (a registry of the user's own may not do it). */
  readonly errorMessage?: string | undefined;
  /** While discovery answers an empty set: the likely reason, when the registry knows one (e.g. no ACL token). */
  readonly emptyHint?: string | undefined;
}

/** Why nothing could be picked, in words (naming the split's subset, if any); the registry's failure as cause while discovery fails. */
export function noEndpointsError(service: string, known: number, discovery: DiscoveryState | undefined, subset?: string): NoEndpointsError {
  let detail = known > 0 ? `all endpoints ejected (${known} known, outlier detection ejected every one)` : 'no endpoints are known';
  // An empty subset: no endpoint of the upstream carries its tags and meta (the registry's hint is about the upstream).
  if (subset !== undefined) detail = known > 0 ? `subset ${subset}: ${detail}` : `subset ${subset}: no endpoint carries its tags and meta`;
  const error = discovery?.error;
  if (error === undefined) {
    if (known === 0 && subset === undefined && discovery?.emptyHint !== undefined) detail += ` (${discovery.emptyHint})`;
    return new NoEndpointsError(service, detail);
  }
  const age = discovery?.stalenessMs ?? Number.POSITIVE_INFINITY;
  const message = discovery?.errorMessage ?? error.message;
  detail += Number.isFinite(age)
    ? `; discovery is failing, the endpoint set is ${Math.round(age)} ms stale: ${message}`
    : `; discovery has never answered: ${message}`;
  return new NoEndpointsError(service, detail, { cause: error, stalenessMs: age });
}

/** What the balance layer uses of the assembler's deps. */
export interface BalanceDeps {
  /** The upstream's balancer (the upstream runtime feeds it from discovery). */
  readonly balancer: LoadBalancer;
  /** The discovery side, for the NoEndpointsError message. */
  readonly discovery?: (() => DiscoveryState) | undefined;
  /** One balancer per subset of the upstream; undefined when it names none. */
  readonly subsets?: SubsetBalancers | undefined;
  /** Random source for the split choice (tests). @default Math.random */
  readonly random?: (() => number) | undefined;
}

/** The subset a weighted split sends one call to: weight / sum of weights (entries of weight 0 never). */
export function chooseSubset(split: readonly Readonly<ResolvedSplitTarget>[], random: () => number): string {
  let total = 0;
  for (const t of split) total += t.weight;
  let r = random() * total;
  let last = '';
  for (const t of split) {
    if (t.weight === 0) continue;
    last = t.subset;
    if (r < t.weight) return t.subset;
    r -= t.weight;
  }
  // Only reached through rounding at the top end of `random()`.
  return last;
}

export function createBalanceLayer(upstream: Readonly<ResolvedUpstream>, deps: BalanceDeps): Layer {
  const { balancer, discovery, subsets } = deps;
  const random = deps.random ?? Math.random;
  const service = upstream.name;
  return (next: Handler): Handler =>
    async function balance(req) {
      // A retry: the endpoints of the earlier attempts are excluded (req.endpoint is the last
      // one). The set is made on the first retry only, and the first attempt passes no context.
      const prev = req.endpoint;
      let exclude: Set<string> | undefined;
      if (prev !== undefined) {
        exclude = req.tried ??= new Set<string>();
        exclude.add(prev.id);
      }
      const hashKey = hashKeyOf(req);
      const ctx: PickContext | undefined = hashKey === undefined && exclude === undefined ? undefined : { hashKey, exclude };
      let from = balancer;
      let subset: string | undefined;
      const split = req.policy.split;
      if (split !== undefined) {
        subset = req.subset ??= chooseSubset(split, random);
        const sb = subsets?.get(subset);
        // Validation refuses a split naming an undefined subset; this guards a hand-built policy.
        if (sb === undefined) throw new NoEndpointsError(service, `subset ${subset}: not defined by the upstream`);
        from = sb;
      }
      const pick = from.pick(ctx);
      if (pick === undefined) {
        throw noEndpointsError(service, from.endpoints.length, discovery?.(), subset);
      }
      req.endpoint = pick.endpoint;
      const start = performance.now();
      let res;
      try {
        res = await next(req);
      } catch (error) {
        pick.done(classify({ error }, undefined).outcome, performance.now() - start);
        throw error;
      }
      pick.done(outcomeOfStatus(res.statusCode), performance.now() - start);
      return res;
    };
}
