/**
 * Runs user code so that it can never break a request (the idea of OTel's
 * `safeExecuteInTheMiddle`): errors are reported through `diag` and swallowed.
 */
import { diag } from '@opentelemetry/api';

export function safeExecute<A extends unknown[]>(
  what: string,
  fn: ((...args: A) => unknown) | undefined,
  ...args: A
): void {
  if (fn === undefined) return;
  try {
    const result = fn(...args);
    // A hook declared async may reject later: swallow that too.
    if (result instanceof Promise) {
      result.catch((err: unknown) => {
        diag.error(`inmesh: ${what} failed`, err);
      });
    }
  } catch (err) {
    diag.error(`inmesh: ${what} failed`, err);
  }
}
