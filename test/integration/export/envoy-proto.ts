/**
 * Checks Envoy xDS JSON against Envoy's own v3 protos (shipped inside
 * @grpc/grpc-js-xds), loaded with protobufjs. protobufjs's `fromObject`
 * ignores unknown fields, so this walks the JSON against the reflected types
 * itself: an unknown or deprecated field, a wrong scalar type, an undefined
 * enum value, two members of one oneof, a uint32 out of range, or a broken
 * protoc-gen-validate rule written in the protos (durations > 0, percent and
 * integer ranges, required fields and oneofs, string lengths and patterns,
 * list sizes) is an error naming the JSON path. `google.protobuf.Any` is
 * followed through its `@type`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';

const DEPS = join(import.meta.dirname, '../../../node_modules/@grpc/grpc-js-xds/deps');
const INCLUDE = [...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(DEPS, d)), join(import.meta.dirname, '../../../node_modules/protobufjs')];

const FILES = [
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
];

let cached: protobuf.Root | undefined;

export function envoyProtos(): protobuf.Root {
  if (cached !== undefined) return cached;
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    for (const dir of INCLUDE) {
      const file = join(dir, target);
      if (existsSync(file)) return file;
    }
    return target;
  };
  root.loadSync(FILES, { keepCase: true });
  root.resolveAll();
  cached = root;
  return root;
}

type Rules = Record<string, Record<string, unknown>>;

const INT_RANGE: Record<string, [number, number]> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  sint32: [-(2 ** 31), 2 ** 31 - 1],
  sfixed32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  fixed32: [0, 2 ** 32 - 1],
};
const INT64 = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const WRAPPERS: Record<string, string> = {
  '.google.protobuf.UInt32Value': 'uint32',
  '.google.protobuf.Int32Value': 'int32',
  '.google.protobuf.UInt64Value': 'uint64',
  '.google.protobuf.Int64Value': 'int64',
  '.google.protobuf.DoubleValue': 'double',
  '.google.protobuf.FloatValue': 'float',
  '.google.protobuf.BoolValue': 'bool',
  '.google.protobuf.StringValue': 'string',
};
const DURATION = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/;

/** Milliseconds of a JSON duration, or undefined when it is not one. */
function durationMs(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = DURATION.exec(value);
  if (m === null) return undefined;
  const ms = Number(m[2]) * 1000 + Number(`0.${m[3] ?? '0'}`) * 1000;
  return m[1] === '-' ? -ms : ms;
}

/** Milliseconds of a PGV duration bound (`{seconds, nanos}`, `{}` = 0). */
function boundMs(bound: unknown): number {
  const b = bound as { seconds?: number | string; nanos?: number };
  return Number(b.seconds ?? 0) * 1000 + (b.nanos ?? 0) / 1e6;
}

function rulesOf(field: protobuf.Field): Rules | undefined {
  const options = (field.parsedOptions ?? []) as unknown[];
  for (const option of options) {
    const rules = (option as Record<string, unknown>)['(validate.rules)'];
    if (rules !== undefined) return rules as Rules;
  }
  return undefined;
}

function compare(path: string, what: string, value: number, rules: Record<string, unknown>, errors: string[], toNumber: (b: unknown) => number = Number): void {
  const check = (key: string, ok: (v: number, b: number) => boolean, word: string) => {
    if (rules[key] !== undefined && !ok(value, toNumber(rules[key]))) errors.push(`${path}: ${what} ${value} must be ${word} ${toNumber(rules[key])}`);
  };
  check('gt', (v, b) => v > b, '>');
  check('gte', (v, b) => v >= b, '>=');
  check('lt', (v, b) => v < b, '<');
  check('lte', (v, b) => v <= b, '<=');
}

function checkScalar(path: string, type: string, value: unknown, rules: Record<string, unknown> | undefined, errors: string[]): void {
  const range = INT_RANGE[type];
  if (range !== undefined) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < range[0] || value > range[1]) {
      errors.push(`${path}: expected a ${type} from ${range[0]} to ${range[1]}, got ${JSON.stringify(value)}`);
      return;
    }
    if (rules !== undefined) compare(path, type, value, rules, errors);
  } else if (INT64.has(type)) {
    const ok = (typeof value === 'number' && Number.isSafeInteger(value)) || (typeof value === 'string' && /^-?\d+$/.test(value));
    if (!ok || (type.startsWith('u') || type === 'fixed64') && Number(value) < 0) errors.push(`${path}: expected a ${type}, got ${JSON.stringify(value)}`);
    else if (rules !== undefined) compare(path, type, Number(value), rules, errors);
  } else if (type === 'double' || type === 'float') {
    if (typeof value !== 'number' || !Number.isFinite(value)) errors.push(`${path}: expected a number, got ${JSON.stringify(value)}`);
    else if (rules !== undefined) compare(path, type, value, rules, errors);
  } else if (type === 'bool') {
    if (typeof value !== 'boolean') errors.push(`${path}: expected true or false, got ${JSON.stringify(value)}`);
  } else if (type === 'string' || type === 'bytes') {
    if (typeof value !== 'string') {
      errors.push(`${path}: expected a string, got ${JSON.stringify(value)}`);
      return;
    }
    if (rules === undefined) return;
    if (typeof rules.min_len === 'number' && value.length < rules.min_len) errors.push(`${path}: shorter than ${rules.min_len}`);
    if (typeof rules.min_bytes === 'number' && Buffer.byteLength(value) < rules.min_bytes) errors.push(`${path}: shorter than ${rules.min_bytes} bytes`);
    if (typeof rules.max_len === 'number' && value.length > rules.max_len) errors.push(`${path}: longer than ${rules.max_len}`);
    if (typeof rules.max_bytes === 'number' && Buffer.byteLength(value) > rules.max_bytes) errors.push(`${path}: longer than ${rules.max_bytes} bytes`);
    if (typeof rules.pattern === 'string' && !new RegExp(rules.pattern, 'u').test(value)) errors.push(`${path}: ${JSON.stringify(value)} does not match ${rules.pattern}`);
  } else {
    errors.push(`${path}: unknown scalar type ${type}`);
  }
}

function checkValue(root: protobuf.Root, field: protobuf.Field, path: string, value: unknown, rules: Rules | undefined, errors: string[]): void {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) {
    const known = typeof value === 'string' ? Object.hasOwn(resolved.values, value) : typeof value === 'number' && Object.values(resolved.values).includes(value);
    if (!known) errors.push(`${path}: ${JSON.stringify(value)} is not a value of ${resolved.fullName}`);
    const num = typeof value === 'string' ? resolved.values[value] : value;
    const notIn = rules?.enum?.not_in as number[] | undefined;
    if (notIn?.includes(num as number) === true) errors.push(`${path}: ${JSON.stringify(value)} is refused here`);
    return;
  }
  if (resolved instanceof protobuf.Type) {
    const wrapped = WRAPPERS[resolved.fullName];
    if (wrapped !== undefined) {
      checkScalar(path, wrapped, value, rules?.[wrapped] ?? (wrapped === 'double' ? rules?.double : undefined), errors);
      return;
    }
    if (resolved.fullName === '.google.protobuf.Duration') {
      const ms = durationMs(value);
      if (ms === undefined) errors.push(`${path}: expected a duration such as "0.250s", got ${JSON.stringify(value)}`);
      else if (rules?.duration !== undefined) compare(path, 'duration (ms)', ms, rules.duration, errors, boundMs);
      return;
    }
    if (resolved.fullName === '.google.protobuf.Struct' || resolved.fullName === '.google.protobuf.Value') {
      if (resolved.fullName === '.google.protobuf.Struct' && (value === null || typeof value !== 'object' || Array.isArray(value))) errors.push(`${path}: expected an object`);
      return;
    }
    checkMessage(root, resolved, path, value, errors);
    return;
  }
  checkScalar(path, field.type, value, rules?.[field.type], errors);
}

function checkMessage(root: protobuf.Root, type: protobuf.Type, path: string, value: unknown, errors: string[]): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    errors.push(`${path}: expected an object for ${type.fullName}`);
    return;
  }
  const obj = value as Record<string, unknown>;
  if (type.fullName === '.google.protobuf.Any') {
    const url = obj['@type'];
    if (typeof url !== 'string' || !url.startsWith('type.googleapis.com/')) {
      errors.push(`${path}: an Any needs "@type": "type.googleapis.com/<message>"`);
      return;
    }
    let inner: protobuf.Type;
    try {
      inner = root.lookupType(url.slice('type.googleapis.com/'.length));
    } catch {
      errors.push(`${path}: unknown @type ${url}`);
      return;
    }
    const rest = Object.fromEntries(Object.entries(obj).filter(([key]) => key !== '@type'));
    checkMessage(root, inner, path, rest, errors);
    return;
  }
  const set = new Set<string>();
  for (const [key, v] of Object.entries(obj)) {
    const field = type.fields[key];
    if (field === undefined) {
      errors.push(`${path}.${key}: unknown field of ${type.fullName}`);
      continue;
    }
    set.add(key);
    const here = `${path}.${key}`;
    if (field.options?.deprecated === true) errors.push(`${here}: deprecated field of ${type.fullName}`);
    const rules = rulesOf(field);
    if (field instanceof protobuf.MapField) {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) errors.push(`${here}: expected a map object`);
      else for (const [k, item] of Object.entries(v)) checkValue(root, field, `${here}[${JSON.stringify(k)}]`, item, rules, errors);
    } else if (field.repeated) {
      if (!Array.isArray(v)) {
        errors.push(`${here}: expected a list`);
        continue;
      }
      const rep = rules?.repeated;
      if (typeof rep?.min_items === 'number' && v.length < rep.min_items) errors.push(`${here}: needs at least ${rep.min_items} entries`);
      if (typeof rep?.max_items === 'number' && v.length > rep.max_items) errors.push(`${here}: takes at most ${rep.max_items} entries`);
      v.forEach((item, i) => checkValue(root, field, `${here}[${i}]`, item, rep?.items as Rules | undefined, errors));
    } else {
      checkValue(root, field, here, v, rules, errors);
    }
  }
  for (const field of type.fieldsArray) {
    // A oneof member's `required` holds only when that member is the one chosen.
    if (field.partOf !== null && !oneofSynthetic(field.partOf)) continue;
    const rules = rulesOf(field);
    const required = (rules?.message?.required ?? rules?.duration?.required) === true;
    if (required && !set.has(field.name)) errors.push(`${path}.${field.name}: required by ${type.fullName}`);
  }
  for (const oneof of type.oneofsArray) {
    if (oneofSynthetic(oneof)) continue;
    const present = oneof.oneof.filter((name) => set.has(name));
    if (present.length > 1) errors.push(`${path}: ${present.join(' and ')} are one of ${oneof.name}; set at most one`);
    if (present.length === 0 && oneof.options?.['(validate.required)'] === true) errors.push(`${path}: one of ${oneof.oneof.join(', ')} is required (${oneof.name})`);
  }
}

/** A proto3 `optional` field's own oneof (named `_field`), not a real choice. */
function oneofSynthetic(oneof: protobuf.OneOf): boolean {
  return oneof.name.startsWith('_');
}

/** Errors of `doc` as a `typeName` (e.g. `envoy.config.cluster.v3.Cluster`); empty when it is valid. */
export function envoyProtoErrors(typeName: string, doc: unknown): string[] {
  const root = envoyProtos();
  const errors: string[] = [];
  checkMessage(root, root.lookupType(typeName), typeName, doc, errors);
  return errors;
}
