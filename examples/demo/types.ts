/** Shapes the demo's processes exchange and the JSON report it writes. */

export const UPSTREAMS = ['orders', 'inventory'] as const;
export type Upstream = (typeof UPSTREAMS)[number];

/** One upstream's calls from the frontend since the previous sample, and the mesh's view of it. */
export interface UpstreamSample {
  calls: number;
  ok: number;
  retries: number;
  /** Latency percentiles of the calls (ms), null without calls. */
  p50: number | null;
  p99: number | null;
  /** The rest is from mesh.admin() `/clusters`: null without the mesh. */
  ejected: string[] | null;
  endpoints: number | null;
  breaker: string | null;
  /** Retries in flight (the budget in use) and the retries allowed in flight now. */
  budgetInUse: number | null;
  budgetLimit: number | null;
  registryError: string | null;
}

export interface FrontendSample {
  upstreams: Record<Upstream, UpstreamSample>;
}

/** One point of a run's time series (one per sample interval). */
export interface Point {
  /** Seconds since the run's load started. */
  t: number;
  /** Checkouts (the load's requests to the frontend) in this interval, and those answered 200. */
  checkouts: number;
  checkoutsOk: number;
  upstreams: Record<Upstream, UpstreamSample>;
}

export interface FaultEvent {
  /** Seconds since the load started. */
  at: number;
  /** Seconds it lasts (0: a moment). */
  lasts: number;
  label: string;
}

export interface RunTotals {
  checkouts: number;
  checkoutsOk: number;
  /** Percent of checkouts answered 200. */
  successRate: number;
  upstreamCalls: Record<Upstream, { calls: number; ok: number; retries: number; successRate: number; p99: number | null }>;
  /** What the instances did: requests they answered, 503s they injected, slow answers, kills. */
  atInstances: { served: number; injected503: number; slow: number; killed: number };
}

export interface RunResult {
  mode: 'mesh' | 'plain';
  points: Point[];
  faults: FaultEvent[];
  totals: RunTotals;
}

export interface DemoReport {
  version: 1;
  generatedAt: string;
  registry: 'consul' | 'file';
  registryNote: string;
  durationS: number;
  quick: boolean;
  runs: RunResult[];
  /** Every process the demo started, and those still running when it finished (must be empty). */
  processes: { name: string; pid: number }[];
  leftRunning: number[];
}
