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
