/**
 * The shutdown sequence of a process in the mesh (`mesh.shutdown()`) and the
 * opt-in SIGTERM/SIGINT handling that runs it (`mesh.handleSignals()`).
 *
 * Order (SHUTDOWN_ORDER), one step after the other; a step that fails is
 * logged and reported, and the later steps run all the same:
 *
 *   maintenance → propagationDelay → drain → deregister → telemetry → close
 *
 * - `maintenance`: readiness fails (503 on the readiness path) and each Consul
 *   registration of the mesh goes to maintenance mode, so callers' `?passing`
 *   queries drop the instance. The process keeps serving.
 * - `propagationDelay`: serve on while callers' watches, probes and load
 *   balancers catch up (a request that still arrives is answered).
 * - `drain`: the servers stop accepting (`server.close()`), idle keep-alive
 *   sockets are closed, the responses left carry `Connection: close`, and the
 *   requests in flight are waited for up to `drainTimeoutMs`; then the
 *   connections left are cut (`closeAllConnections()`).
 * - `deregister`: the registrations leave Consul.
 * - `telemetry`: the telemetry given is shut down (its spans and metrics flushed).
 * - `close`: `mesh.close()`: pools, watches, breakers, registries.
 *
 * Consul first and the sockets after: closing the listener while callers still
 * pick this instance would turn their requests into connection errors.
 */
import type { Server } from 'node:http';
import { constants } from 'node:os';
import { InvalidArgumentError } from '../errors.ts';
import { describeValue } from '../internal/describe.ts';
import { SHUTDOWN_DEFAULTS } from '../policy/defaults.ts';
import type { Logger } from '../registry/types.ts';
import { isServer } from '../server/node.ts';

/** The steps of `mesh.shutdown()`, in the order they run. */
export const SHUTDOWN_ORDER = ['maintenance', 'propagationDelay', 'drain', 'deregister', 'telemetry', 'close'] as const;
export type ShutdownStep = (typeof SHUTDOWN_ORDER)[number];

/** Options of `mesh.shutdown()`; defaults in SHUTDOWN_DEFAULTS (src/policy/defaults.ts). */
export interface ShutdownOptions {
  /** How long to keep serving after readiness fails and Consul maintenance starts. @default 5_000 ms */
  readonly propagationDelayMs?: number;
  /** How long to wait for requests in flight once the servers stop accepting; then their connections are cut. @default 20_000 ms */
  readonly drainTimeoutMs?: number;
  /**
   * Servers to drain besides those given to `mesh.server(server)` (which are
   * drained already): e.g. the server of `app.listen()` with Express or a
   * server whose listener was wrapped with `mesh.server(listener)`.
   */
  readonly servers?: readonly Server[];
  /** Telemetry to shut down (flush) after deregistering: the handle of `startTelemetry()` (`inmesh/telemetry`), or an OpenTelemetry NodeSDK. */
  readonly telemetry?: { shutdown(): Promise<unknown> };
  /** Reason shown for the Consul maintenance mode. @default 'inmesh: shutting down' */
  readonly reason?: string;
}

/** Options of `mesh.handleSignals()`: the shutdown's, and which signals and what happens after. */
export interface SignalOptions extends ShutdownOptions {
  /** Signals that start the shutdown. @default ['SIGTERM', 'SIGINT'] */
  readonly signals?: readonly NodeJS.Signals[];
  /**
   * Exit when the shutdown is over: code 0, or 1 when a step failed or
   * requests were cut. `false`: the listeners are removed and the process ends
   * when nothing else holds it. @default true
   */
  readonly exit?: boolean;
}

export interface ShutdownStepError {
  readonly step: ShutdownStep;
  readonly error: unknown;
}

/** What `mesh.shutdown()` resolves with (it never rejects once the options are valid). */
export interface ShutdownResult {
  /** No step failed and no request was cut. */
  readonly ok: boolean;
  /** The steps that failed, in order, each with its error (also logged). */
  readonly errors: readonly ShutdownStepError[];
  /** Requests still in flight at `drainTimeoutMs`, whose connections were cut. */
  readonly cut: number;
}

export interface CheckedShutdownOptions {
  readonly propagationDelayMs: number;
  readonly drainTimeoutMs: number;
  readonly servers: readonly Server[];
  readonly telemetry: { shutdown(): Promise<unknown> } | undefined;
  readonly reason: string;
}

function ms(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(`shutdown option ${name} must be a number of ms >= 0 (got ${describeValue(value)})`);
  }
  return value;
}

/** Checks the options at once (InvalidArgumentError naming the option and its value) and fills in the defaults. */
export function checkShutdownOptions(options: ShutdownOptions): CheckedShutdownOptions {
  const given: unknown = options;
  if (typeof given !== 'object' || given === null) throw new InvalidArgumentError(`shutdown options must be an object (got ${describeValue(given)})`);
  const servers: unknown = options.servers ?? [];
  if (!Array.isArray(servers) || !servers.every(isServer)) {
    throw new InvalidArgumentError(`shutdown option servers must be an array of http(s).Server (got ${describeValue(options.servers)})`);
  }
  const telemetry: unknown = options.telemetry;
  if (telemetry !== undefined && !(typeof telemetry === 'object' && telemetry !== null && 'shutdown' in telemetry && typeof telemetry.shutdown === 'function')) {
    throw new InvalidArgumentError(`shutdown option telemetry must have a shutdown() method (got ${describeValue(telemetry)})`);
  }
  const reason: unknown = options.reason ?? SHUTDOWN_DEFAULTS.maintenanceReason;
  if (typeof reason !== 'string') throw new InvalidArgumentError(`shutdown option reason must be a string (got ${describeValue(reason)})`);
  return {
    propagationDelayMs: ms('propagationDelayMs', options.propagationDelayMs, SHUTDOWN_DEFAULTS.propagationDelayMs),
    drainTimeoutMs: ms('drainTimeoutMs', options.drainTimeoutMs, SHUTDOWN_DEFAULTS.drainTimeoutMs),
    servers: servers,
    telemetry: options.telemetry,
    reason,
  };
}

/** Runs every step in SHUTDOWN_ORDER; a failure is logged and recorded, and the next step runs. */
export async function runShutdown(steps: Readonly<Record<ShutdownStep, () => Promise<unknown>>>, logger: Logger): Promise<ShutdownStepError[]> {
  const errors: ShutdownStepError[] = [];
  for (const step of SHUTDOWN_ORDER) {
    try {
      await steps[step]();
    } catch (error) {
      errors.push({ step, error });
      logger.warn(`shutdown step ${step} failed; going on with the next steps: ${error instanceof Error ? error.message : String(error)}`, { step });
    }
  }
  return errors;
}

/** Waits for all; throws the one error, or an AggregateError when several failed. */
export async function allOrThrow(work: readonly Promise<unknown>[], what: string): Promise<void> {
  const failed = (await Promise.allSettled(work)).filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  if (failed.length === 1) throw failed[0];
  if (failed.length > 1) throw new AggregateError(failed, `${failed.length} of ${work.length} ${what} failed`);
}

function checkSignals(value: unknown): readonly NodeJS.Signals[] {
  if (value === undefined) return SHUTDOWN_DEFAULTS.signals;
  if (!Array.isArray(value) || value.length === 0 || !value.every((s) => typeof s === 'string' && s.startsWith('SIG') && s in constants.signals)) {
    throw new InvalidArgumentError(`handleSignals option signals must be a non-empty array of signal names such as 'SIGTERM' (got ${describeValue(value)})`);
  }
  return value as NodeJS.Signals[];
}

/** The exit code of a process ended by a signal, as a shell reports it: 128 + its number. */
function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + constants.signals[signal];
}

/** The process calls the signal handlers use (a test can watch them). */
export interface SignalProcess {
  on(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  off(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  exit(code: number): void;
}

/**
 * Listens to the signals: the first one runs `shutdown` (then exits, unless
 * `exit: false`); a second one exits at once with 128 + the signal's number
 * (the code of a process killed by it). Returns a function that removes the
 * listeners.
 */
export function installSignalHandlers(
  shutdown: () => Promise<ShutdownResult>,
  options: SignalOptions,
  logger: Logger,
  proc: SignalProcess = process,
): () => void {
  const signals = checkSignals(options.signals);
  const exit: unknown = options.exit ?? true;
  if (typeof exit !== 'boolean') throw new InvalidArgumentError(`handleSignals option exit must be true or false (got ${describeValue(exit)})`);
  let received: NodeJS.Signals | undefined;
  const remove = (): void => {
    for (const s of signals) proc.off(s, onSignal);
  };
  function onSignal(signal: NodeJS.Signals): void {
    if (received !== undefined) {
      logger.warn(`${signal} while shutting down after ${received}: exiting now`, { signal });
      proc.exit(signalExitCode(signal));
      return;
    }
    received = signal;
    logger.info(`${signal}: shutting down`, { signal });
    void shutdown().then(
      (result) => {
        if (!exit) return remove();
        proc.exit(result.ok ? 0 : 1);
      },
      (error: unknown) => {
        logger.error(`shutdown failed: ${error instanceof Error ? error.message : String(error)}`, { signal });
        if (!exit) return remove();
        proc.exit(1);
      },
    );
  }
  for (const s of signals) proc.on(s, onSignal);
  return remove;
}
