import { describe, expectTypeOf, it } from 'vitest';
import type { ConsulConnection, PolicyDocument, ResolvedConfig, ResolvedPolicy, Secret } from '../../src/index.ts';
import { loadConfig, matchRoute, parsePolicy, resolvePolicy } from '../../src/index.ts';
import type {
  ResolvedCallPolicy,
  ResolvedCircuitBreaker,
  ResolvedLimits,
  ResolvedOutlierDetection,
  ResolvedRateLimit,
  ResolvedRetries,
  ResolvedTimeouts,
  ResolvedUpstream,
  RetryOn,
  LoadBalancerPolicy,
  RegistryKind,
} from '../../src/policy/types.ts';
import type { UpstreamDocument, UpstreamPolicyDocument } from '../../src/policy/schema.ts';

type Block<K extends keyof UpstreamPolicyDocument> = Exclude<NonNullable<UpstreamPolicyDocument[K]>, false>;

describe('policy pipeline types', () => {
  it('the pipeline outputs exactly ResolvedPolicy', () => {
    expectTypeOf(resolvePolicy).returns.toEqualTypeOf<ResolvedPolicy>();
    expectTypeOf(parsePolicy).returns.toEqualTypeOf<PolicyDocument>();
    expectTypeOf(resolvePolicy).parameter(0).toEqualTypeOf<PolicyDocument>();
    expectTypeOf<ReturnType<typeof loadConfig>>().toEqualTypeOf<ResolvedConfig>();
    expectTypeOf<ResolvedConfig['policy']>().toEqualTypeOf<ResolvedPolicy>();
    expectTypeOf<ResolvedConfig['consul']>().toEqualTypeOf<ConsulConnection>();
    expectTypeOf<ConsulConnection['token']>().toEqualTypeOf<Secret | undefined>();
    expectTypeOf(matchRoute).returns.toEqualTypeOf<Readonly<ResolvedCallPolicy>>();
  });

  it('the document and the resolved types have the same fields, block by block', () => {
    expectTypeOf<keyof Block<'timeouts'>>().toEqualTypeOf<keyof ResolvedTimeouts>();
    expectTypeOf<keyof Block<'outlierDetection'>>().toEqualTypeOf<keyof ResolvedOutlierDetection>();
    // `limits.enabled` resolves into the thresholds (false = maxRequests/maxPendingRequests Infinity), not a field.
    expectTypeOf<Exclude<keyof Block<'limits'>, 'enabled'>>().toEqualTypeOf<keyof ResolvedLimits>();
    expectTypeOf<keyof Block<'circuitBreaker'>>().toEqualTypeOf<keyof ResolvedCircuitBreaker>();
    expectTypeOf<keyof Block<'rateLimit'>>().toEqualTypeOf<keyof ResolvedRateLimit>();
    expectTypeOf<keyof Block<'retries'>>().toEqualTypeOf<keyof ResolvedRetries>();
    expectTypeOf<NonNullable<Block<'retries'>['retryOn']>[number]>().toEqualTypeOf<RetryOn>();
    expectTypeOf<NonNullable<Block<'loadBalancer'>['policy']>>().toEqualTypeOf<LoadBalancerPolicy>();
    expectTypeOf<NonNullable<Block<'discovery'>['registry']>>().toEqualTypeOf<RegistryKind>();
    // subsets and split are written per upstream (UpstreamDocument), not in defaults.
    expectTypeOf<keyof UpstreamPolicyDocument>().toEqualTypeOf<Exclude<keyof ResolvedUpstream, 'name' | 'routes' | 'subsets' | 'split'>>();
    expectTypeOf<keyof UpstreamDocument>().toEqualTypeOf<Exclude<keyof ResolvedUpstream, 'name'>>();
  });

  it('durations are strings in the document and numbers once resolved', () => {
    expectTypeOf<Block<'timeouts'>['request']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<ResolvedTimeouts['request']>().toEqualTypeOf<number>();
  });

  it('a document must say its apiVersion', () => {
    // @ts-expect-error apiVersion is required
    expectTypeOf({ upstreams: {} }).toExtend<PolicyDocument>();
    expectTypeOf({ apiVersion: 'inmesh/v1' as const, upstreams: { orders: { timeouts: { request: '3s' } } } }).toExtend<PolicyDocument>();
  });
});
