// Latency samples in a bounded Float64Array, percentiles by sorting (the
// sample count is bounded, so a sort per cell is cheap and exact).

export class Samples {
  constructor(capacity) {
    this.values = new Float64Array(capacity);
    this.count = 0;
    this.seen = 0;
  }

  add(ms) {
    this.seen++;
    if (this.count < this.values.length) this.values[this.count++] = ms;
  }

  summary(elapsedMs) {
    const v = this.values.subarray(0, this.count).sort();
    const pick = (q) => (v.length === 0 ? NaN : v[Math.min(v.length - 1, Math.floor(q * v.length))]);
    return {
      requests: this.seen,
      rps: (this.seen / elapsedMs) * 1000,
      p50: pick(0.5),
      p99: pick(0.99),
    };
  }
}

export function fmt(n, digits = 2) {
  if (!Number.isFinite(n)) return 'n/a';
  return n.toFixed(digits);
}

export function fmtInt(n) {
  if (!Number.isFinite(n)) return 'n/a';
  return Math.round(n).toLocaleString('en-US');
}

/** Renders rows (arrays of strings) as a GitHub-flavoured markdown table. */
export function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
  return [line(header), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

/**
 * The load loop of every cell: `concurrency` workers each calling `call()` in
 * turn until `ms` have passed or `maxRequests` calls were issued (both bounds
 * always hold), recording each call's latency in `samples` when given.
 */
export async function drive(call, concurrency, ms, maxRequests, samples) {
  const end = performance.now() + ms;
  let issued = 0;
  let errors = 0;
  let lastError;
  const worker = async () => {
    while (issued < maxRequests) {
      const start = performance.now();
      if (start >= end) break;
      issued++;
      try {
        await call();
        samples?.add(performance.now() - start);
      } catch (err) {
        errors++;
        lastError = err;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { errors, lastError };
}
