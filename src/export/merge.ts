/**
 * Several callers' policies merged into one per destination. Consul config
 * entries, Istio DestinationRules and HTTPRoutes are set per destination service
 * and apply to every caller, so two callers that want different values for the
 * same destination cannot both have them: that is refused, naming both sources
 * and the field, instead of letting the last one win. The `defaults` blocks
 * and same-named `resources` must agree only for a target that writes them
 * (`defaults` / `resources: true`): elsewhere every upstream already carries
 * the values it inherits, a resource is each process's own client, and the
 * first caller's values are reported, not written.
 */
import { ExportError } from '../errors.ts';
import type { ResolvedPolicy, ResolvedResource, ResolvedUpstream } from '../policy/types.ts';
import { policyFields } from './fields.ts';
import { showValue } from './report.ts';
import type { ExportCaller } from './types.ts';

export interface MergeOptions {
  /** The target writes the `defaults` block: the callers' must agree. */
  readonly defaults: boolean;
  /** The target writes `resources`: a resource two callers name must agree. */
  readonly resources: boolean;
}

export function mergeCallers(callers: readonly ExportCaller[], options: MergeOptions = { defaults: true, resources: true }): ResolvedPolicy {
  const [first] = callers;
  if (first === undefined) throw new ExportError('export needs at least one policy');
  const fieldsOf = callers.map((c) => policyFields(c.policy));
  const upstreams = unionOf(callers, fieldsOf, 'upstreams', (p) => p.upstreams, true);
  const resources = unionOf(callers, fieldsOf, 'resources', (p) => p.resources, options.resources);
  if (options.defaults) for (let i = 1; i < callers.length; i++) conflicts(callers, fieldsOf, 0, i, 'defaults');
  return { apiVersion: 'inmesh/v1', defaults: first.policy.defaults, upstreams, resources, inbound: first.policy.inbound };
}

/** Every caller's entries of one block (upstreams or resources) by name; the same name twice must agree field by field when `check`, else the first is kept. */
function unionOf<T extends ResolvedUpstream | ResolvedResource>(
  callers: readonly ExportCaller[],
  fieldsOf: readonly Map<string, unknown>[],
  block: 'upstreams' | 'resources',
  entries: (policy: ResolvedPolicy) => Readonly<Record<string, Readonly<T>>>,
  check: boolean,
): Record<string, Readonly<T>> {
  const out = Object.create(null) as Record<string, Readonly<T>>;
  const owner = new Map<string, number>();
  callers.forEach((caller, i) => {
    for (const [name, entry] of Object.entries(entries(caller.policy))) {
      const j = owner.get(name);
      if (j === undefined) {
        owner.set(name, i);
        out[name] = entry;
      } else if (check) {
        conflicts(callers, fieldsOf, j, i, `${block}.${name}`);
      }
    }
  });
  return out;
}

function conflicts(callers: readonly ExportCaller[], fieldsOf: readonly Map<string, unknown>[], a: number, b: number, prefix: string): void {
  const fa = fieldsOf[a] as Map<string, unknown>;
  const fb = fieldsOf[b] as Map<string, unknown>;
  const under = (field: string): boolean => field === prefix || field.startsWith(`${prefix}.`);
  const keys = new Set([...fa.keys(), ...fb.keys()].filter(under));
  for (const field of keys) {
    const va = show(fa.get(field));
    const vb = show(fb.get(field));
    if (va !== vb) {
      const sa = (callers[a] as ExportCaller).source;
      const sb = (callers[b] as ExportCaller).source;
      throw new ExportError(
        `${field}: ${sa} sets ${va} and ${sb} sets ${vb}; the targets hold one value per destination, so make the two policies agree`,
      );
    }
  }
}

function show(value: unknown): string {
  return value === undefined ? 'nothing' : showValue(value);
}
