/**
 * The live terminal view: on a TTY, a table redrawn in place with the fault
 * timeline beside it; otherwise (a pipe, a CI log) one line per sample and one
 * per fault.
 */
import { UPSTREAMS, type FaultEvent, type Point, type RunResult } from './types.ts';

export interface ViewState {
  mode: 'mesh' | 'plain';
  registry: string;
  durationS: number;
  intervalS: number;
  point: Point;
  totalCheckouts: number;
  totalOk: number;
  /** The planned timeline and what has happened so far. */
  plan: readonly { at: number; label: string }[];
  done: readonly FaultEvent[];
  /** Instance names by `127.0.0.1:port`, to name ejected endpoints. */
  names: ReadonlyMap<string, string>;
}

const pct = (ok: number, n: number): string => (n === 0 ? '    -' : `${((100 * ok) / n).toFixed(1).padStart(5)}%`);
const ms = (v: number | null): string => (v === null ? '     -' : `${v < 10 ? v.toFixed(1) : Math.round(v)}ms`.padStart(6));
const strip = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '');

export class LiveView {
  readonly #tty: boolean;
  #drawn = 0;

  readonly #out: NodeJS.WriteStream;

  constructor(out: NodeJS.WriteStream = process.stdout) {
    this.#out = out;
    this.#tty = out.isTTY;
  }

  get tty(): boolean {
    return this.#tty;
  }

  /** A line outside the live table (start-up, faults in line mode, the summary). */
  say(line: string): void {
    if (this.#tty && this.#drawn > 0) {
      this.#out.write(`\x1b[${this.#drawn}F\x1b[J`);
      this.#drawn = 0;
    }
    this.#out.write(`${line}\n`);
  }

  fault(mode: string, e: FaultEvent): void {
    if (!this.#tty) this.say(`[${mode.padEnd(5)} ${e.at.toFixed(1).padStart(5)}s] fault: ${e.label}`);
  }

  update(s: ViewState): void {
    const p = s.point;
    if (!this.#tty) {
      const parts = UPSTREAMS.map((u) => {
        const x = p.upstreams[u];
        const mesh = x.breaker === null ? '' : ` ejected [${(x.ejected ?? []).map((e) => s.names.get(e) ?? e).join(' ')}] breaker ${x.breaker} budget ${x.budgetInUse ?? '-'}/${x.budgetLimit ?? '-'}`;
        return `${u} ${(x.calls / s.intervalS).toFixed(0)}/s ok${pct(x.ok, x.calls)} p50${ms(x.p50)} p99${ms(x.p99)} retries ${x.retries}${mesh}`;
      });
      this.say(`[${s.mode.padEnd(5)} ${p.t.toFixed(1).padStart(5)}s] checkouts ok${pct(p.checkoutsOk, p.checkouts)} | ${parts.join(' | ')}`);
      return;
    }
    const title = s.mode === 'mesh' ? '\x1b[1;32mwith inmesh\x1b[0m' : '\x1b[1;33mplain fetch (no mesh)\x1b[0m';
    const left: string[] = [
      `${title}  registry: ${s.registry}  t=${p.t.toFixed(1)}s / ${s.durationS}s`,
      `checkouts: ${s.totalCheckouts}, ok ${pct(s.totalOk, s.totalCheckouts)} overall, ${pct(p.checkoutsOk, p.checkouts)} now`,
      '',
      'upstream    req/s   ok      p50     p99   retries ejected breaker   budget',
    ];
    for (const u of UPSTREAMS) {
      const x = p.upstreams[u];
      left.push(
        [
          u.padEnd(10),
          (x.calls / s.intervalS).toFixed(0).padStart(6),
          pct(x.ok, x.calls),
          ms(x.p50),
          ms(x.p99),
          String(x.retries).padStart(8),
          (x.ejected === null ? '-' : String(x.ejected.length)).padStart(7),
          (x.breaker ?? '-').padStart(8),
          (x.budgetInUse === null ? '-' : `${x.budgetInUse}/${x.budgetLimit ?? '-'}`).padStart(8),
        ].join(' '),
      );
      if (x.ejected !== null && x.ejected.length > 0) left.push(`            ejected: ${x.ejected.map((e) => s.names.get(e) ?? e).join(', ')}`);
      if (x.registryError !== null) left.push(`            registry: ${x.registryError.slice(0, 60)}`);
    }
    const right = ['fault timeline'];
    for (const f of s.plan) {
      const happened = s.done.some((d) => d.label === f.label);
      right.push(`${happened ? '\x1b[31m●\x1b[0m' : '○'} ${f.at.toFixed(1).padStart(5)}s ${f.label}`);
    }
    const width = 78;
    const lines: string[] = [];
    // The timeline goes beside the table when the terminal is wide enough, else below it
    // (a wrapped line would break the redraw, which counts lines).
    if (this.#out.columns >= width + 2 + Math.max(...right.map((r) => strip(r).length))) {
      for (let i = 0; i < Math.max(left.length, right.length); i++) {
        const l = left[i] ?? '';
        lines.push(`${l}${' '.repeat(Math.max(1, width - strip(l).length))}│ ${right[i] ?? ''}`);
      }
    } else lines.push(...left, '', ...right);
    const cut = this.#out.columns > 0 ? this.#out.columns - 1 : Infinity;
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i] ?? '';
      if (strip(l).length > cut) lines[i] = strip(l).slice(0, cut);
    }
    if (this.#drawn > 0) this.#out.write(`\x1b[${this.#drawn}F\x1b[J`);
    this.#out.write(`${lines.join('\n')}\n`);
    this.#drawn = lines.length;
  }

  /** Ends the live table: it stays on screen, later lines go below it. */
  freeze(): void {
    this.#drawn = 0;
  }
}

/** The end summary: the two runs side by side. */
export function summary(runs: readonly RunResult[]): string[] {
  const mesh = runs.find((r) => r.mode === 'mesh');
  const plain = runs.find((r) => r.mode === 'plain');
  const col = (f: (r: RunResult) => string): string => `${(mesh ? f(mesh) : '-').padStart(14)} ${(plain ? f(plain) : '-').padStart(14)}`;
  const rows: [string, (r: RunResult) => string][] = [
    ['at the instances: requests answered', (r) => String(r.totals.atInstances.served)],
    ['  503s injected', (r) => String(r.totals.atInstances.injected503)],
    ['  slow answers (1.5 s)', (r) => String(r.totals.atInstances.slow)],
    ['  instances killed', (r) => String(r.totals.atInstances.killed)],
    ['the frontend saw: checkouts', (r) => String(r.totals.checkouts)],
    ['  checkouts ok', (r) => `${r.totals.successRate.toFixed(2)}%`],
    ...UPSTREAMS.flatMap((u): [string, (r: RunResult) => string][] => [
      [`  ${u} calls ok`, (r) => `${r.totals.upstreamCalls[u].successRate.toFixed(2)}%`],
      [`  ${u} failed calls`, (r) => String(r.totals.upstreamCalls[u].calls - r.totals.upstreamCalls[u].ok)],
      [`  ${u} p99`, (r) => ms(r.totals.upstreamCalls[u].p99).trim()],
      [`  ${u} retries`, (r) => String(r.totals.upstreamCalls[u].retries)],
    ]),
  ];
  return ['', `${''.padEnd(38)}${'with inmesh'.padStart(14)} ${'plain fetch'.padStart(14)}`, ...rows.map(([label, f]) => `${label.padEnd(38)}${col(f)}`)];
}
