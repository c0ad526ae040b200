/**
 * Bench figures of change propagation (docs/propagation.md):
 * - latency: two daemons on one table at `--watch-interval 1`; the CLI rotates one secret N times
 *   (`rotate --generate`, a hook that exits 0); for each rotation, the time from the CLI's exit
 *   until both daemons serve the new serial. Each daemon is asked with a long-poll sent before the
 *   rotation (`?wait=&after=`), so the moment it answers is the moment it serves the new serial,
 *   with no polling interval of our own in the figure.
 * - cost: DynamoDB reads per minute of one idle daemon holding the bench's N secrets (prefetched
 *   under their prefix, so it keeps every one fresh), counted at the stand-in: the new defaults
 *   (watching every 5 s, 600 s TTL) against no watching and a 30 s TTL. The window for the new
 *   defaults covers one whole TTL, so one refresh of every secret is in it; the 30 s TTL's holds
 *   four refreshes.
 */
import { randomBytes } from 'node:crypto';
import type { StandIns } from '../test/standins';
import type { Figures } from './figures';
import { type DaemonProcess, type DaemonSpawnOptions, request, runCli, startDaemon, storeSecret } from './procs';

const ROTATED = 'propagation.rotated';
/** The interval the latency goal is set for. */
export const LATENCY_WATCH_INTERVAL_S = 1;
/** The TTL at the new defaults while watching, and the one they are compared with. */
const WATCHING_TTL_S = 600;
const UNWATCHED_TTL_S = 30;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let stored = false;

/**
 * Store the rotated secret through a running daemon: the bench does it with the daemon that stores
 * its own secrets, saving the CLI run that would otherwise create it before the measurement.
 */
export async function storeRotated(d: DaemonProcess): Promise<void> {
  await storeSecret(d, ROTATED, randomBytes(24).toString('base64'));
  stored = true;
}

function percentile(values: number[], p: number): number {
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.ceil((p / 100) * v.length) - 1)];
}

/** When `d` serves a serial other than `after` for ROTATED: a long-poll, asked again if its wait ends. */
async function servedAfter(d: DaemonProcess, after: number): Promise<{ at: number; serial: number }> {
  for (;;) {
    const r = await request(`${d.url}/latest/secrets/${ROTATED}?wait=20&after=${after}`, { headers: d.headers });
    const at = performance.now();
    if (r.status === 200) return { at, serial: JSON.parse(r.body.toString('utf8')).serial as number };
    if (r.status !== 304)
      throw new Error(`long-poll on ${ROTATED}: ${r.status} ${r.body.toString('utf8').slice(0, 200)}`);
  }
}

/** Latency from the CLI's exit to both daemons serving the new serial, over `rotations` rotations. */
export async function measurePropagation(
  daemon: (name: string, extraArgs: string[]) => DaemonSpawnOptions,
  s: StandIns,
  app: string,
  rotations: number,
): Promise<Figures> {
  if (!stored) {
    const created = await runCli(['create', '--application-name', app, '--name', ROTATED, '--generate'], s.env);
    if (created.code !== 0) throw new Error(`create ${ROTATED} failed (${created.code}): ${created.stderr}`);
    stored = true;
  }
  const args = ['--watch-interval', String(LATENCY_WATCH_INTERVAL_S)];
  const daemons = [await startDaemon(daemon('watch-a', args)), await startDaemon(daemon('watch-b', args))];
  try {
    // Both hold the current serial in their caches before the first rotation.
    let serial = 0;
    for (const d of daemons) serial = (await servedAfter(d, 0)).serial;
    await sleep(2 * LATENCY_WATCH_INTERVAL_S * 1000); // both watchers have read the record once
    const latencies: number[] = [];
    for (let i = 0; i < rotations; i++) {
      const answers = daemons.map((d) => servedAfter(d, serial));
      const r = await runCli(
        ['rotate', '--application-name', app, '--name', ROTATED, '--generate', '--', process.execPath, '-e', ''],
        s.env,
      );
      const exited = performance.now();
      if (r.code !== 0) throw new Error(`rotate failed (${r.code}): ${r.stderr.slice(0, 300)}`);
      const next = JSON.parse(r.stdout).serial as number;
      let last = 0;
      for (const [k, answer] of answers.entries()) {
        let a = await answer;
        // A long-poll answered by an earlier change (none here but our own) is asked again.
        while (a.serial !== next) a = await servedAfter(daemons[k], a.serial);
        last = Math.max(last, a.at);
      }
      // A watcher may read the record before the CLI has exited: that rotation took no time after it.
      latencies.push(Math.max(0, last - exited));
      serial = next;
    }
    return {
      'propagation.p50Ms': percentile(latencies, 50),
      'propagation.p99Ms': percentile(latencies, 99),
    };
  } finally {
    for (const d of daemons) await d.stop();
  }
}

/** DynamoDB reads of one idle daemon over `seconds`, per minute. */
async function idleReads(o: DaemonSpawnOptions, s: StandIns, seconds: number): Promise<number> {
  const d = await startDaemon({ ...o, healthyWithinMs: 300_000 });
  try {
    // /health is 200 once every secret under the prefix was read: the idle window starts here.
    s.dynamo.resetCounts();
    await sleep(seconds * 1000);
    const c = s.dynamo.counts;
    const reads = (c.GetItem ?? 0) + (c.Query ?? 0) + (c.Scan ?? 0) + (c.BatchGetItem ?? 0);
    return reads / (seconds / 60);
  } finally {
    await d.stop();
  }
}

/**
 * Reads per minute of an idle daemon keeping the secrets under `prefix` fresh: the new defaults
 * over `seconds` (by default one whole 600 s TTL and a little more), against no watching and a
 * 30 s TTL over one to four of its TTLs.
 */
export async function measureIdleCost(
  daemon: (name: string, extraArgs: string[]) => DaemonSpawnOptions,
  s: StandIns,
  prefix: string,
  seconds: number,
): Promise<Figures> {
  const watching = await idleReads(daemon('idle-watching', ['--prefetch-prefix', prefix]), s, seconds);
  // At least one whole 30 s TTL (one refresh of every secret), at most four.
  const unwatchedSeconds = Math.min(Math.max(seconds, UNWATCHED_TTL_S + 5), 4 * UNWATCHED_TTL_S);
  const unwatched = await idleReads(
    daemon('idle-ttl', ['--prefetch-prefix', prefix, '--watch-interval', '0', '--cache-ttl', String(UNWATCHED_TTL_S)]),
    s,
    unwatchedSeconds,
  );
  return {
    'idle.watchingReadsPerMin': watching,
    'idle.unwatchedReadsPerMin': unwatched,
    'idle.ratio': watching / unwatched,
  };
}

/** The default idle window: one whole TTL at the new defaults, plus the start-up's spread. */
export const DEFAULT_IDLE_SECONDS = WATCHING_TTL_S + 30;
