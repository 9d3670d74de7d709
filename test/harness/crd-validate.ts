/**
 * Validates a Kubernetes custom resource against its CustomResourceDefinition
 * offline, the way kube-apiserver would with strict field validation:
 *
 * 1. the version's `openAPIV3Schema`, made strict (ajv): unknown fields are
 *    refused unless `x-kubernetes-preserve-unknown-fields`, `null` only where
 *    `nullable`, `format` int32/int64 as ranges, `byte` as base64, plus enums,
 *    patterns, lengths, bounds, `required`, `oneOf`/`anyOf`/`not`; structural
 *    defaults (`default`) are applied first, as the apiserver does before
 *    validating;
 * 2. every `x-kubernetes-validations` rule, evaluated as CEL (@bufbuild/cel)
 *    with `self` bound to the value at that node. A rule that does not compile
 *    (syntax error, unknown function, unbound variable) or that errors or does
 *    not yield a bool fails the validation: a rule never passes by accident;
 * 3. `x-kubernetes-list-type: set|map` uniqueness.
 *
 * `validateCrdObject(crdFile, object)` returns the problems, each naming the
 * path (`spec.http[0].timeout`) and the rule or message; empty means valid.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { celEnv, celFunc, CelScalar, isCelError, parse, plan, type CelEnv, type CelInput } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import { parseAllDocuments } from 'yaml';

type Schema = Record<string, unknown>;

interface CrdVersion {
  readonly group: string;
  readonly kind: string;
  readonly version: string;
  readonly served: boolean;
  readonly schema: Schema;
}

interface Compiled {
  readonly validate: ValidateFunction;
  readonly schema: Schema;
}

const INT_RANGES: Record<string, readonly [number, number]> = {
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  // Beyond 2^53 a JSON number has lost precision already; the safe range is the honest bound.
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/** What kube-apiserver itself checks in `metadata` (the CRD schema leaves it to the server). */
const OBJECT_META: Schema = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', maxLength: 253, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$' },
    namespace: { type: 'string', maxLength: 63, pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' },
    labels: { type: 'object', additionalProperties: { type: 'string', maxLength: 63 } },
    annotations: { type: 'object', additionalProperties: { type: 'string' } },
  },
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function loadCrdVersions(crdFile: string): CrdVersion[] {
  const out: CrdVersion[] = [];
  for (const doc of parseAllDocuments(readFileSync(crdFile, 'utf8'))) {
    const crd: unknown = doc.toJSON();
    if (!isObject(crd) || crd['kind'] !== 'CustomResourceDefinition') continue;
    const spec = crd['spec'] as Record<string, unknown>;
    const names = spec['names'] as Record<string, unknown>;
    for (const v of spec['versions'] as Record<string, unknown>[]) {
      const schema = (v['schema'] as Record<string, unknown> | undefined)?.['openAPIV3Schema'];
      if (!isObject(schema)) throw new Error(`${crdFile}: ${String(names['kind'])} ${String(v['name'])} has no openAPIV3Schema`);
      out.push({ group: String(spec['group']), kind: String(names['kind']), version: String(v['name']), served: v['served'] === true, schema });
    }
  }
  return out;
}

/**
 * The CRD schema as a strict JSON Schema for ajv: additionalProperties false
 * where the CRD lists properties (and does not preserve unknown fields),
 * nullable → type with null, integer formats → min/max, Kubernetes extension
 * keywords removed (they are checked by the walk below, not by ajv).
 */
function toStrictJsonSchema(node: Schema, isRoot: boolean): Schema {
  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('x-kubernetes-') || key === 'nullable' || key === 'format' || key === 'description' || key === 'example') continue;
    if (key === 'properties' && isObject(value)) {
      const props: Schema = {};
      for (const [name, sub] of Object.entries(value)) {
        props[name] = isRoot && name === 'metadata' ? OBJECT_META : toStrictJsonSchema(sub as Schema, false);
      }
      out[key] = props;
    } else if ((key === 'items' || key === 'additionalProperties' || key === 'not') && isObject(value)) {
      out[key] = toStrictJsonSchema(value, false);
    } else if ((key === 'oneOf' || key === 'anyOf' || key === 'allOf') && Array.isArray(value)) {
      out[key] = value.map((s) => toStrictJsonSchema(s as Schema, false));
    } else {
      out[key] = value;
    }
  }
  const preserve = node['x-kubernetes-preserve-unknown-fields'] === true;
  if (node['type'] === 'object' && !preserve && node['additionalProperties'] === undefined) {
    out['additionalProperties'] = false;
  }
  if (node['x-kubernetes-int-or-string'] === true && out['type'] === undefined && out['anyOf'] === undefined) {
    out['type'] = ['integer', 'string'];
  }
  const format = node['format'];
  if (typeof format === 'string') {
    const range = INT_RANGES[format];
    if (range !== undefined && (node['type'] === 'integer' || node['x-kubernetes-int-or-string'] === true)) {
      out['allOf'] = [...((out['allOf'] as Schema[] | undefined) ?? []), { if: { type: 'integer' }, then: { minimum: range[0], maximum: range[1] } }];
    }
    if (format === 'byte' && node['type'] === 'string') out['pattern'] = '^[A-Za-z0-9+/]*={0,2}$';
  }
  if (node['nullable'] === true && typeof out['type'] === 'string') out['type'] = [out['type'], 'null'];
  if (isRoot) {
    // The apiserver owns these three whether the CRD lists them or not.
    out['properties'] = { ...(out['properties'] as Schema | undefined), apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: OBJECT_META };
    out['required'] = ['apiVersion', 'kind', 'metadata'];
  }
  return out;
}

const compiledCache = new Map<string, Compiled>();
const versionsCache = new Map<string, CrdVersion[]>();

function versionsOf(crdFile: string): CrdVersion[] {
  let versions = versionsCache.get(crdFile);
  if (versions === undefined) {
    versions = loadCrdVersions(crdFile);
    versionsCache.set(crdFile, versions);
  }
  return versions;
}

function compiledFor(crdFile: string, apiVersion: string, kind: string): Compiled | string {
  const versions = versionsOf(crdFile);
  const slash = apiVersion.lastIndexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = apiVersion.slice(slash + 1);
  const match = versions.find((v) => v.kind === kind && v.group === group && v.version === version);
  if (match === undefined) {
    const known = versions.filter((v) => v.kind === kind).map((v) => `${v.group}/${v.version}`);
    return `${kind} ${apiVersion} is not in ${crdFile} (known: ${known.join(', ') || 'none'})`;
  }
  if (!match.served) return `${kind} ${apiVersion} is not served by ${crdFile}`;
  const key = `${crdFile}\0${kind}\0${apiVersion}`;
  let compiled = compiledCache.get(key);
  if (compiled === undefined) {
    const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: true, validateFormats: false });
    compiled = { validate: ajv.compile(toStrictJsonSchema(match.schema, true)), schema: match.schema };
    compiledCache.set(key, compiled);
  }
  return compiled;
}

/** `/spec/http/0/timeout` → `spec.http[0].timeout`. */
function pointerToPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    out += /^\d+$/.test(part) ? `[${part}]` : out === '' ? part : `.${part}`;
  }
  return out === '' ? '<root>' : out;
}

function describeAjvError(e: ErrorObject): string {
  const path = pointerToPath(e.instancePath);
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties':
      return `${path === '<root>' ? '' : path + '.'}${String(params['additionalProperty'])}: unknown field`;
    case 'enum':
      return `${path}: ${e.message ?? 'not allowed'} (${JSON.stringify(params['allowedValues'])})`;
    case 'required':
      return `${path === '<root>' ? '' : path + '.'}${String(params['missingProperty'])}: required`;
    default:
      return `${path}: ${e.keyword} ${e.message ?? ''}`.trim();
  }
}

// --- CEL -----------------------------------------------------------------

/** CEL keywords Kubernetes escapes in property names (`namespace` → `__namespace__`). */
const CEL_RESERVED = new Set([
  'true', 'false', 'null', 'in', 'as', 'break', 'const', 'continue', 'else', 'for', 'function', 'if', 'import', 'let',
  'loop', 'package', 'namespace', 'return', 'var', 'void', 'while',
]);

/** Kubernetes' property-name escaping for CEL (apiextensions-apiserver, `cel.Escape`). */
function escapeProperty(name: string): string {
  if (CEL_RESERVED.has(name)) return `__${name}__`;
  return name.replaceAll('__', '__underscores__').replaceAll('.', '__dot__').replaceAll('-', '__dash__').replaceAll('/', '__slash__');
}

/** A JSON value as CEL sees it under this schema: integers are CEL ints, objects with properties have escaped field names. */
function toCel(value: unknown, schema: Schema | undefined): CelInput {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return value.map((v) => toCel(v, schema?.['items'] as Schema | undefined));
  if (typeof value === 'number') {
    const integer = schema?.['type'] === 'integer' || (schema?.['x-kubernetes-int-or-string'] === true && Number.isInteger(value));
    return integer ? BigInt(value) : value;
  }
  if (isObject(value)) {
    const props = schema?.['properties'] as Record<string, Schema> | undefined;
    const addl = schema?.['additionalProperties'];
    const map = new Map<string, CelInput>();
    for (const [k, v] of Object.entries(value)) {
      if (props !== undefined && props[k] !== undefined) map.set(escapeProperty(k), toCel(v, props[k]));
      else map.set(k, toCel(v, isObject(addl) ? addl : undefined));
    }
    return map;
  }
  return value as CelInput;
}

/**
 * Kubernetes CEL functions the standard library lacks, registered so rules
 * using them compile. `isURL` follows Go's url.ParseRequestURI: an absolute
 * URL or an absolute path.
 */
const KUBERNETES_FUNCS = [
  celFunc('isURL', [CelScalar.STRING], CelScalar.BOOL, (s: string) => {
    if (s.startsWith('/')) return !/\s/.test(s);
    try {
      return new URL(s).protocol.length > 1;
    } catch {
      return false;
    }
  }),
];

const ENV: CelEnv = celEnv({ funcs: [...strings, ...KUBERNETES_FUNCS] });

/** Calls the planner handles itself (logic, conditional, index, macro helpers), not found in the function table. */
const PLANNER_CALLS = new Set(['_&&_', '_||_', '_?_:_', '_[_]', '@not_strictly_false', '_?._', '_[?_]']);

type Program = (ctx: { self: CelInput }) => unknown;
const programCache = new Map<string, Program | string>();

interface ExprNode {
  exprKind: { case: string | undefined; value?: unknown };
}

/**
 * Checks what @bufbuild/cel leaves to evaluation time, so an unknown
 * function or variable in a branch not taken still fails: every call must
 * name a known function and every identifier must be `self` or a
 * comprehension variable in scope.
 */
function compileProblems(expr: ExprNode, scope: ReadonlySet<string>, out: string[]): void {
  const kind = expr.exprKind;
  const v = kind.value as Record<string, unknown> | undefined;
  switch (kind.case) {
    case 'identExpr': {
      const name = String(v?.['name']);
      if (!scope.has(name)) out.push(`undeclared reference to '${name}'`);
      return;
    }
    case 'selectExpr':
      compileProblems(v?.['operand'] as ExprNode, scope, out);
      return;
    case 'callExpr': {
      const fn = String(v?.['function']);
      if (!PLANNER_CALLS.has(fn) && ENV.funcs.find(fn) === undefined) out.push(`undeclared function '${fn}'`);
      const target = v?.['target'] as ExprNode | undefined;
      if (target !== undefined) compileProblems(target, scope, out);
      for (const a of (v?.['args'] as ExprNode[] | undefined) ?? []) compileProblems(a, scope, out);
      return;
    }
    case 'listExpr':
      for (const e of (v?.['elements'] as ExprNode[] | undefined) ?? []) compileProblems(e, scope, out);
      return;
    case 'structExpr':
      for (const e of (v?.['entries'] as Record<string, unknown>[] | undefined) ?? []) {
        if (e['keyKind'] !== undefined && (e['keyKind'] as { case?: string }).case === 'mapKey') {
          compileProblems((e['keyKind'] as { value: ExprNode }).value, scope, out);
        }
        compileProblems(e['value'] as ExprNode, scope, out);
      }
      return;
    case 'comprehensionExpr': {
      compileProblems(v?.['iterRange'] as ExprNode, scope, out);
      compileProblems(v?.['accuInit'] as ExprNode, scope, out);
      const inner = new Set(scope);
      inner.add(String(v?.['iterVar']));
      if (typeof v?.['iterVar2'] === 'string' && v['iterVar2'] !== '') inner.add(v['iterVar2']);
      inner.add(String(v?.['accuVar']));
      for (const k of ['loopCondition', 'loopStep', 'result']) compileProblems(v?.[k] as ExprNode, inner, out);
      return;
    }
    default:
      return;
  }
}

function programFor(rule: string): Program | string {
  const cached = programCache.get(rule);
  if (cached !== undefined) return cached;
  let result: Program | string;
  try {
    const parsed = parse(rule);
    const problems: string[] = [];
    compileProblems(parsed.expr, new Set(['self']), problems);
    result = problems.length > 0 ? `compile error: ${problems.join('; ')}` : (plan(ENV, parsed));
  } catch (err) {
    result = `compile error: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
  }
  programCache.set(rule, result);
  return result;
}

/** Runs one CEL rule against a value; undefined when it holds, else why not. */
export function evaluateCelRule(rule: string, self: CelInput): string | undefined {
  const program = programFor(rule);
  if (typeof program === 'string') return program;
  let out: unknown;
  try {
    out = program({ self });
  } catch (err) {
    return `evaluation error: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (isCelError(out)) return `evaluation error: ${out.message}`;
  if (typeof out !== 'boolean') return `rule did not yield a bool (got ${typeof out})`;
  return out ? undefined : 'false';
}

function joinPath(base: string, part: string | number): string {
  if (typeof part === 'number') return `${base}[${part}]`;
  return base === '' ? part : `${base}.${part}`;
}

/** Walks value and schema together: CEL rules and list-type uniqueness at every node that has a value. */
function walk(value: unknown, schema: Schema, path: string, out: string[]): void {
  if (value === undefined || value === null) return;
  const rules = schema['x-kubernetes-validations'];
  if (Array.isArray(rules)) {
    for (const r of rules as Record<string, unknown>[]) {
      const rule = String(r['rule']);
      const failure = evaluateCelRule(rule, toCel(value, schema));
      if (failure !== undefined) {
        const message = typeof r['message'] === 'string' ? r['message'] : `failed rule: ${rule}`;
        out.push(`${path || '<root>'}: ${failure === 'false' ? message : `${message}: ${failure}`} (rule: ${rule})`);
      }
    }
  }
  if (Array.isArray(value)) {
    const items = schema['items'];
    const listType = schema['x-kubernetes-list-type'];
    if (listType === 'set' || listType === 'map') {
      const keys = (schema['x-kubernetes-list-map-keys'] as string[] | undefined) ?? [];
      const seen = new Map<string, number>();
      value.forEach((item, i) => {
        const id = listType === 'set' ? JSON.stringify(item) : JSON.stringify(keys.map((k) => (isObject(item) ? item[k] : undefined)));
        const first = seen.get(id);
        if (first !== undefined) out.push(`${joinPath(path, i)}: duplicate entry of ${listType} list (same as [${first}]${listType === 'map' ? ` by ${keys.join(', ')}` : ''})`);
        else seen.set(id, i);
      });
    }
    if (isObject(items)) value.forEach((item, i) => walk(item, items, joinPath(path, i), out));
    return;
  }
  if (isObject(value)) {
    const props = schema['properties'];
    const addl = schema['additionalProperties'];
    for (const [k, v] of Object.entries(value)) {
      const sub = isObject(props) ? props[k] : undefined;
      if (isObject(sub)) walk(v, sub, joinPath(path, k), out);
      else if (isObject(addl)) walk(v, addl, joinPath(path, k), out);
    }
  }
}

/**
 * Validates one object (apiVersion, kind, metadata, spec…) against the CRD in
 * `crdFile` (a multi-document YAML of CustomResourceDefinitions), picking the
 * CRD by the object's kind and the version by its apiVersion. Returns every
 * problem found, each `path: what (rule or keyword)`; empty when valid.
 */
export function validateCrdObject(crdFile: string, object: unknown): string[] {
  if (!isObject(object)) return ['<root>: not an object'];
  const apiVersion = object['apiVersion'];
  const kind = object['kind'];
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') return ['<root>: apiVersion and kind are required strings'];
  const compiled = compiledFor(crdFile, apiVersion, kind);
  if (typeof compiled === 'string') return [compiled];
  // Defaults are applied to a copy (as the apiserver does before validating); the caller's object is untouched.
  const copy: unknown = structuredClone(object);
  const problems: string[] = [];
  if (!compiled.validate(copy)) {
    for (const e of compiled.validate.errors ?? []) problems.push(describeAjvError(e));
  }
  walk(copy, compiled.schema, '', problems);
  return [...new Set(problems)];
}

/** The versions a CRD file serves for a kind, in the order the CRD lists them. */
export function servedVersions(crdFile: string, kind: string): string[] {
  return versionsOf(crdFile)
    .filter((v) => v.kind === kind && v.served)
    .map((v) => v.version);
}
