/**
 * The file registry: endpoint lists from a JSON or YAML file that is watched.
 *
 * ```yaml
 * services:
 *   orders:
 *     - 10.0.0.5:8080
 *     - { address: 10.0.0.6, port: 8080, tags: [v2], meta: { zone: a }, weight: 2 }
 * ```
 *
 * The file is read in the constructor (a missing or invalid file throws an
 * InvalidPolicyError naming the file and every bad entry). Only a regular file
 * of at most `MAX_ENDPOINTS_FILE_BYTES` (1 MiB) is read: a FIFO, a device or a
 * directory is refused at once, never read without end. It is then watched
 * through its directory (`fs.watch` on the folder, so editors and deploy tools
 * that write a new file and rename it over the old one are followed), with a
 * debounce. A reload that fails keeps the last good set: the error is logged
 * (file and entries named), subscribers' `onError` hears it, and `staleness()`
 * grows until a good version arrives.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ErrorCodes, InvalidPolicyError, type PolicyIssue } from '../errors.ts';
import { readBoundedFile } from '../internal/read-file.ts';
import { parseEntries } from './entries.ts';
import { consoleLogger, safeLogger } from './logger.ts';
import { SnapshotFeed } from './snapshot-feed.ts';
import type { ValidateOptions } from './validate.ts';
import { WatchHub, type RegistrySubscription, type SubscribeOptions } from './watch-hub.ts';
import type { Endpoint, EndpointsListener, Logger, Registry, ResolveQuery } from './types.ts';

export interface FileRegistryOptions extends ValidateOptions {
  /** JSON (`.json`) or YAML (anything else) file. */
  readonly path: string;
  /** Quiet time after the last change event before reloading. @default 100 ms */
  readonly debounceMs?: number;
  /** Follow changes. @default true */
  readonly watch?: boolean;
  readonly logger?: Logger;
}

type Snapshot = ReadonlyMap<string, readonly Endpoint[]>;

/** Largest endpoints file read (bytes): the policy file's limit; tens of thousands of entries. */
export const MAX_ENDPOINTS_FILE_BYTES = 1024 * 1024;

/** The file's text, or an InvalidPolicyError naming the file and why it cannot be read; `missing` when it does not exist. */
function readEndpointsFile(path: string): { text: string } | { error: InvalidPolicyError; missing: boolean } {
  const read = readBoundedFile(path, MAX_ENDPOINTS_FILE_BYTES);
  if (read.ok) return { text: read.text };
  return {
    error: new InvalidPolicyError(`endpoints file ${path}`, [{ path: '', value: path, message: `cannot read the file: ${read.reason}` }], ErrorCodes.INVALID_CONFIG),
    missing: read.code === 'ENOENT',
  };
}

export class FileRegistry implements Registry {
  readonly kind = 'file' as const;
  readonly allowLinkLocal: boolean;
  readonly path: string;
  /** How many times a changed file was loaded successfully (not counting the first load). */
  reloads = 0;
  #snapshot: Snapshot;
  #text: string;
  readonly #feed: SnapshotFeed;
  readonly #hub: WatchHub;
  readonly #logger: Logger;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #failing = false;

  readonly #options: FileRegistryOptions;

  constructor(options: FileRegistryOptions) {
    this.#options = options;
    this.allowLinkLocal = options.allowLinkLocal === true;
    this.path = resolve(options.path);
    this.#logger = safeLogger(options.logger ?? consoleLogger);
    const read = readEndpointsFile(this.path);
    if ('error' in read) throw read.error;
    const text = read.text;
    this.#text = text;
    this.#snapshot = this.#parse(text);
    this.#feed = new SnapshotFeed((q) => this.#snapshot.get(q.service) ?? []);
    this.#hub = new WatchHub('file', (q) => this.#feed.source(q), this.#logger);
    if (options.watch !== false) this.#startWatching();
  }

  /** Parses and validates the file's text; throws an InvalidPolicyError naming the file and every bad entry. */
  #parse(text: string): Snapshot {
    const source = `endpoints file ${this.path}`;
    let doc: unknown;
    try {
      doc = extname(this.path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
    } catch (err) {
      throw new InvalidPolicyError(source, [{ path: '', value: undefined, message: `not valid ${extname(this.path) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0] ?? ''}` }], ErrorCodes.INVALID_CONFIG);
    }
    const issues: PolicyIssue[] = [];
    const services = new Map<string, readonly Endpoint[]>();
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      issues.push({ path: '', value: doc, message: 'must be a map with a `services` key' });
    } else {
      const top = doc as Record<string, unknown>;
      for (const key of Object.keys(top)) if (key !== 'services') issues.push({ path: key, value: top[key], message: 'unknown field (only `services`)' });
      const s = top.services;
      if (typeof s !== 'object' || s === null || Array.isArray(s)) {
        issues.push({ path: 'services', value: s, message: 'must be a map of service name to endpoint list' });
      } else {
        for (const [name, list] of Object.entries(s as Record<string, unknown>)) {
          services.set(name, Object.freeze(parseEntries(list, `services.${name}`, issues, this.#options)));
        }
      }
    }
    if (issues.length > 0) throw new InvalidPolicyError(source, issues, ErrorCodes.INVALID_CONFIG);
    return services;
  }

  #startWatching(): void {
    const dir = dirname(this.path);
    const name = basename(this.path);
    try {
      // persistent: false — the watcher never keeps the process alive on its own.
      this.#watcher = watch(dir, { persistent: false }, (_event, file) => {
        if (file === null || file === name) this.#schedule();
      });
      this.#watcher.on('error', (err) => {
        this.#logger.error(`watching ${this.path} failed; the last good set stays in use`, { error: err.message });
      });
    } catch (err) {
      this.#logger.error(`cannot watch ${this.path}; changes will not be picked up`, { error: (err as Error).message });
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.reload();
    }, this.#options.debounceMs ?? 100);
    this.#timer.unref();
  }

  /** Reads the file again now (also what the watcher triggers). Never throws: failures are logged and keep the last good set. */
  reload(): Promise<void> {
    this.#reloadOnce();
    return Promise.resolve();
  }

  #reloadOnce(): void {
    if (this.#closed) return;
    // A bounded, synchronous read of a regular file of at most 1 MiB (a FIFO or a device is refused, never waited on).
    const read = readEndpointsFile(this.path);
    if ('error' in read) {
      // Mid-rename the file can be missing for a moment; the rename event reloads again.
      if (read.missing) {
        this.#logger.warn(`endpoints file ${this.path} is missing; keeping the last good set`);
        return;
      }
      this.#failed(read.error);
      return;
    }
    const text = read.text;
    if (text === this.#text) {
      // Back to the last good version after a broken one: tell the watches they are current again.
      if (this.#failing) {
        this.#failing = false;
        this.#feed.refresh();
      }
      return;
    }
    let snapshot: Snapshot;
    try {
      snapshot = this.#parse(text);
    } catch (err) {
      this.#failed(err as Error);
      return;
    }
    this.#text = text;
    this.#snapshot = snapshot;
    this.#failing = false;
    this.reloads++;
    this.#logger.info(`reloaded endpoints file ${this.path}`, { services: snapshot.size });
    this.#feed.refresh();
  }

  #failed(error: Error): void {
    this.#failing = true;
    this.#logger.error(`${error.message}\nkeeping the last good set`);
    this.#feed.fail(error);
  }

  subscribe(query: ResolveQuery, listener: EndpointsListener, options?: SubscribeOptions): RegistrySubscription {
    return this.#hub.subscribe(query, listener, options);
  }

  resolve(query: ResolveQuery): Promise<readonly Endpoint[]> {
    return this.#hub.resolve(query);
  }

  close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#watcher?.close();
    this.#hub.close();
    return Promise.resolve();
  }
}
