/**
 * The abort source of one attempt, handed to undici as the request's `signal`.
 *
 * Why not an AbortController: every attempt with a timeout needs one, and an
 * AbortController + AbortSignal + EventTarget listener (plus Node's
 * `addAbortListener` bookkeeping that undici uses for real signals) costs a few
 * µs per attempt, which the benchmark shows as the largest single cost of the
 * default policy (about a quarter of the mesh's overhead over raw undici at
 * 16 in flight). undici documents `signal` as `AbortSignal | EventEmitter`; this
 * class is the smallest EventEmitter it accepts: `on`/`once`/`removeListener`/
 * `off` for the `abort` event, and `reason`.
 *
 * It deliberately has NO `aborted` property: undici hands any object that has
 * one to Node's `addAbortListener`, which accepts real AbortSignals only. An
 * attempt signal is only ever passed to undici before it fires (the attempt
 * timeout layer checks the deadline and the caller's signal first), so undici
 * never needs to ask.
 */
type Listener = () => void;

export class AttemptSignal {
  /** The abort reason once fired (an inmesh TimeoutError or AbortedError). */
  reason: Error | undefined = undefined;
  #one: Listener | undefined = undefined;
  #more: Listener[] | undefined = undefined;

  on(event: string, listener: Listener): this {
    if (event !== 'abort') return this;
    if (this.#one === undefined && this.#more === undefined) this.#one = listener;
    else (this.#more ??= []).push(listener);
    return this;
  }

  /** The signal fires at most once, so `once` is `on`. */
  once(event: string, listener: Listener): this {
    return this.on(event, listener);
  }

  removeListener(event: string, listener: Listener): this {
    if (event !== 'abort') return this;
    if (this.#one === listener) this.#one = undefined;
    else if (this.#more !== undefined) {
      const i = this.#more.indexOf(listener);
      if (i !== -1) this.#more.splice(i, 1);
    }
    return this;
  }

  off(event: string, listener: Listener): this {
    return this.removeListener(event, listener);
  }

  get fired(): boolean {
    return this.reason !== undefined;
  }

  /** Fires once: sets `reason`, then calls and forgets every listener. */
  abort(reason: Error): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    const one = this.#one;
    const more = this.#more;
    this.#one = undefined;
    this.#more = undefined;
    one?.();
    if (more !== undefined) for (const l of more) l();
  }
}
