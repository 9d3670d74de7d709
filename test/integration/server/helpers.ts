/**
 * Helpers for the server-side tests: a real server on 127.0.0.1:0, a client
 * with a short keep-alive, and a gate the app can hold requests at (so "in
 * flight" is a state the test controls, not a sleep).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';

export async function listen(server: Server): Promise<string> {
  server.keepAliveTimeout = 10;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json(): any;
}

/** One client per test file; requests use fresh connections only when the pool needs them. */
export function client(): { get(url: string, headers?: Record<string, string>, method?: string): Promise<Answer>; close(): Promise<void> } {
  const agent = new Agent({ keepAliveTimeout: 10, connections: 16 });
  return {
    async get(url, headers = {}, method = 'GET') {
      const res = await request(url, { method: method as 'GET', headers, dispatcher: agent });
      const text = await res.body.text();
      return {
        status: res.statusCode,
        headers: res.headers,
        text,
        json: () => JSON.parse(text),
      };
    },
    close: () => agent.close(),
  };
}

/** Requests held by the app until the test releases them; `arrived(n)` resolves once n are held. */
export class Holds {
  #released: Promise<void>;
  #release!: () => void;
  #count = 0;
  #waiters: { n: number; resolve: () => void }[] = [];

  constructor() {
    this.#released = new Promise((r) => (this.#release = r));
  }

  /** Called by the app: counts the request and waits for release. */
  hold(): Promise<void> {
    this.#count++;
    for (const w of this.#waiters.filter((x) => x.n <= this.#count)) w.resolve();
    return this.#released;
  }

  get count(): number {
    return this.#count;
  }

  arrived(n: number): Promise<void> {
    if (this.#count >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ n, resolve }));
  }

  release(): void {
    this.#release();
  }
}

/** A promise and its resolve function (Promise.withResolvers is ES2024; the project's lib is ES2023). */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
