/** What the bench reports: every figure once, with its unit and its goal where there is one. */

export interface Goal {
  text: string;
  met(v: number): boolean;
}

export interface FigureDef {
  key: string;
  label: string;
  unit: string;
  digits: number;
  goal?: Goal;
  /** Measured only with --cpu-quota (NaN, shown as "skipped", without it or where no cgroup is writable). */
  quota?: boolean;
}

const atMost = (limit: number, unit: string): Goal => ({ text: `≤ ${limit}${unit}`, met: (v) => v <= limit });
const atLeast = (limit: number, unit: string): Goal => ({ text: `≥ ${limit}${unit}`, met: (v) => v >= limit });
const zero: Goal = { text: '0', met: (v) => v === 0 };

export const FIGURES: FigureDef[] = [
  { key: 'hot.daemon.rps', label: 'hot reads, daemon', unit: 'req/s', digits: 0 },
  { key: 'hot.bare.rps', label: 'hot reads, bare node:http', unit: 'req/s', digits: 0 },
  // Paired: the ratio of each repetition (daemon and bare measured back to back), then the median.
  { key: 'hot.ratio', label: 'hot reads, daemon / bare', unit: '×', digits: 2, goal: atLeast(0.6, '×') },
  { key: 'hot.daemon.p50Ms', label: 'hot latency p50, daemon', unit: 'ms', digits: 1 },
  { key: 'hot.daemon.p99Ms', label: 'hot latency p99, daemon', unit: 'ms', digits: 1, goal: atMost(5, ' ms') },
  { key: 'hot.daemon.meanMs', label: 'hot latency mean, daemon', unit: 'ms', digits: 2 },
  { key: 'hot.bare.p50Ms', label: 'hot latency p50, bare', unit: 'ms', digits: 1 },
  { key: 'hot.bare.p99Ms', label: 'hot latency p99, bare', unit: 'ms', digits: 1 },
  { key: 'hot.bare.meanMs', label: 'hot latency mean, bare', unit: 'ms', digits: 2 },
  { key: 'hot.daemon.cacheNonHits', label: 'hot reads not answered from the cache', unit: '', digits: 0, goal: zero },
  { key: 'cpu.daemonMsPer10k', label: 'daemon CPU (user+sys) per 10,000 hot reads', unit: 'ms', digits: 0 },
  { key: 'cpu.bareMsPer10k', label: 'bare server CPU per 10,000 reads', unit: 'ms', digits: 0 },
  // Issue 13: what a read costs, as CPU time, against the bare server's cost for the same bytes.
  {
    key: 'cpu.ratio',
    label: 'CPU per hot read, C connections, daemon / bare',
    unit: '×',
    digits: 2,
    goal: atMost(1.2, '×'),
  },
  { key: 'cpu1.daemonMsPerRead', label: 'CPU per hot read, one connection, daemon', unit: 'ms', digits: 3 },
  { key: 'cpu1.bareMsPerRead', label: 'CPU per hot read, one connection, bare', unit: 'ms', digits: 3 },
  {
    key: 'cpu1.ratio',
    label: 'CPU per hot read, one connection, daemon / bare',
    unit: '×',
    digits: 2,
    goal: atMost(1.5, '×'),
  },
  {
    key: 'quota.daemon.rps',
    label: 'hot reads at Q vCPU (cgroup quota), K connections, daemon',
    unit: 'req/s',
    digits: 0,
    quota: true,
  },
  {
    key: 'quota.bare.rps',
    label: 'hot reads at Q vCPU (cgroup quota), K connections, bare',
    unit: 'req/s',
    digits: 0,
    quota: true,
  },
  {
    key: 'quota.ratio',
    label: 'hot reads at Q vCPU (cgroup quota), K connections, daemon / bare',
    unit: '×',
    digits: 2,
    goal: atLeast(0.75, '×'),
    quota: true,
  },
  { key: 'backend.dynamodbPer1kHot', label: 'DynamoDB calls per 1,000 hot reads', unit: '', digits: 3, goal: zero },
  { key: 'backend.kmsPer1kHot', label: 'KMS calls per 1,000 hot reads', unit: '', digits: 3, goal: zero },
  {
    key: 'backend.per1kDistinctCached',
    label: 'backend calls per 1,000 reads of N distinct cached secrets',
    unit: '',
    digits: 3,
    goal: zero,
  },
  {
    key: 'backend.dynamodbReadsPerSecret',
    label: 'DynamoDB reads per secret within the TTL',
    unit: '',
    digits: 3,
    goal: atMost(1, ''),
  },
  { key: 'cold.p50Ms', label: 'cold read p50 (DynamoDB + KMS + decrypt)', unit: 'ms', digits: 1 },
  { key: 'cold.maxMs', label: 'cold read max', unit: 'ms', digits: 1 },
  { key: 'cold.firstMs', label: 'first read after start-up', unit: 'ms', digits: 1 },
  { key: 'cold.dynamodbPerRead', label: 'DynamoDB calls per cold read', unit: '', digits: 2 },
  { key: 'cold.kmsPerRead', label: 'KMS calls per cold read', unit: '', digits: 2 },
  { key: 'startup.listeningMs', label: 'start-up: spawn to listening', unit: 'ms', digits: 0 },
  {
    key: 'startup.healthyMs',
    label: 'start-up: spawn to /health 200',
    unit: 'ms',
    digits: 0,
    goal: atMost(300, ' ms'),
  },
  { key: 'fetch.wallMs', label: 'CLI `fetch` one-shot, wall', unit: 'ms', digits: 0, goal: atMost(400, ' ms') },
  {
    key: 'exec.childStartMs',
    label: '`exec`: spawn to the child running (secret read included)',
    unit: 'ms',
    digits: 0,
  },
  { key: 'exec.directStartMs', label: 'the same child spawned directly', unit: 'ms', digits: 0 },
  {
    key: 'exec.overheadMs',
    label: '`exec` start-up overhead (exec start → child start, minus the direct start)',
    unit: 'ms',
    digits: 0,
  },
  {
    key: 'memory.rssIdleMiB',
    label: 'daemon RSS, idle after start-up',
    unit: 'MiB',
    digits: 1,
    goal: atMost(56, ' MiB'),
  },
  {
    key: 'memory.rssAfterLoadMiB',
    label: 'daemon RSS after the load, N secrets cached',
    unit: 'MiB',
    digits: 1,
    goal: atMost(80, ' MiB'),
  },
  { key: 'load.generatorCoresDaemon', label: 'load generator CPU while loading the daemon', unit: 'cores', digits: 2 },
  {
    key: 'load.generatorCoresBare',
    label: 'load generator CPU while loading the bare server',
    unit: 'cores',
    digits: 2,
  },
  { key: 'load.otherCoresDaemon', label: "other processes' CPU while loading the daemon", unit: 'cores', digits: 2 },
  { key: 'load.otherCoresBare', label: "other processes' CPU while loading the bare server", unit: 'cores', digits: 2 },
  { key: 'writes.concurrent50Ms', label: '50 concurrent POSTs to one name, wall', unit: 'ms', digits: 0 },
  {
    key: 'writes.concurrent50Refused',
    label: 'conditional puts refused during those 50 POSTs',
    unit: '',
    digits: 0,
    goal: zero,
  },
  { key: 'log.bytesPerHotRead', label: 'log bytes written per hot read', unit: 'B', digits: 0 },
  { key: 'prefetch.healthyMs', label: 'start-up prefetching 100 secrets: spawn to /health 200', unit: 'ms', digits: 0 },
  {
    key: 'prefetch.dynamodbReadsPerSecret',
    label: 'DynamoDB reads per prefetched secret at start-up',
    unit: '',
    digits: 2,
  },
  { key: 'prefetch.kmsPerSecret', label: 'KMS calls per prefetched secret at start-up', unit: '', digits: 2 },
  {
    key: 'prefetch.firstReadNonHits',
    label: 'first reads of the 100 prefetched secrets not answered from the cache',
    unit: '',
    digits: 0,
    goal: zero,
  },
  {
    key: 'import.versionsPerSecond',
    label: '`import ssm --history` into --local: N parameters × 3 versions, versions per second (wall)',
    unit: 'versions/s',
    digits: 0,
    goal: atLeast(300, ' versions/s'),
  },
  {
    key: 'propagation.p50Ms',
    label: 'a CLI rotation reaches two daemons at --watch-interval 1: CLI exit → both serve it, p50',
    unit: 'ms',
    digits: 0,
  },
  {
    key: 'propagation.p99Ms',
    label: 'a CLI rotation reaches two daemons at --watch-interval 1: CLI exit → both serve it, p99',
    unit: 'ms',
    digits: 0,
    goal: atMost(1250, ' ms'),
  },
  {
    key: 'idle.watchingReadsPerMin',
    label: 'DynamoDB reads per minute, idle daemon keeping N secrets fresh, defaults (watch 5 s, TTL 600 s)',
    unit: '/min',
    digits: 0,
  },
  {
    key: 'idle.unwatchedReadsPerMin',
    label: 'DynamoDB reads per minute, idle daemon keeping N secrets fresh, no watching, TTL 30 s',
    unit: '/min',
    digits: 0,
  },
  {
    key: 'idle.ratio',
    label: 'idle reads per minute, defaults / no watching with a 30 s TTL',
    unit: '×',
    digits: 3,
    goal: atMost(0.1, '×'),
  },
];

export type Figures = Record<string, number>;

function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function medianFigures(reps: Figures[]): Figures {
  const out: Figures = {};
  for (const f of FIGURES) out[f.key] = median(reps.map((r) => r[f.key]));
  return out;
}

function fmt(v: number, digits: number): string {
  if (!Number.isFinite(v)) return String(v);
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** The run's numbers in a figure's label: N secrets, C connections, Q cores and K connections under the quota. */
export interface LabelValues {
  secrets: number;
  connections: number;
  quota?: number;
  quotaConnections: number;
}

export function labelOf(f: FigureDef, v: LabelValues): string {
  return f.label
    .replace(' N ', ` ${v.secrets.toLocaleString('en-US')} `)
    .replace(' C connections', ` ${v.connections} connections`)
    .replace(' Q vCPU', ` ${v.quota ?? 'Q'} vCPU`)
    .replace(' K connections', ` ${v.quotaConnections} connections`);
}

/** Half the range of the repetitions, relative to their median: how far to trust the median. */
function spread(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x));
  const m = median(v);
  if (v.length < 2 || !Number.isFinite(m) || m === 0) return NaN;
  return (Math.max(...v) - Math.min(...v)) / 2 / Math.abs(m);
}

/** A plain-text table (also valid Markdown). Figures measured only with --cpu-quota show `skipped` without it. */
export function table(med: Figures, reps: Figures[], labels: LabelValues, skipped?: string): string {
  const rows: string[][] = [['figure', 'median', 'unit', 'spread', 'repetitions', 'goal', 'met']];
  for (const f of FIGURES) {
    const v = med[f.key];
    if (f.quota && !Number.isFinite(v)) {
      rows.push([
        labelOf(f, labels),
        'skipped',
        f.unit,
        '',
        skipped ?? 'run with --cpu-quota 0.25',
        f.goal?.text ?? '',
        '',
      ]);
      continue;
    }
    const sp = spread(reps.map((r) => r[f.key]));
    rows.push([
      labelOf(f, labels),
      fmt(v, f.digits),
      f.unit,
      Number.isFinite(sp) ? `±${Math.round(sp * 100)} %` : '',
      reps.map((r) => fmt(r[f.key], f.digits)).join(' / '),
      f.goal?.text ?? '',
      f.goal ? (f.goal.met(v) ? 'yes' : 'NO') : '',
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const right = new Set([1]);
  const line = (r: string[]) =>
    `| ${r.map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (right.has(i) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(rows[0]), sep, ...rows.slice(1).map(line)].join('\n');
}

/** Every goal with its median and whether it is met; quota goals only when they were measured. */
export function goals(
  med: Figures,
  labels: LabelValues,
): Array<{ key: string; label: string; goal: string; value: number; met: boolean }> {
  return FIGURES.filter((f) => f.goal && !(f.quota && !Number.isFinite(med[f.key]))).map((f) => ({
    key: f.key,
    label: labelOf(f, labels),
    goal: f.goal!.text,
    value: med[f.key],
    met: f.goal!.met(med[f.key]),
  }));
}

/** The sidecar's footprint, the four figures its goals are set on: printed together at the end of a run. */
const FOOTPRINT_KEYS = ['quota.ratio', 'cpu.ratio', 'memory.rssIdleMiB', 'memory.rssAfterLoadMiB'];

/** One line per footprint figure: its label, median, goal and whether it is met (or why it was not measured). */
export function footprint(med: Figures, labels: LabelValues): string[] {
  return FOOTPRINT_KEYS.map((key) => {
    const f = FIGURES.find((x) => x.key === key)!;
    const v = med[key];
    const value = Number.isFinite(v) ? `${fmt(v, f.digits)}${f.unit === '×' ? '×' : ` ${f.unit}`}` : 'skipped';
    const met = !Number.isFinite(v) ? '' : f.goal!.met(v) ? ', met' : ', missed';
    return `  ${labelOf(f, labels)}: ${value} (goal ${f.goal!.text}${met})`;
  });
}
