/**
 * Generates, from the zod policy schema (src/policy/schema.ts) and the env
 * table (src/config/env.ts):
 *   - src/policy/policy.schema.json  the published JSON Schema (draft 2020-12), copied to
 *                                    dist/policy.schema.json by the build, package export `inmesh/schema.json`
 *   - docs/policy-reference.md    every field: type, unit, default, allowed values, mapping
 *   - docs/configuration.md       the environment variable table (between markers)
 *
 * `npm run docs:policy` writes them; `npm run docs:check` (--check) exits 1
 * when any of them is stale. Runs on Node 24 with type stripping.
 */
import { readFileSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NO_MAPPING, buildJsonSchema, type FieldMapping } from '../src/policy/schema.ts';
import { DURATION_PATTERN } from '../src/policy/duration.ts';
import { ENV_VARIABLES } from '../src/config/env.ts';

type Json = Record<string, unknown>;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');

const schema = buildJsonSchema();
const defs = (schema.$defs ?? {}) as Record<string, Json>;

function deref(node: Json): Json {
  const ref = node.$ref;
  if (typeof ref === 'string' && ref.startsWith('#/$defs/')) {
    const target = defs[ref.slice('#/$defs/'.length)];
    if (target === undefined) throw new Error(`unknown $ref ${ref}`);
    const rest = { ...node };
    delete rest.$ref;
    return { ...target, ...rest };
  }
  return node;
}

const code = (text: string): string => `\`${text}\``;
/** A string-valued schema keyword, or ''. */
const str = (value: unknown): string => (typeof value === 'string' || typeof value === 'number' ? String(value) : '');
const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function objectBranch(node: Json): Json | undefined {
  const n = deref(node);
  if (n.type === 'object' && n.properties !== undefined) return n;
  const anyOf = n.anyOf as Json[] | undefined;
  const branch = anyOf?.map(deref).find((b) => b.type === 'object' && b.properties !== undefined);
  return branch;
}

function typeOf(node: Json): string {
  const n = deref(node);
  if (Array.isArray(n.anyOf)) return (n.anyOf as Json[]).map((b) => typeOf(b)).join(' \\| ');
  if (n.const !== undefined) return code(JSON.stringify(n.const));
  if (Array.isArray(n.enum)) return 'enum';
  if (n.type === 'string' && n.pattern === DURATION_PATTERN) return 'duration';
  if (n.type === 'array') return `list of ${typeOf((n.items ?? {}) as Json)}`;
  if (n.type === 'object') return 'object';
  return str(n.type) || 'any';
}

function allowedOf(node: Json): string {
  const n = deref(node);
  if (Array.isArray(n.enum)) return (n.enum as unknown[]).map((v) => code(String(v))).join(', ');
  if (n.type === 'array') return allowedOf((n.items ?? {}) as Json);
  const min = n.minimum ?? n.exclusiveMinimum;
  if (typeof min === 'number' && typeof n.maximum === 'number')
    return `${n.exclusiveMinimum === undefined ? '' : '> '}${min} – ${n.maximum}`;
  if (typeof n.minimum === 'number') return `≥ ${n.minimum}`;
  if (n.type === 'string' && n.pattern === DURATION_PATTERN) return 'e.g. "250ms", "10s", "1m30s"';
  if (typeof n.pattern === 'string') return `pattern ${code(n.pattern)}`;
  return '';
}

function defaultOf(node: Json): string {
  if (node.default === undefined) return '—';
  const value = node.default;
  if (Array.isArray(value)) return value.length === 0 ? '`[]`' : `\`[${value.join(', ')}]\``;
  return code(typeof value === 'string' ? value : JSON.stringify(value));
}

interface Row {
  path: string;
  node: Json;
  maps: FieldMapping | undefined;
}

function collect(node: Json, prefix: string, rows: Row[], skip: ReadonlySet<string> = new Set()): void {
  const obj = objectBranch(node);
  if (obj === undefined) return;
  for (const [key, child] of Object.entries(obj.properties as Record<string, Json>)) {
    if (skip.has(key)) continue;
    const path = prefix === '' ? key : `${prefix}.${key}`;
    const c = deref(child);
    const maps = c['x-inmesh-maps'] as FieldMapping | undefined;
    const isBlock = objectBranch(c) !== undefined && maps === undefined;
    if (isBlock) {
      rows.push({ path, node: c, maps: undefined });
      collect(c, path, rows);
    } else if (c.type === 'array' && objectBranch((c.items ?? {}) as Json) !== undefined) {
      rows.push({ path: `${path}[]`, node: c, maps: undefined });
      collect((c.items ?? {}) as Json, `${path}[]`, rows);
    } else rows.push({ path, node: c, maps });
  }
}

function mapCell(value: string): string {
  if (value.startsWith(NO_MAPPING)) return cell(`– (${value.slice(NO_MAPPING.length)})`);
  return cell(code(value));
}

function section(title: string, intro: string, rows: readonly Row[]): string {
  const out: string[] = [`## ${title}`, '', intro, ''];
  out.push('| field | type | unit | default | allowed | description |', '|---|---|---|---|---|---|');
  for (const row of rows) {
    const n = row.node;
    if (row.maps === undefined) {
      out.push(`| **${code(row.path)}** | ${typeOf(n)} | | | | ${cell(str(n.description))} |`);
      continue;
    }
    out.push(
      `| ${code(row.path)} | ${typeOf(n)} | ${str(n['x-inmesh-unit'])} | ${defaultOf(n)} | ${cell(allowedOf(n))} | ${cell(str(n.description))} |`,
    );
  }
  const mapped = rows.filter((r) => r.maps !== undefined);
  if (mapped.length > 0) {
    out.push('', `### ${title}: mapping`, '', '| field | Istio | Consul | Gateway API | Envoy | Dapr | notes |', '|---|---|---|---|---|---|---|');
    for (const row of mapped) {
      const maps = row.maps as FieldMapping;
      const notes = [
        maps.sdkOnly === true ? `**SDK-only** (no proxy mesh has it): nearest is ${maps.nearest ?? '(none)'}.` : '',
        maps.note ?? '',
      ]
        .filter(Boolean)
        .join(' ');
      out.push(
        `| ${code(row.path)} | ${mapCell(maps.istio)} | ${mapCell(maps.consul)} | ${mapCell(maps.gatewayApi)} | ${mapCell(maps.envoy)} | ${mapCell(maps.dapr)} | ${cell(notes)} |`,
      );
    }
  }
  out.push('');
  return out.join('\n');
}

function policyReference(): string {
  const props = schema.properties as Record<string, Json>;
  const upstreamRows: Row[] = [];
  collect(deref(props.upstreams?.additionalProperties as Json), '', upstreamRows, new Set(['routes']));
  const routeRows: Row[] = [];
  const upstream = deref(props.upstreams?.additionalProperties as Json);
  const routes = deref((upstream.properties as Record<string, Json>).routes ?? {});
  collect((routes.items ?? {}) as Json, '', routeRows);
  const inboundRows: Row[] = [];
  collect(deref(props.inbound ?? {}), '', inboundRows);
  const resourceRows: Row[] = [];
  collect(deref((props.resources?.additionalProperties ?? {}) as Json), '', resourceRows);

  return [
    '<!-- Generated by .ci/gen-policy-docs.ts from src/policy/schema.ts; do not edit. Run `npm run docs:policy`. -->',
    '# Policy reference',
    '',
    'Every field of the inmesh policy document (`apiVersion: inmesh/v1`), its type, unit, built-in default and allowed values, and where the same intent lives in each export target: Istio (DestinationRule / VirtualService), Consul config entries (the version that has the field is named; tests run 1.8.7), Gateway API HTTPRoute (GAMMA), Envoy v3 and Dapr Resiliency. `–` means that target has no equivalent, with the reason; SDK-only fields exist in no proxy mesh and name the nearest thing instead. What `inmesh export` writes for each: [migration.md](migration.md). How the model works (durations, merge order, retry attempts, precedence of sources): [policy.md](policy.md). The JSON Schema is `src/policy/policy.schema.json`, shipped as `dist/policy.schema.json` (package export `inmesh/schema.json`).',
    '',
    'Conventions: **durations** are strings such as `"250ms"`, `"10s"`, `"1m30s"` (units h, m, s, ms; whole milliseconds; at most 24h); numbers are refused. **Percentages** are 0–100. Every field is optional; unknown fields are errors.',
    '',
    '## Document',
    '',
    '| field | description |',
    '|---|---|',
    ...Object.entries(props).map(([key, node]) => `| ${code(key)} | ${cell(str(deref(node).description))} |`),
    '',
    section(
      'Upstream policy blocks',
      'These blocks are allowed in `defaults` and in `upstreams.<name>`. Resolution merges them field by field: built-in default ← `defaults` ← `upstreams.<name>` ← route (lists and `hashOn` replace as a whole).',
      upstreamRows,
    ),
    section(
      'Routes',
      '`upstreams.<name>.routes[]`: tried in order, the first whose `match` holds wins; a request that matches none uses the upstream\'s policy. A route\'s `timeouts` and `retries` merge over the upstream\'s; the fields are those of the upstream blocks above (defaults: the upstream\'s values).',
      routeRows,
    ),
    section('Inbound', '`inbound`: the server side (requests this process receives).', inboundRows),
    section(
      'Resources',
      '`resources.<name>`: calls to a cache, database or queue through `mesh.guard(name, fn)` ([resources.md](resources.md)). Resolution: built-in default ← `resources.<name>` (document `defaults` apply to upstreams only).',
      resourceRows,
    ),
  ].join('\n');
}

const ENV_START = '<!-- env-table:start (generated from src/config/env.ts by .ci/gen-policy-docs.ts) -->';
const ENV_END = '<!-- env-table:end -->';

function envTable(): string {
  const lines = [ENV_START, '', '| variable | sets | expected | example | description |', '|---|---|---|---|---|'];
  for (const v of ENV_VARIABLES) {
    const description = `${v.description}${v.secret === true ? ' **Secret.**' : ''}${v.owner === undefined ? '' : ` (read by the ${v.owner})`}`;
    lines.push(`| ${code(v.name)} | ${code(v.target)} | ${cell(v.expected)} | ${code(v.example)} | ${cell(description)} |`);
  }
  lines.push('', ENV_END);
  return lines.join('\n');
}

function withEnvTable(current: string): string {
  const start = current.indexOf(ENV_START);
  const end = current.indexOf(ENV_END);
  if (start === -1 || end === -1) throw new Error(`docs/configuration.md must contain the markers ${ENV_START} and ${ENV_END}`);
  return current.slice(0, start) + envTable() + current.slice(end + ENV_END.length);
}

const configurationPath = join(root, 'docs/configuration.md');
const outputs: [string, string][] = [
  [join(root, 'src/policy/policy.schema.json'), `${JSON.stringify(schema, null, 2)}\n`],
  [join(root, 'docs/policy-reference.md'), policyReference()],
];
if (existsSync(configurationPath)) outputs.push([configurationPath, withEnvTable(readFileSync(configurationPath, 'utf8'))]);

let stale = 0;
for (const [file, content] of outputs) {
  const current = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  if (current === content) continue;
  if (check) {
    stale++;
    console.error(`stale: ${file.slice(root.length + 1)} (run npm run docs:policy)`);
  } else {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
    console.log(`wrote ${file.slice(root.length + 1)}`);
  }
}
if (check) {
  if (stale > 0) process.exit(1);
  console.log('policy docs and schema are current');
}
