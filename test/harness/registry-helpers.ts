/** Helpers for registry tests: a capturing Logger and waiting for a subscription to reach a state. */
import type { Endpoint, Logger } from '../../src/registry/types.ts';

export interface CapturedLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  fields: Record<string, unknown> | undefined;
}

/** A Logger that keeps every line; `text()` renders all of them (fields included) for "never contains" checks. */
export function captureLogger(): Logger & { lines: CapturedLine[]; text(): string; warnings(): string[] } {
  const lines: CapturedLine[] = [];
  const push = (level: CapturedLine['level']) => (message: string, fields?: Record<string, unknown>) => {
    lines.push({ level, message, fields });
  };
  return {
    lines,
    debug: push('debug'),
    info: push('info'),
    warn: push('warn'),
    error: push('error'),
    text: () => lines.map((l) => `${l.level} ${l.message} ${JSON.stringify(l.fields ?? {})}`).join('\n'),
    warnings: () => lines.filter((l) => l.level === 'warn').map((l) => l.message),
  };
}

/**
 * Records every emission of a registry listener and lets a test await the first
 * emission (past or future) that satisfies a predicate, with a deadline.
 */
export class EndpointRecorder {
  readonly history: { at: number; endpoints: readonly Endpoint[] }[] = [];
  private waiters: { pred: (e: readonly Endpoint[]) => boolean; resolve: (e: readonly Endpoint[]) => void }[] = [];

  readonly listener = (endpoints: readonly Endpoint[]): void => {
    this.history.push({ at: performance.now(), endpoints });
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(endpoints)) return true;
      w.resolve(endpoints);
      return false;
    });
  };

  get latest(): readonly Endpoint[] | undefined {
    return this.history.at(-1)?.endpoints;
  }

  /** Resolves with the current set if it already matches, else with the next emission that does. */
  until(pred: (e: readonly Endpoint[]) => boolean, timeoutMs = 10_000, what = 'the expected endpoint set'): Promise<readonly Endpoint[]> {
    const latest = this.latest;
    if (latest && pred(latest)) return Promise.resolve(latest);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last set: ${JSON.stringify(this.latest?.map((e) => e.id))}`));
      }, timeoutMs);
      const waiter = {
        pred,
        resolve: (e: readonly Endpoint[]) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      this.waiters.push(waiter);
    });
  }
}

/**
 * The registry's own instance ids, sorted: for Consul endpoints (id `<node>/<service ID>`)
 * the service ID, for static/file endpoints the whole id. `fullIds` keeps the node.
 */
export const ids = (endpoints: readonly Endpoint[]): string[] => endpoints.map((e) => e.id.slice(e.id.indexOf('/') + 1)).sort();

export const fullIds = (endpoints: readonly Endpoint[]): string[] => endpoints.map((e) => e.id).sort();
