import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * A secret value (a Consul token, a Redis password). It prints as `[redacted]`
 * everywhere: `String()`, template literals, `JSON.stringify`, `util.inspect`
 * and `console.log`. Call `reveal()` at the single place that needs it.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The secret itself. Do not log it. */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `Secret(${REDACTED})`;
  }
}

export function isSecret(value: unknown): value is Secret {
  return value instanceof Secret;
}
