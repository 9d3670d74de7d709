/**
 * Attempt deadlines without a Node timer per attempt.
 *
 * Why: `setTimeout` + `clearTimeout` on every attempt allocate a Timeout and,
 * whenever the last timer of a duration goes away (every call at 1 in flight),
 * delete and re-create Node's timer list for that duration and re-arm the
 * libuv timer. Almost every attempt ends long before its deadline, so all of
 * that is wasted work on the hot path.
 *
 * How: deadlines with the same duration are due in the order they were
 * armed. So each duration (the key) has a FIFO of pending entries and ONE
 * timer, armed for its head. Adding appends at the tail, O(1); cancelling
 * unlinks, O(1), and never touches the timer: a timer that fires early (its
 * head was cancelled) just re-arms for the new head. An entry whose deadline
 * is earlier than its FIFO's tail (a retry, whose total deadline was fixed
 * when the call began) gets a plain timer of its own, so order never has to
 * be searched for.
 *
 * Timers are unref()'d: a pending attempt keeps the process alive through its
 * socket, as with any request; an idle queue keeps nothing alive.
 */

/** One pending deadline; `fire` runs at most once, and never after `cancel()`. */
export interface DeadlineEntry {
  cancel(): void;
}

/**
 * `fire(target)` rather than a closure per deadline: callers pass one shared
 * function and the object it acts on, so arming allocates the entry only.
 */
class Entry implements DeadlineEntry {
  prev: Entry | undefined = undefined;
  next: Entry | undefined = undefined;
  /** The FIFO it is linked in; undefined once fired, cancelled, or when it has its own timer. */
  fifo: Fifo | undefined = undefined;
  /** Its own timer (an out-of-order entry). */
  timer: NodeJS.Timeout | undefined = undefined;
  readonly at: number;
  readonly #fire: (target: unknown) => void;
  readonly #target: unknown;

  constructor(at: number, fire: (target: unknown) => void, target: unknown) {
    this.at = at;
    this.#fire = fire;
    this.#target = target;
  }

  fire(): void {
    this.#fire(this.#target);
  }

  cancel(): void {
    if (this.fifo !== undefined) this.fifo.unlink(this);
    else if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}

class Fifo {
  readonly key: number;
  head: Entry | undefined = undefined;
  tail: Entry | undefined = undefined;
  /** When the armed timer fires (performance.now() based); undefined when none is armed. */
  armedAt: number | undefined = undefined;
  #expiring = false;
  readonly #onTimer = (): void => this.#expire();

  constructor(key: number) {
    this.key = key;
  }

  push(e: Entry): void {
    e.fifo = this;
    e.prev = this.tail;
    if (this.tail === undefined) this.head = e;
    else this.tail.next = e;
    this.tail = e;
    // Invariant: while entries are linked, one timer is armed no later than the
    // head's time (entries only join at the tail, so a later entry never needs
    // an earlier timer). #expire arms for itself once its loop is done.
    if (this.armedAt === undefined && !this.#expiring) this.#arm(e.at);
  }

  unlink(e: Entry): void {
    if (e.prev === undefined) this.head = e.next;
    else e.prev.next = e.next;
    if (e.next === undefined) this.tail = e.prev;
    else e.next.prev = e.prev;
    e.prev = e.next = e.fifo = undefined;
  }

  #arm(at: number): void {
    this.armedAt = at;
    setTimeout(this.#onTimer, Math.max(0, Math.ceil(at - performance.now()))).unref();
  }

  #expire(): void {
    this.armedAt = undefined;
    this.#expiring = true;
    const now = performance.now();
    try {
      // Bounded: each turn removes the head; entries a fire() adds (a retry's
      // next attempt) are due after `now` (durations are positive) and stop it.
      for (let e = this.head; e !== undefined && e.at <= now; e = this.head) {
        this.unlink(e);
        e.fire();
      }
    } finally {
      this.#expiring = false;
    }
    if (this.head !== undefined) this.#arm(this.head.at);
    // An idle FIFO is dropped, so per-call timeouts of ever new lengths leave nothing behind.
    else if (fifos.get(this.key) === this) fifos.delete(this.key);
  }
}

const fifos = new Map<number, Fifo>();

/**
 * Calls `fire(target)` once `ms` milliseconds after `start` (performance.now()
 * based), unless cancelled first. Entries of one `ms` share a FIFO and a timer.
 */
export function armDeadline<T>(start: number, ms: number, fire: (target: T) => void, target: T): DeadlineEntry;
export function armDeadline(start: number, ms: number, fire: () => void): DeadlineEntry;
export function armDeadline<T>(start: number, ms: number, fire: (target: T) => void, target?: T): DeadlineEntry {
  const at = start + ms;
  const e = new Entry(at, fire as (target: unknown) => void, target);
  let fifo = fifos.get(ms);
  if (fifo === undefined) {
    fifo = new Fifo(ms);
    fifos.set(ms, fifo);
  }
  const tail = fifo.tail;
  if (tail === undefined || tail.at <= at) {
    fifo.push(e);
  } else {
    e.timer = setTimeout(() => {
      e.timer = undefined;
      e.fire();
    }, Math.max(0, Math.ceil(at - performance.now())));
    e.timer.unref();
  }
  return e;
}

/** How many durations have a FIFO now (tests: idle FIFOs are dropped). */
export function deadlineFifoCount(): number {
  return fifos.size;
}
