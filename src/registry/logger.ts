import type { Logger } from './types.ts';

/** The default Logger: warnings and errors to the console, debug and info dropped. */
export const consoleLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (message, fields) => {
    console.warn(`[inmesh] ${message}`, ...(fields ? [fields] : []));
  },
  error: (message, fields) => {
    console.error(`[inmesh] ${message}`, ...(fields ? [fields] : []));
  },
};

const SAFE = Symbol('inmesh.safeLogger');

/**
 * A Logger that cannot throw: a user logger that throws (or a console whose
 * stream is gone) must never kill a watch or crash the process. What it threw
 * is dropped; the call returns normally.
 */
export function safeLogger(logger: Logger): Logger {
  if ((logger as { [SAFE]?: true })[SAFE]) return logger;
  const wrap =
    (level: keyof Logger) =>
    (message: string, fields?: Record<string, unknown>): void => {
      try {
        logger[level](message, fields);
      } catch {
        // Nothing sensible to do: logging the failure would go to the same logger.
      }
    };
  return { debug: wrap('debug'), info: wrap('info'), warn: wrap('warn'), error: wrap('error'), [SAFE]: true } as Logger;
}
