/**
 * A bound on the watch queries in flight to one Consul agent, shared by every
 * registry of the process that talks to that agent.
 *
 * A Consul agent limits the concurrent HTTP connections per client address
 * (`limits.http_max_conns_per_client`, 200 by default) and closes the ones above
 * it without an answer. Every blocking query holds a connection for up to its
 * `wait`, so one watch per upstream would use up the allowance with a few hundred
 * upstreams and leave nothing for the process's registration calls or for the
 * other clients on the same host. The gate lets at most `limit` watch queries
 * run at once; the rest wait in a FIFO queue, plain reads (a watch's first read,
 * or its read after a failure) ahead of blocking queries.
 *
 * A plain read never waits for a blocking query to end on its own (which takes
 * up to the whole `wait`): blocking queries hold at most `limit - 1` places, so
 * one place is always left for plain reads; and when a plain read still finds
 * every place taken (a limit of 1, or several reads at once), the longest-running
 * blocking queries are ended early, one per waiting read (`preempt`). The watch
 * of an ended query keeps its index and queues again; that is not a failure.
 *
 * While more watches use the gate than it has places for blocking queries
 * (`contended`), each blocking query is given a short wait (`contendedWaitMs`),
 * so the places rotate through every watch and a change is seen within a few
 * rounds instead of after a full wait. A blocking query answers at once when its
 * index is behind, so a watch that waited in the queue loses no change.
 *
 * Calls outside the watch loop (registration, TTL updates, the preflight) never
 * pass through the gate: they never wait behind a blocking query.
 */

interface Waiter {
  readonly grant: () => void;
}

/** A blocking query holding a place, in grant order (the first is the longest-running). */
interface Running {
  readonly preempt: () => void;
  ending: boolean;
}

class AgentGate {
  readonly #limits = new Map<object, number>();
  readonly #reads: Waiter[] = [];
  readonly #blocks: Waiter[] = [];
  readonly #running: Running[] = [];
  #active = 0;

  readonly #onEmpty: (gate: AgentGate) => void;
  readonly key: string;

  constructor(key: string, onEmpty: (gate: AgentGate) => void) {
    this.key = key;
    this.#onEmpty = onEmpty;
  }

  /** The smallest bound any member asked for. */
  get limit(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const l of this.#limits.values()) min = Math.min(min, l);
    return Number.isFinite(min) ? min : 1;
  }

  /** The places blocking queries may hold: all but one, which stays for plain reads (at least 1). */
  get blockingPlaces(): number {
    return Math.max(1, this.limit - 1);
  }

  /** More watches than places for blocking queries: blocking queries get the short wait. */
  get contended(): boolean {
    return this.#limits.size > this.blockingPlaces;
  }

  /** Queries running now (for tests and stats). */
  get active(): number {
    return this.#active;
  }

  /** Blocking queries running now (for tests and stats). */
  get blocking(): number {
    return this.#running.length;
  }

  /** Queries waiting for a place (for tests and stats). */
  get waiting(): number {
    return this.#reads.length + this.#blocks.length;
  }

  join(member: object, limit: number): void {
    this.#limits.set(member, limit);
  }

  leave(member: object): void {
    this.#limits.delete(member);
    this.#drain();
    if (this.#limits.size === 0 && this.#active === 0) this.#onEmpty(this);
  }

  /**
   * Waits for a place; resolves with its release function, or with undefined when
   * `signal` aborts first (the waiter leaves the queue). A blocking query passes
   * `preempt`: the gate calls it (at most once) when a plain read needs the place;
   * the query should then end and release it.
   */
  acquire(kind: 'read' | 'block', signal: AbortSignal, preempt: () => void = () => undefined): Promise<(() => void) | undefined> {
    if (signal.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const queue = kind === 'read' ? this.#reads : this.#blocks;
      const onAbort = (): void => {
        const i = queue.indexOf(waiter);
        if (i >= 0) queue.splice(i, 1);
        resolve(undefined);
      };
      const waiter: Waiter = {
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          this.#active++;
          const running: Running | undefined = kind === 'block' ? { preempt, ending: false } : undefined;
          if (running) this.#running.push(running);
          let released = false;
          resolve(() => {
            if (released) return;
            released = true;
            this.#active--;
            if (running) this.#running.splice(this.#running.indexOf(running), 1);
            this.#drain();
            if (this.#limits.size === 0 && this.#active === 0) this.#onEmpty(this);
          });
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      queue.push(waiter);
      this.#drain();
    });
  }

  #drain(): void {
    while (this.#active < this.limit) {
      const read = this.#reads.shift();
      if (read !== undefined) {
        read.grant();
        continue;
      }
      if (this.#blocks.length === 0 || this.#running.length >= this.blockingPlaces) break;
      this.#blocks.shift()?.grant();
    }
    // Plain reads still waiting: end the longest-running blocking queries early, one per read.
    let ending = this.#running.filter((r) => r.ending).length;
    const preempt: Running[] = [];
    for (const r of this.#running) {
      if (ending >= this.#reads.length) break;
      if (r.ending) continue;
      r.ending = true;
      ending++;
      preempt.push(r);
    }
    for (const r of preempt) r.preempt();
  }
}

export type { AgentGate };

const gates = new Map<string, AgentGate>();

/**
 * The gate of one agent (`key`: scheme, host and port), made on first use and
 * dropped when its last member has left and its last query ended. The key is the
 * address as written: two spellings of one agent (`localhost` and `127.0.0.1`, a
 * name and its IP) get a gate each; resolving names here would make the gate
 * asynchronous and still miss aliases behind proxies (docs/discovery.md).
 */
export function agentGate(key: string): AgentGate {
  let gate = gates.get(key);
  if (gate === undefined) {
    gate = new AgentGate(key, (g) => {
      if (gates.get(g.key) === g) gates.delete(g.key);
    });
    gates.set(key, gate);
  }
  return gate;
}
