/**
 * A small schema check for the admin documents: every documented field present
 * with its type, and no field the docs do not list. A spec is a type name
 * (`'string'`, `'number'`, `'boolean'`, `'null'`, unions such as
 * `'number|null'`, `'any'`), an object of specs, `[spec]` for an array of
 * them, or `{ $nullable: spec }` for an object or array that may be null.
 */
export type Spec = string | readonly [Spec] | { readonly $nullable: Spec } | { readonly [key: string]: Spec };

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Problems found, as `path: what` lines (empty when the value matches). */
export function shapeProblems(value: unknown, spec: Spec, path = '$'): string[] {
  if (typeof spec === 'string') {
    if (spec === 'any') return [];
    return spec.split('|').includes(typeName(value)) ? [] : [`${path}: expected ${spec}, got ${typeName(value)}`];
  }
  if (Array.isArray(spec)) {
    if (!Array.isArray(value)) return [`${path}: expected an array, got ${typeName(value)}`];
    return value.flatMap((item, i) => shapeProblems(item, spec[0] as Spec, `${path}[${i}]`));
  }
  if ('$nullable' in spec) return value === null ? [] : shapeProblems(value, spec.$nullable, path);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${path}: expected an object, got ${typeName(value)}`];
  const out: string[] = [];
  const keys = Object.keys(spec);
  for (const k of Object.keys(value)) if (!keys.includes(k)) out.push(`${path}.${k}: not documented`);
  for (const k of keys) {
    if (!(k in value)) out.push(`${path}.${k}: missing`);
    else out.push(...shapeProblems((value as Record<string, unknown>)[k], (spec as Record<string, Spec>)[k] as Spec, `${path}.${k}`));
  }
  return out;
}
