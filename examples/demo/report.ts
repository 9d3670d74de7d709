/**
 * The HTML report: one self-contained page (inline CSS and SVG, no script, no
 * network) with the two runs' success rate and p99 over time, mesh against
 * plain, the faults marked, and the summary table.
 */
import { UPSTREAMS, type DemoReport, type FaultEvent, type Point, type RunResult } from './types.ts';
import { summary } from './view.ts';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const COLORS = { mesh: '#1a7f37', plain: '#cf222e' } as const;

interface Series {
  name: 'mesh' | 'plain';
  values: { t: number; v: number | null }[];
}

function chart(title: string, unit: string, series: readonly Series[], faults: readonly FaultEvent[], durationS: number, fixedMax?: number): string {
  const w = 760;
  const h = 240;
  const pad = { l: 52, r: 12, t: 28, b: 30 };
  const all = series.flatMap((s) => s.values.map((p) => p.v)).filter((v): v is number => v !== null);
  const max = fixedMax ?? Math.max(1, ...all) * 1.1;
  const x = (t: number): number => pad.l + (t / Math.max(durationS, 1)) * (w - pad.l - pad.r);
  const y = (v: number): number => h - pad.b - (v / max) * (h - pad.t - pad.b);
  const parts: string[] = [`<text x="${pad.l}" y="18" class="title">${esc(title)}</text>`];
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    parts.push(`<line x1="${pad.l}" x2="${w - pad.r}" y1="${y(v)}" y2="${y(v)}" class="grid"/>`);
    parts.push(`<text x="${pad.l - 6}" y="${y(v) + 4}" class="axis" text-anchor="end">${v.toFixed(v < 10 ? 1 : 0)}${unit}</text>`);
  }
  for (let t = 0; t <= durationS; t += durationS > 15 ? 5 : 1) {
    parts.push(`<text x="${x(t)}" y="${h - 10}" class="axis" text-anchor="middle">${t}s</text>`);
  }
  for (const f of faults) {
    if (f.lasts > 0) parts.push(`<rect x="${x(f.at)}" y="${pad.t}" width="${Math.max(1, x(f.at + f.lasts) - x(f.at))}" height="${h - pad.t - pad.b}" class="fault"><title>${esc(f.label)}</title></rect>`);
    parts.push(`<line x1="${x(f.at)}" x2="${x(f.at)}" y1="${pad.t}" y2="${h - pad.b}" class="mark"><title>${esc(f.label)}</title></line>`);
  }
  for (const s of series) {
    const pts = s.values.filter((p) => p.v !== null).map((p) => `${x(p.t).toFixed(1)},${y(p.v ?? 0).toFixed(1)}`);
    if (pts.length > 0) parts.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${COLORS[s.name]}" stroke-width="2"><title>${s.name}</title></polyline>`);
  }
  parts.push(`<text x="${w - pad.r - 190}" y="18" class="axis"><tspan fill="${COLORS.mesh}">━ with inmesh</tspan>  <tspan fill="${COLORS.plain}">━ plain fetch</tspan></text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(title)}">${parts.join('')}</svg>`;
}

const checkoutRate = (p: Point): number | null => (p.checkouts === 0 ? null : (100 * p.checkoutsOk) / p.checkouts);
const worstP99 = (p: Point): number | null => {
  const v = UPSTREAMS.map((u) => p.upstreams[u].p99).filter((x): x is number => x !== null);
  return v.length === 0 ? null : Math.max(...v);
};

export function htmlReport(report: DemoReport): string {
  const series = (f: (p: Point) => number | null): Series[] => report.runs.map((r: RunResult) => ({ name: r.mode, values: r.points.map((p) => ({ t: p.t, v: f(p) })) }));
  const faults = report.runs[0]?.faults ?? [];
  const charts = [
    chart('Checkouts answered 200 (%)', '%', series(checkoutRate), faults, report.durationS, 100),
    ...UPSTREAMS.map((u) => chart(`${u}: calls that succeeded (%)`, '%', series((p) => (p.upstreams[u].calls === 0 ? null : (100 * p.upstreams[u].ok) / p.upstreams[u].calls)), faults, report.durationS, 100)),
    chart('p99 latency of the upstream calls, worst upstream (ms)', 'ms', series(worstP99), faults, report.durationS),
  ];
  const faultRows = faults.map((f) => `<tr><td>${f.at.toFixed(1)} s</td><td>${f.lasts > 0 ? `${f.lasts.toFixed(1)} s` : ''}</td><td>${esc(f.label)}</td></tr>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>inmesh demo report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1f2328;max-width:820px}
h1{font-size:20px} pre{background:#f6f8fa;padding:12px;overflow:auto}
svg{display:block;margin:16px 0;border:1px solid #d0d7de;background:#fff}
.title{font-weight:600;font-size:13px}.axis{font-size:11px;fill:#57606a}.grid{stroke:#eaeef2}
.fault{fill:#cf222e;opacity:.07}.mark{stroke:#cf222e;stroke-dasharray:3 3;opacity:.6}
table{border-collapse:collapse}td{padding:2px 10px 2px 0}
</style></head><body>
<h1>inmesh demo: the same faults with and without the mesh</h1>
<p>Generated ${esc(report.generatedAt)}. Registry: ${esc(report.registry)} (${esc(report.registryNote)}). Each run: ${report.durationS} s of load${report.quick ? ' (quick)' : ''}.
Three <code>orders</code>, two <code>inventory</code> instances and a <code>frontend</code>, all separate processes on 127.0.0.1.
The shaded bands and dashed lines are the faults.</p>
${charts.join('\n')}
<h2>Fault timeline</h2><table>${faultRows}</table>
<h2>Summary</h2><pre>${esc(summary(report.runs).join('\n'))}</pre>
</body></html>
`;
}
