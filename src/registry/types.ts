/**
 * The registry contract: where the healthy instances of a service are, now.
 * Implementations: Consul (consul.ts), static (static.ts), file (file.ts).
 */

import type { Endpoint } from '../core/types.ts';

/** The endpoint type is the call tier's (src/core/types.ts); registries produce it. */
export type { Endpoint };

/** What to ask the registry for. Built from the policy's `discovery` block. */
export interface ResolveQuery {
  /** The name in the registry. */
  readonly service: string;
  readonly datacenter?: string;
  /** Only instances carrying all of these tags. */
  readonly tags?: readonly string[];
  /** Only instances whose checks all pass (default true). */
  readonly passingOnly?: boolean;
}

/** A live view of one service, shared by every subscriber of the same query. */
export interface Subscription {
  /** The current endpoint set (the last known good one while the registry is unreachable). */
  readonly endpoints: readonly Endpoint[];
  /** Milliseconds since the registry last answered successfully; 0 when fresh, Infinity before the first answer. */
  staleness(): number;
  /** Resolves once the first answer (or the first error) has arrived. */
  ready(): Promise<void>;
  /** Stops this subscriber; the shared watch stops when its last subscriber leaves. */
  close(): void;
  /** The last failure of the watch, undefined after a successful answer (the built-in registries have it). */
  lastError?(): Error | undefined;
}

export interface SubscribeOptions {
  /** Called with every failure of the watch (the endpoint set is kept). */
  onError?: (error: Error) => void;
}

export type EndpointsListener = (endpoints: readonly Endpoint[]) => void;

export interface Registry {
  readonly kind: 'consul' | 'static' | 'file';
  /**
   * The registry accepts link-local and cloud metadata addresses
   * (ValidateOptions.allowLinkLocal). The mesh then lets an endpoint's host
   * name resolve to one at connect time too; otherwise such answers are
   * dropped (transport.ts guardedLookup). @default false
   */
  readonly allowLinkLocal?: boolean;
  /** The current healthy endpoints (waits for the first answer of a new watch). */
  resolve(query: ResolveQuery): Promise<readonly Endpoint[]>;
  /** Calls `listener` with the initial set and then on every actual change; `onError` hears each failure. */
  subscribe(query: ResolveQuery, listener: EndpointsListener, options?: SubscribeOptions): Subscription;
  /** Stops every watch. */
  close(): Promise<void>;
}

/** Minimal logger the SDK writes warnings to; `console` fits. Secrets are never passed to it. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}
