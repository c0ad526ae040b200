/**
 * The soak: one daemon under a sustained mixed load for minutes, its memory sampled,
 * to tell a plateau from a leak. Self-contained: each run stores its own secrets through the
 * daemon, on a fresh data dir for the embedded backend (`--local`) or under its own prefix on
 * the stand-ins for the AWS backend.
 *
 * The load is paced (requests per second, not as fast as possible) so that it is the same on
 * every machine and leaves room on a shared 2-core one: what grows is then the daemon, not a
 * queue. Memory comes from the daemon's own /metrics (prom-client's process and V8 gauges).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type DaemonProcess, type DaemonSpawnOptions, need, request, startDaemon, storeSecret } from './procs';

export type SoakBackend = 'local' | 'aws';

export interface SoakOptions {
  seconds: number;
  secrets: number;
  /** Seconds between memory samples. */
  sampleSeconds: number;
}

/** Per second: the soak's mix of requests, hot reads halved for a 2-core machine shared with the load generator. */
const SOAK_RATES = { hot: 200, cold: 25, write: 5, revoke: 1, list: 0.5 } as const;
type Kind = keyof typeof SOAK_RATES;
/** Requests of one kind in flight at most; a slower daemon gets fewer requests, never a growing queue. */
const IN_FLIGHT: Record<Kind, number> = { hot: 16, cold: 4, write: 2, revoke: 1, list: 1 };
const HOT_NAMES = 20;
const NAMESPACES = 20;
const MIN_BYTES = 64;
const MAX_BYTES = 64 * 1024;
const MiB = 1024 * 1024;

export interface SoakSample {
  /** Seconds since the load started (negative: the sample taken right after seeding). */
  t: number;
  rssMiB: number;
  heapUsedMiB: number;
  /** The V8 heap as reserved: what of RSS is V8's, the rest being native (LevelDB, buffers, the allocator). */
  heapTotalMiB: number;
  externalMiB: number;
}

export interface SoakResult {
  backend: SoakBackend;
  seconds: number;
  secrets: number;
  seedSeconds: number;
  /** RSS right after the secrets were stored, before the load. */
  rssAfterSeedMiB: number;
  /** Mean RSS over the first and the last third of the load. */
  firstThirdMiB: number;
  lastThirdMiB: number;
  /** Least-squares slope of RSS over the whole load, and over its second half. */
  slopeMiBPerMin: number;
  slopeLastHalfMiBPerMin: number;
  heapUsedLastMiB: number;
  externalLastMiB: number;
  /** The goal: last third ≤ first third × 1.2 + 16 MiB. */
  limitMiB: number;
  met: boolean;
  requests: Record<Kind, number>;
  /** Answers other than the expected status (each named in `firstError`). */
  errors: number;
  firstError?: string;
  samples: SoakSample[];
}

/** A payload of 64 B to 64 KiB, log-uniform: mostly small, as passwords and keys are, some certificates and bundles. */
function payload(): string {
  const bytes = Math.floor(Math.exp(Math.log(MIN_BYTES) + Math.random() * Math.log(MAX_BYTES / MIN_BYTES)));
  return randomBytes(Math.ceil((bytes * 3) / 4))
    .toString('base64')
    .slice(0, Math.min(bytes, MAX_BYTES));
}

const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)];
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Least-squares slope of y over t (per second). */
function slope(points: Array<{ t: number; y: number }>): number {
  if (points.length < 2) return NaN;
  const mt = mean(points.map((p) => p.t));
  const my = mean(points.map((p) => p.y));
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mt) * (p.y - my);
    den += (p.t - mt) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

/** The plateau check over the samples taken under load (the soak's pass or fail). */
function plateau(samples: SoakSample[]): Pick<SoakResult, 'firstThirdMiB' | 'lastThirdMiB' | 'limitMiB' | 'met'> {
  const under = samples.filter((s) => s.t >= 0);
  const end = Math.max(...under.map((s) => s.t));
  const first = under.filter((s) => s.t <= end / 3).map((s) => s.rssMiB);
  const last = under.filter((s) => s.t >= (2 * end) / 3).map((s) => s.rssMiB);
  const firstThirdMiB = mean(first);
  const lastThirdMiB = mean(last);
  const limitMiB = firstThirdMiB * 1.2 + 16;
  return { firstThirdMiB, lastThirdMiB, limitMiB, met: lastThirdMiB <= limitMiB };
}

async function sample(d: DaemonProcess, t: number): Promise<SoakSample> {
  const m = await d.metrics();
  return {
    t,
    rssMiB: need(m, 'ecs_secrets_process_resident_memory_bytes') / MiB,
    heapUsedMiB: need(m, 'ecs_secrets_nodejs_heap_size_used_bytes') / MiB,
    heapTotalMiB: need(m, 'ecs_secrets_nodejs_heap_size_total_bytes') / MiB,
    externalMiB: need(m, 'ecs_secrets_nodejs_external_memory_bytes') / MiB,
  };
}

/**
 * Run one soak. `spawn` is the bench's daemon configuration; for `local` the daemon gets
 * `--local --data-dir` under `tmp`. `progress` reports each sample.
 */
export async function soak(
  backend: SoakBackend,
  spawn: DaemonSpawnOptions,
  tmp: string,
  o: SoakOptions,
  progress: (msg: string) => void,
): Promise<SoakResult> {
  const run = `soak-${backend}-${Date.now().toString(36)}`;
  const dataDir = path.join(tmp, `${run}-data`);
  const extraArgs = [...(spawn.extraArgs ?? []), ...(backend === 'local' ? ['--local', '--data-dir', dataDir] : [])];
  const d = await startDaemon({ ...spawn, extraArgs, logFile: path.join(tmp, `${run}.log`) });
  const names = Array.from({ length: o.secrets }, (_, i) => `${run}.team-${i % NAMESPACES}.secret-${i}`);
  const hot = names.slice(0, Math.min(HOT_NAMES, names.length));
  // Writes and revokes leave the hot names alone, so that hot reads stay cache hits.
  const churn = names.length > hot.length ? names.slice(hot.length) : names;
  const json = { ...d.headers, 'content-type': 'application/json' };
  const requests: Record<Kind, number> = { hot: 0, cold: 0, write: 0, revoke: 0, list: 0 };
  let errors = 0;
  let firstError: string | undefined;
  const expect = async (what: string, status: number, r: Promise<{ status: number; body: Buffer }>) => {
    try {
      const reply = await r;
      if (reply.status === status) return reply;
      errors++;
      firstError ??= `${what}: ${reply.status} ${reply.body.toString('utf8').slice(0, 200)}`;
    } catch (err) {
      errors++;
      firstError ??= `${what}: ${(err as Error).message}`;
    }
    return undefined;
  };
  try {
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < names.length) {
          const name = names[next++];
          await storeSecret(d, name, payload());
        }
      }),
    );
    const seedSeconds = (performance.now() - t0) / 1000;
    for (const name of hot)
      await expect(`reading ${name}`, 200, request(`${d.url}/latest/secrets/${name}`, { headers: d.headers }));
    const samples = [await sample(d, -1)];
    progress(
      `soak ${backend}: ${o.secrets} secrets stored in ${seedSeconds.toFixed(1)} s; RSS ${samples[0].rssMiB.toFixed(0)} MiB; ${o.seconds} s of load`,
    );

    // Serials written during the soak, oldest first: what the revokes take (never a serial 1, so every name keeps an active version).
    const written: Array<{ name: string; serial: number }> = [];
    const fire: Record<Kind, () => Promise<unknown>> = {
      hot: () => expect('hot read', 200, request(`${d.url}/latest/secrets/${pick(hot)}`, { headers: d.headers })),
      cold: () =>
        expect(
          'cold read',
          200,
          request(`${d.url}/latest/secrets/${pick(churn)}`, { headers: { ...d.headers, 'cache-control': 'no-cache' } }),
        ),
      write: async () => {
        const name = pick(churn);
        const r = await expect(
          'write',
          201,
          request(`${d.url}/latest/secrets/${name}`, {
            method: 'POST',
            headers: json,
            body: JSON.stringify({ payload: payload() }),
          }),
        );
        if (r) written.push({ name, serial: (JSON.parse(r.body.toString()) as { serial: number }).serial });
      },
      revoke: async () => {
        const v = written.shift();
        if (v)
          await expect(
            'revoke',
            200,
            request(`${d.url}/latest/revoke/${v.name}/${v.serial}`, { method: 'POST', headers: d.headers }),
          );
      },
      list: () =>
        expect(
          'prefix listing',
          200,
          request(`${d.url}/latest/secrets?prefix=${run}.team-${Math.floor(Math.random() * NAMESPACES)}.`, {
            headers: d.headers,
          }),
        ),
    };
    const inFlight: Record<Kind, number> = { hot: 0, cold: 0, write: 0, revoke: 0, list: 0 };
    const credit: Record<Kind, number> = { hot: 0, cold: 0, write: 0, revoke: 0, list: 0 };
    const pending = new Set<Promise<unknown>>();
    const TICK_MS = 100;
    const ticker = setInterval(() => {
      for (const kind of Object.keys(SOAK_RATES) as Kind[]) {
        // Credit does not pile up while a kind is at its in-flight cap: a slow daemon is not flooded later.
        credit[kind] = Math.min(credit[kind] + (SOAK_RATES[kind] * TICK_MS) / 1000, IN_FLIGHT[kind]);
        while (credit[kind] >= 1 && inFlight[kind] < IN_FLIGHT[kind]) {
          credit[kind]--;
          inFlight[kind]++;
          requests[kind]++;
          const p = fire[kind]().finally(() => {
            inFlight[kind]--;
            pending.delete(p);
          });
          pending.add(p);
        }
      }
    }, TICK_MS);
    const start = performance.now();
    try {
      for (;;) {
        const elapsed = (performance.now() - start) / 1000;
        if (elapsed >= o.seconds) break;
        await new Promise((r) => setTimeout(r, Math.min(o.sampleSeconds, o.seconds - elapsed) * 1000));
        const s = await sample(d, (performance.now() - start) / 1000);
        samples.push(s);
        progress(
          `soak ${backend}: ${s.t.toFixed(0)} s, RSS ${s.rssMiB.toFixed(0)} MiB, heap ${s.heapUsedMiB.toFixed(0)}/${s.heapTotalMiB.toFixed(0)} MiB, external ${s.externalMiB.toFixed(0)} MiB`,
        );
      }
    } finally {
      clearInterval(ticker);
      await Promise.all(pending);
    }
    const under = samples.filter((s) => s.t >= 0);
    const end = under[under.length - 1].t;
    const perMin = (pts: SoakSample[]) => slope(pts.map((s) => ({ t: s.t, y: s.rssMiB }))) * 60;
    const last = under[under.length - 1];
    return {
      backend,
      seconds: o.seconds,
      secrets: o.secrets,
      seedSeconds,
      rssAfterSeedMiB: samples[0].rssMiB,
      ...plateau(samples),
      slopeMiBPerMin: perMin(under),
      slopeLastHalfMiBPerMin: perMin(under.filter((s) => s.t >= end / 2)),
      heapUsedLastMiB: last.heapUsedMiB,
      externalLastMiB: last.externalMiB,
      met: plateau(samples).met,
      requests,
      errors,
      firstError,
      samples,
    };
  } finally {
    await d.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The load in words, for the bench's output. */
export function soakLoad(): string {
  const r = SOAK_RATES;
  return `per second: ${r.hot} hot reads of ${HOT_NAMES} names, ${r.cold} cold reads (Cache-Control: no-cache), ${r.write} writes, ${r.revoke} revoke, a prefix listing every ${1 / r.list} s`;
}

/** The soak's lines for the bench's output. */
export function soakTable(results: SoakResult[]): string {
  const f = (v: number, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
  const rows = [
    [
      'backend',
      'after seeding',
      'first third',
      'last third',
      'limit',
      'slope',
      'last half',
      'heap',
      'requests',
      'errors',
      'plateau',
    ],
    ...results.map((r) => [
      r.backend,
      `${f(r.rssAfterSeedMiB)} MiB`,
      `${f(r.firstThirdMiB)} MiB`,
      `${f(r.lastThirdMiB)} MiB`,
      `${f(r.limitMiB)} MiB`,
      `${f(r.slopeMiBPerMin, 1)} MiB/min`,
      `${f(r.slopeLastHalfMiBPerMin, 1)} MiB/min`,
      `${f(r.heapUsedLastMiB)} MiB`,
      String(Object.values(r.requests).reduce((a, b) => a + b, 0)),
      String(r.errors),
      r.met ? 'yes' : 'NO',
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(rows[0]), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}
