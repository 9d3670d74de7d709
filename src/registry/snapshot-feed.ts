/**
 * Feeds the watches of a registry whose data is a snapshot in memory (static
 * lists, a watched file): each watch gets its view of the current snapshot, and
 * every watch is pushed again when the snapshot changes or fails to reload.
 * Views are pushed from a microtask, never inside `subscribe()` itself.
 */
import type { Endpoint } from './types.ts';
import type { NormalizedQuery, WatchSink, WatchSource } from './watch-hub.ts';

/**
 * The endpoints the snapshot lists for the query's service (before the query's
 * tag filter), or the error that stands for "no good snapshot".
 */
export type SnapshotView = (query: NormalizedQuery) => readonly Endpoint[] | Error;

export class SnapshotFeed {
  readonly #sinks = new Map<WatchSink, NormalizedQuery>();

  readonly #view: SnapshotView;

  constructor(view: SnapshotView) {
    this.#view = view;
  }

  source(query: NormalizedQuery): WatchSource {
    let sink: WatchSink | undefined;
    return {
      start: (s) => {
        sink = s;
        this.#sinks.set(s, query);
        queueMicrotask(() => {
          if (sink && this.#sinks.has(sink)) this.#push(sink, query);
        });
      },
      stop: () => {
        if (sink) this.#sinks.delete(sink);
        sink = undefined;
      },
    };
  }

  /** Pushes every watch its view of the (new) snapshot. */
  refresh(): void {
    for (const [sink, query] of this.#sinks) this.#push(sink, query);
  }

  /** Tells every watch that the snapshot could not be renewed (the last good set stays). */
  fail(error: Error): void {
    for (const sink of this.#sinks.keys()) sink.fail(error);
  }

  #push(sink: WatchSink, query: NormalizedQuery): void {
    const listed = this.#view(query);
    if (listed instanceof Error) {
      sink.fail(listed);
      return;
    }
    const kept = withTags(listed, query);
    sink.update(kept, kept.length === 0 && listed.length > 0 ? tagsHint(listed.length, query) : undefined);
  }
}

/** Why a service with listed endpoints has none: the tag filter (`discovery.tags`) keeps none of them. */
function tagsHint(listed: number, query: NormalizedQuery): string {
  return `${listed} endpoint${listed === 1 ? ' is' : 's are'} listed for ${query.service}, but none carries every tag of discovery.tags ${JSON.stringify(query.tags)}: give the entries these tags ({ address, port, tags }) or drop the tags from the policy`;
}

/** Keeps the endpoints that carry every tag of the query. */
export function withTags(endpoints: readonly Endpoint[], query: NormalizedQuery): readonly Endpoint[] {
  if (query.tags.length === 0) return endpoints;
  return endpoints.filter((e) => query.tags.every((t) => e.tags.includes(t)));
}
