/**
 * What each supported Consul line can hold, so the exporter writes only fields
 * the target version has and reports the rest as `dropped: needs Consul X`.
 * Sources: Consul's config-entry reference pages of each version line
 * (service-defaults, service-resolver, service-router, service-splitter).
 */

export interface ConsulFeatures {
  /** service-resolver LoadBalancer (Policy, LeastRequestConfig, RingHashConfig, HashPolicies): 1.9+. */
  readonly loadBalancer: boolean;
  /** service-router Destination.RetryOn (Envoy's retry_on vocabulary): 1.15+. */
  readonly retryOn: boolean;
  /**
   * service-defaults UpstreamConfig (the caller's per-upstream Limits and
   * PassiveHealthCheck Interval / MaxFailures / EnforcingConsecutive5xx): 1.10+.
   */
  readonly upstreamConfig: boolean;
  /** PassiveHealthCheck MaxEjectionPercent and BaseEjectionTime: 1.15+. */
  readonly ejectionTuning: boolean;
  /** service-defaults LocalRequestTimeoutMs (the sidecar's timeout towards its own app): 1.15+. */
  readonly localRequestTimeout: boolean;
}

/** The version each feature needs, for `dropped: needs Consul X` messages. */
export const FEATURE_SINCE: Readonly<Record<keyof ConsulFeatures, string>> = {
  loadBalancer: '1.9',
  retryOn: '1.15',
  upstreamConfig: '1.10',
  ejectionTuning: '1.15',
  localRequestTimeout: '1.15',
};

/** Supported versions; the first is the default (what the tests run against). */
export const CONSUL_VERSIONS: Readonly<Record<string, ConsulFeatures>> = {
  '1.8.7': { loadBalancer: false, retryOn: false, upstreamConfig: false, ejectionTuning: false, localRequestTimeout: false },
  '1.15': { loadBalancer: true, retryOn: true, upstreamConfig: true, ejectionTuning: true, localRequestTimeout: true },
};
