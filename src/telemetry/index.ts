/**
 * `inmesh/telemetry`: the OpenTelemetry SDK helper, in its own entry point so
 * that apps with their own OpenTelemetry set-up never load @opentelemetry/sdk-node.
 */
export {};
