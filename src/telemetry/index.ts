/**
 * `inmesh/telemetry`: the OpenTelemetry SDK helper, in its own entry point so
 * that apps with their own OpenTelemetry set-up never load @opentelemetry/sdk-node.
 * The core (`inmesh`) only talks to @opentelemetry/api: it produces spans and
 * metrics as soon as *any* SDK is registered, this one or the app's own.
 */
import { diag } from '@opentelemetry/api';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { NodeSDKConfiguration } from '@opentelemetry/sdk-node';

export { extractContext, withServerSpan } from './server.ts';
export type { InboundHeaders, ServerSpanOptions } from './server.ts';
export type {
  TelemetryOptions,
  TelemetryRequestHook,
  TelemetryResponseHook,
} from './types.ts';

export interface StartTelemetryOptions {
  /**
   * `service.name` of the resource.
   * @default `OTEL_SERVICE_NAME`, else a `service.name` in `OTEL_RESOURCE_ATTRIBUTES` (left to the SDK),
   * else `INMESH_SERVICE_NAME` (the name the mesh registers under), else the SDK's `unknown_service:node`
   */
  serviceName?: string;
  /**
   * Span processors. @default from `OTEL_TRACES_EXPORTER` (OTLP over HTTP when unset),
   * behind a BatchSpanProcessor configured by `OTEL_BSP_*`.
   */
  spanProcessors?: NodeSDKConfiguration['spanProcessors'];
  /** Metric readers. @default from `OTEL_METRICS_EXPORTER` (OTLP over HTTP when unset; `none` for no metrics). */
  metricReaders?: NodeSDKConfiguration['metricReaders'];
  /** Instrumentations to enable, e.g. `new UndiciInstrumentation()` for per-attempt spans. @default [] */
  instrumentations?: NodeSDKConfiguration['instrumentations'];
  /** Sampler. @default from `OTEL_TRACES_SAMPLER` (parent-based always-on when unset) */
  sampler?: NodeSDKConfiguration['sampler'];
  /** Anything else NodeSDK accepts; wins over the fields above. */
  sdk?: Partial<NodeSDKConfiguration>;
}

export interface TelemetryHandle {
  /** `false` when `OTEL_SDK_DISABLED=true` left the SDK off. */
  readonly started: boolean;
  /** Flushes and stops every provider the SDK registered. Never rejects (errors go to `diag`). */
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry Node SDK with inmesh's defaults: everything not
 * given here comes from the standard `OTEL_*` environment variables, and
 * `OTEL_SDK_DISABLED=true` turns the whole thing off (nothing is registered,
 * the mesh's telemetry layer then starts no spans at all).
 *
 * Call it before `createMesh()`: the API's meter has no late-binding proxy, so
 * a mesh built before a MeterProvider exists records no metrics.
 */
export function startTelemetry(options: StartTelemetryOptions = {}): TelemetryHandle {
  if (isDisabled()) {
    return { started: false, shutdown: () => Promise.resolve() };
  }
  const config: Partial<NodeSDKConfiguration> = {};
  const serviceName = telemetryServiceName(options.serviceName, process.env);
  if (serviceName !== undefined) config.serviceName = serviceName;
  if (options.spanProcessors !== undefined) config.spanProcessors = options.spanProcessors;
  if (options.metricReaders !== undefined) config.metricReaders = options.metricReaders;
  if (options.instrumentations !== undefined) config.instrumentations = options.instrumentations;
  if (options.sampler !== undefined) config.sampler = options.sampler;
  Object.assign(config, options.sdk);

  const sdk = new NodeSDK(config);
  sdk.start();
  let stopping: Promise<void> | undefined;
  return {
    started: true,
    shutdown: () =>
      (stopping ??= sdk.shutdown().catch((err: unknown) => {
        diag.error('inmesh: telemetry shutdown failed', err);
      })),
  };
}

/**
 * The order loadConfig() computes `telemetry.serviceName` in (src/config/load.ts:
 * code, then OTEL_SERVICE_NAME, then the service name, whose variable is
 * INMESH_SERVICE_NAME), with one addition the SDK makes: OpenTelemetry ranks a
 * `service.name` in OTEL_RESOURCE_ATTRIBUTES above any default, so
 * INMESH_SERVICE_NAME is not applied over one. Not loadConfig() itself: that
 * reads the policy file and throws on any bad INMESH_* variable, and starting
 * telemetry must not depend on either.
 */
function telemetryServiceName(option: string | undefined, env: Readonly<Record<string, string | undefined>>): string | undefined {
  if (option !== undefined) return option;
  const otel = nonEmpty(env.OTEL_SERVICE_NAME);
  if (otel !== undefined) return otel;
  if (/(?:^|,)\s*service\.name\s*=/.test(env.OTEL_RESOURCE_ATTRIBUTES ?? '')) return undefined;
  return nonEmpty(env.INMESH_SERVICE_NAME);
}

function isDisabled(): boolean {
  return process.env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true';
}

function nonEmpty(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v === undefined || v === '' ? undefined : v;
}
