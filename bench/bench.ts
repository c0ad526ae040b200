/**
 * `npm run bench`: how fast and how small the daemon is, measured, with a bare node:http server
 * as the yardstick in the same run.
 *
 * Layout on the machine: this process runs the load generator (autocannon, as a library) and the
 * counting stand-ins (dynalite for DynamoDB, the KMS stand-in), which sit idle while the hot reads
 * are measured. The daemon and the bare server each run as a child process, so each gets the same
 * share of the machine under the same load: one core for the load generator, the rest for the
 * server being measured. They are never measured at the same time, and their order alternates
 * between repetitions.
 *
 * The daemon runs its real configuration: `ecs-secrets daemon` from dist/, info-level JSON logs
 * (to a file, as a log driver would take them), metrics on, the default cache settings, and a
 * token required on every request unless --no-token.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import autocannon from 'autocannon';
import { createAppResources, startStandIns, type StandIns } from '../test/standins';
import { type BenchOptions, USAGE, UsageError, parseArgs } from './args';
import type { BareSpec } from './bare-server';
import { execFileSync } from 'node:child_process';
import { type CpuQuota, openCpuQuota } from './cgroup';
import { FIGURES, type Figures, type LabelValues, footprint, goals, labelOf, medianFigures, table } from './figures';
import { PREFETCH_SECRETS, measurePrefetch, storePrefetchSecrets } from './prefetch';
import { execOverhead } from './exec-overhead';
import { measureImport } from './import';
import { measureIdleCost, measurePropagation, storeRotated } from './propagation';
import { type SoakResult, soak, soakLoad, soakTable } from './soak';
import {
  CLI,
  type DaemonProcess,
  closeClient,
  daemonArgs,
  killAllChildren,
  need,
  request,
  runCli,
  startBare,
  startDaemon,
  storeSecret,
  useNode,
} from './procs';

const APP = 'bench';
const HOT = 'hot.db.password';
const HOT_PATH = `/latest/secrets/${HOT}`;
const MiB = 1024 * 1024;
/** Where the N cached secrets live (and nothing else): the idle figure prefetches this prefix. */
const CACHED_PREFIX = 'app.';

const progress = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const payload = () => randomBytes(24).toString('base64'); // a 32-character password

interface Context {
  o: BenchOptions;
  s: StandIns;
  tmp: string;
  token?: string;
  tokenFile?: string;
  coldNames: string[];
  cachedNames: string[];
  /** The cgroup for the --cpu-quota rows, when one could be made. */
  quota?: CpuQuota;
}

/** Run `fn` over `items` with at most `n` at a time. */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/**
 * The change-record reads a daemon made so far, by its own count: a fixed cost per watch interval,
 * not per read, so the per-read figures leave them out (the idle figures count them).
 */
function changeRecordReads(m: Map<string, number>): number {
  return (
    (m.get('ecs_secrets_change_record_reads_total{result="ok"}') ?? 0) +
    (m.get('ecs_secrets_change_record_reads_total{result="error"}') ?? 0)
  );
}
const watchReads = async (d: DaemonProcess) => changeRecordReads(await d.metrics());

/** The propagation figures: latency over CLI rotations, and what an idle daemon reads. */
async function propagationFigures(c: Context): Promise<Figures> {
  const daemon = (name: string, extraArgs: string[]) => ({
    ...daemonOptions(c, path.join(c.tmp, `${name}.log`)),
    extraArgs,
  });
  progress(`propagation: ${c.o.propagationRotations} CLI rotations, two daemons at --watch-interval 1`);
  const f = await measurePropagation(daemon, c.s, APP, c.o.propagationRotations);
  progress(`propagation: p50 ${Math.round(f['propagation.p50Ms'])} ms, p99 ${Math.round(f['propagation.p99Ms'])} ms`);
  progress(
    `propagation: an idle daemon holding ${c.o.secrets} secrets, ${c.o.idleSeconds} s at the defaults, then with a 30 s TTL`,
  );
  Object.assign(f, await measureIdleCost(daemon, c.s, CACHED_PREFIX, c.o.idleSeconds));
  return f;
}

function expectOk(what: string, r: { status: number; body: Buffer }, status = 200): void {
  if (r.status !== status)
    throw new Error(`${what}: expected ${status}, got ${r.status} ${r.body.toString('utf8').slice(0, 300)}`);
}

function daemonOptions(c: Context, logFile: string) {
  return {
    app: APP,
    env: c.s.env,
    token: c.token,
    tokenFile: c.tokenFile,
    logFile,
    nodeArgs: [
      ...c.o.daemonNodeArgs,
      ...(c.o.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(c.o.cpuProf)] : []),
    ],
  };
}

/** Store the secrets, the prefetch and propagation figures' among them, through a daemon's POST route (the stand-ins count nothing we care about yet). */
async function seed(c: Context): Promise<void> {
  const d = await startDaemon(daemonOptions(c, path.join(c.tmp, 'seed.log')));
  try {
    await pool([HOT, ...c.coldNames, ...c.cachedNames], 8, (name) => storeSecret(d, name, payload()));
    await storePrefetchSecrets(d);
    await storeRotated(d);
  } finally {
    await d.stop();
  }
}

interface Load {
  requests: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  bytesPerResponse: number;
  generatorCores: number;
  /** All processes on the machine: minus ours, what else was running (these machines are shared). */
  machineCores: number;
  seconds: number;
}

/** CPU time of the whole machine (all processes, all cores), in seconds. */
function machineBusySeconds(): number {
  let ms = 0;
  for (const c of os.cpus()) ms += c.times.user + c.times.nice + c.times.sys + c.times.irq;
  return ms / 1000;
}

async function load(url: string, headers: Record<string, string>, connections: number, seconds: number): Promise<Load> {
  const cpu0 = process.cpuUsage();
  const busy0 = machineBusySeconds();
  // autocannon ends a run at its next sample tick (every second by default): a load shorter than a
  // second needs ticks as short as itself, or it runs the whole second.
  const r = await autocannon({
    url,
    connections,
    duration: seconds,
    headers,
    sampleInt: Math.min(1000, seconds * 1000),
  });
  const cpu = process.cpuUsage(cpu0);
  const busy = machineBusySeconds() - busy0;
  if (r.errors > 0 || r.non2xx > 0 || r.requests.total === 0)
    throw new Error(
      `load on ${url}: ${r.errors} errors (${r.timeouts} timeouts), ${r.non2xx} non-2xx of ${r.requests.total} requests`,
    );
  return {
    requests: r.requests.total,
    rps: r.requests.total / r.duration,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    meanMs: r.latency.mean,
    bytesPerResponse: r.throughput.total / r.requests.total,
    // This process's CPU (autocannon; the stand-ins idle) over the load: near 1 means the load generator, not the server, set the pace.
    generatorCores: (cpu.user + cpu.system) / 1e6 / r.duration,
    machineCores: busy / r.duration,
    seconds: r.duration,
  };
}

/** The bare server's copy of the daemon's answer: same body, same headers (a request id of the same length). */
function bareSpecFrom(reply: { headers: NodeJS.Dict<string | string[]>; body: Buffer }): BareSpec {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(reply.headers)) {
    if (['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding'].includes(k) || v === undefined)
      continue;
    headers[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return { headers, bodyBase64: reply.body.toString('base64') };
}

/** The first bytes of a file (the daemon's log runs to hundreds of MB after a full run). */
function logHead(file: string, bytes = 4096): string {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    return buf.toString('utf8', 0, fs.readSync(fd, buf, 0, bytes, 0));
  } finally {
    fs.closeSync(fd);
  }
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/**
 * Issue 12: 50 concurrent POSTs to one name through the daemon (a name of its own per
 * repetition). The daemon queues them per name, so the table should refuse no conditional put.
 */
async function contention(c: Context, d: DaemonProcess, rep: number): Promise<Figures> {
  const name = `contended.rep${rep}`;
  const refusedBefore = c.s.dynamo.conditionalCheckFailures;
  const t0 = performance.now();
  const replies = await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      request(`${d.url}/latest/secrets/${name}`, {
        method: 'POST',
        headers: { ...d.headers, 'content-type': 'application/json' },
        body: JSON.stringify({ payload: `contended-${i}` }),
        fresh: true,
      }),
    ),
  );
  const ms = performance.now() - t0;
  const serials = replies
    .map((r) => (r.status === 201 ? (JSON.parse(r.body.toString()) as { serial: number }).serial : NaN))
    .sort((a, b) => a - b);
  if (serials.some((v, i) => v !== i + 1))
    throw new Error(`50 concurrent POSTs did not get serials 1..50: ${replies.map((r) => r.status).join(',')}`);
  return {
    'writes.concurrent50Ms': ms,
    'writes.concurrent50Refused': c.s.dynamo.conditionalCheckFailures - refusedBefore,
  };
}

async function repetition(c: Context, rep: number): Promise<Figures> {
  const { o, s } = c;
  const f: Figures = {};
  const logFile = path.join(c.tmp, `daemon-${rep}.log`);
  progress(`repetition ${rep + 1}/${o.reps}: starting the daemon`);
  const d: DaemonProcess = await startDaemon(daemonOptions(c, logFile));
  let bare: Awaited<ReturnType<typeof startBare>> | undefined;
  try {
    f['startup.listeningMs'] = d.listeningMs;
    f['startup.healthyMs'] = d.healthyMs;
    await sleep(500);
    f['memory.rssIdleMiB'] = (await d.rssBytes()) / MiB;

    // One-shot CLI, against the same stand-ins (the daemon is idle meanwhile).
    const fetched = await runCli(['fetch', '--application-name', APP, '--name', HOT], s.env);
    if (fetched.code !== 0 || JSON.parse(fetched.stdout).name !== HOT)
      throw new Error(`fetch failed (${fetched.code}): ${fetched.stderr}`);
    f['fetch.wallMs'] = fetched.ms;
    Object.assign(f, await execOverhead(s.env, APP, HOT, o.execRuns)); // exec start → child start, vs the child alone

    Object.assign(f, await contention(c, d, rep));

    // Cold reads: secrets this daemon has never read, one at a time.
    s.dynamo.resetCounts();
    s.kms.resetCounts();
    const coldWatch = await watchReads(d);
    const cold: number[] = [];
    for (const name of c.coldNames) {
      const r = await request(`${d.url}/latest/secrets/${name}`, { headers: d.headers });
      expectOk(`cold read of ${name}`, r);
      if (r.headers['x-ecs-secrets-cache'] !== 'miss')
        throw new Error(`cold read of ${name} was a ${r.headers['x-ecs-secrets-cache']}`);
      cold.push(r.ms);
    }
    f['cold.firstMs'] = cold[0];
    f['cold.p50Ms'] = [...cold].sort((a, b) => a - b)[Math.floor((cold.length - 1) / 2)];
    f['cold.maxMs'] = Math.max(...cold);
    f['cold.dynamodbPerRead'] = (s.dynamo.counts.total - ((await watchReads(d)) - coldWatch)) / cold.length;
    f['cold.kmsPerRead'] = s.kms.counts.total / cold.length;

    // N distinct secrets into the cache, then read again: the second pass must not reach the backend.
    s.dynamo.resetCounts();
    s.kms.resetCounts();
    const fillWatch = await watchReads(d);
    await pool(c.cachedNames, 8, async (name) =>
      expectOk(`reading ${name}`, await request(`${d.url}/latest/secrets/${name}`, { headers: d.headers })),
    );
    const afterFill = { ddb: s.dynamo.counts.total, kms: s.kms.counts.total, watch: await watchReads(d) };
    await pool(c.cachedNames, 8, async (name) => {
      const r = await request(`${d.url}/latest/secrets/${name}`, { headers: d.headers });
      expectOk(`re-reading ${name}`, r);
    });
    const endWatch = await watchReads(d);
    f['backend.per1kDistinctCached'] =
      ((s.dynamo.counts.total - afterFill.ddb - (endWatch - afterFill.watch) + s.kms.counts.total - afterFill.kms) *
        1000) /
      c.cachedNames.length;
    f['backend.dynamodbReadsPerSecret'] =
      (s.dynamo.counts.Query + s.dynamo.counts.GetItem - (endWatch - fillWatch)) / c.cachedNames.length;

    // Hot reads: the hot secret is cached by this read; the bare server serves a copy of the answer.
    expectOk('first hot read', await request(`${d.url}${HOT_PATH}`, { headers: d.headers }));
    const hit = await request(`${d.url}${HOT_PATH}`, { headers: d.headers });
    expectOk('second hot read', hit);
    if (hit.headers['x-ecs-secrets-cache'] !== 'hit') throw new Error('the hot secret was not served from the cache');
    bare = await startBare(bareSpecFrom(hit));
    const bareCheck = await request(`${bare.url}${HOT_PATH}`);
    if (!bareCheck.body.equals(hit.body)) throw new Error('the bare server does not serve the same body');

    const order = rep % 2 === 0 ? (['daemon', 'bare'] as const) : (['bare', 'daemon'] as const);
    for (const which of order) {
      const url = which === 'daemon' ? `${d.url}${HOT_PATH}` : `${bare.url}${HOT_PATH}`;
      const headers = d.headers; // the same request to both (the bare server ignores the token)
      if (o.warmup > 0) {
        progress(`repetition ${rep + 1}/${o.reps}: ${which}, warm-up ${o.warmup} s`);
        await load(url, headers, o.connections, o.warmup);
      }
      progress(`repetition ${rep + 1}/${o.reps}: ${which}, ${o.connections} connections for ${o.duration} s`);
      if (which === 'daemon') {
        await sleep(300); // let the warm-up's log lines drain before counting bytes
        const before = await d.metrics();
        const logBefore = fileSize(logFile);
        s.dynamo.resetCounts();
        s.kms.resetCounts();
        const r = await load(url, headers, o.connections, o.duration);
        const ddb = s.dynamo.counts.total;
        const kms = s.kms.counts.total;
        const after = await d.metrics();
        f['memory.rssAfterLoadMiB'] = (await d.rssBytes()) / MiB;
        const cpu = (m: Map<string, number>) =>
          need(m, 'ecs_secrets_process_cpu_user_seconds_total') +
          need(m, 'ecs_secrets_process_cpu_system_seconds_total');
        // Every cache outcome but a hit (misses, stale, bypass): none is expected within the TTL.
        const notHits = (m: Map<string, number>) =>
          ['miss', 'stale', 'bypass'].reduce(
            (sum, o) => sum + (m.get(`ecs_secrets_cache_events_total{outcome="${o}"}`) ?? 0),
            0,
          );
        f['hot.daemon.rps'] = r.rps;
        f['hot.daemon.p50Ms'] = r.p50Ms;
        f['hot.daemon.p99Ms'] = r.p99Ms;
        f['hot.daemon.meanMs'] = r.meanMs;
        f['hot.daemon.cacheNonHits'] = notHits(after) - notHits(before);
        // The two /metrics scrapes are in the CPU window; a few ms against seconds of load.
        f['cpu.daemonMsPer10k'] = ((cpu(after) - cpu(before)) * 1000 * 10_000) / r.requests;
        const watched = changeRecordReads(after) - changeRecordReads(before);
        f['backend.dynamodbPer1kHot'] = (Math.max(0, ddb - watched) * 1000) / r.requests;
        f['backend.kmsPer1kHot'] = (kms * 1000) / r.requests;
        await sleep(300); // the daemon's log is buffered: let it reach the file
        f['log.bytesPerHotRead'] = (fileSize(logFile) - logBefore) / r.requests;
        f['hot.daemon.bytesPerResponse'] = r.bytesPerResponse;
        f['load.generatorCoresDaemon'] = r.generatorCores;
        f['load.otherCoresDaemon'] = Math.max(
          0,
          r.machineCores - r.generatorCores - (cpu(after) - cpu(before)) / r.seconds,
        );
      } else {
        const before = await bare.usage();
        const r = await load(url, headers, o.connections, o.duration);
        const after = await bare.usage();
        f['hot.bare.rps'] = r.rps;
        f['hot.bare.p50Ms'] = r.p50Ms;
        f['hot.bare.p99Ms'] = r.p99Ms;
        f['hot.bare.meanMs'] = r.meanMs;
        f['cpu.bareMsPer10k'] = ((after.cpuSeconds - before.cpuSeconds) * 1000 * 10_000) / r.requests;
        f['hot.bare.bytesPerResponse'] = r.bytesPerResponse;
        f['load.generatorCoresBare'] = r.generatorCores;
        f['load.otherCoresBare'] = Math.max(
          0,
          r.machineCores - r.generatorCores - (after.cpuSeconds - before.cpuSeconds) / r.seconds,
        );
      }
    }
    f['hot.ratio'] = f['hot.daemon.rps'] / f['hot.bare.rps'];
    f['cpu.ratio'] = f['cpu.daemonMsPer10k'] / f['cpu.bareMsPer10k'];

    // CPU per read with one connection: what one application worker's reads cost, where the
    // per-request work is not spread over batched socket reads and writes as at 32 connections.
    const b = bare;
    const cpuOf = {
      daemon: async () => {
        const m = await d.metrics();
        return (
          need(m, 'ecs_secrets_process_cpu_user_seconds_total') +
          need(m, 'ecs_secrets_process_cpu_system_seconds_total')
        );
      },
      bare: async () => (await b.usage()).cpuSeconds,
    };
    const urlOf = { daemon: `${d.url}${HOT_PATH}`, bare: `${b.url}${HOT_PATH}` };
    for (const which of order) {
      progress(`repetition ${rep + 1}/${o.reps}: ${which}, one connection for ${o.duration} s`);
      if (o.warmup > 0) await load(urlOf[which], d.headers, 1, Math.min(1, o.warmup));
      const before = await cpuOf[which]();
      const r = await load(urlOf[which], d.headers, 1, o.duration);
      f[`cpu1.${which}MsPerRead`] = (((await cpuOf[which]()) - before) * 1000) / r.requests;
    }
    f['cpu1.ratio'] = f['cpu1.daemonMsPerRead'] / f['cpu1.bareMsPerRead'];

    // A quarter vCPU (or --cpu-quota C): each server in turn in the cgroup, the load generator not.
    if (c.quota) {
      const pids = { daemon: d.child.pid!, bare: b.pid };
      for (const which of order) {
        progress(
          `repetition ${rep + 1}/${o.reps}: ${which} at ${o.cpuQuota} vCPU, ${o.quotaConnections} connections for ${o.duration} s`,
        );
        c.quota.confine(pids[which]);
        try {
          if (o.warmup > 0) await load(urlOf[which], d.headers, o.quotaConnections, o.warmup);
          f[`quota.${which}.rps`] = (await load(urlOf[which], d.headers, o.quotaConnections, o.duration)).rps;
        } finally {
          c.quota.release(pids[which]);
        }
      }
      f['quota.ratio'] = f['quota.daemon.rps'] / f['quota.bare.rps'];
    } else {
      for (const k of ['quota.daemon.rps', 'quota.bare.rps', 'quota.ratio']) f[k] = NaN;
    }
  } finally {
    await bare?.stop();
    const code = await d.stop();
    if (code !== 0) progress(`warning: the daemon exited with ${code} on SIGTERM`);
  }
  if (!logHead(logFile).includes('"msg":"daemon started"'))
    throw new Error('the daemon logged nothing: the figures would not be its real configuration');
  fs.rmSync(logFile, { force: true }); // hundreds of MB after a full run
  progress(`repetition ${rep + 1}/${o.reps}: prefetching ${PREFETCH_SECRETS} secrets`);
  Object.assign(f, await measurePrefetch(daemonOptions(c, path.join(c.tmp, `prefetch-${rep}.log`)), s));
  progress(`repetition ${rep + 1}/${o.reps}: importing ${o.importParameters} SSM parameters × 3 versions into --local`);
  Object.assign(f, await measureImport(s, c.tmp, APP, o.importParameters));
  return f;
}

/** `--import-only`: the import figure `--reps` times, each run and the median printed. */
async function importOnly(c: Context, started: Date): Promise<number> {
  const { o, s } = c;
  const nodeArgs = o.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(o.cpuProf)] : [];
  const runs: number[] = [];
  for (let rep = 0; rep < o.reps; rep++) {
    progress(`import ${rep + 1}/${o.reps}: ${o.importParameters} SSM parameters × 3 versions into --local`);
    const f = await measureImport(s, c.tmp, APP, o.importParameters, nodeArgs);
    runs.push(f['import.versionsPerSecond']);
    progress(
      `import ${rep + 1}/${o.reps}: ${f['import.versionsPerSecond'].toFixed(1)} versions/s (load ${os.loadavg()[0].toFixed(2)})`,
    );
  }
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const med = { 'import.versionsPerSecond': sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2 };
  process.stdout.write(
    [
      '',
      `ecs-secrets bench (import only), ${started.toISOString()}`,
      `runs: ${runs.map((v) => v.toFixed(1)).join(', ')} versions/s; load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
      `import.versionsPerSecond (median of ${runs.length}): ${med['import.versionsPerSecond'].toFixed(1)}`,
      '',
    ].join('\n'),
  );
  if (o.out)
    fs.writeFileSync(o.out, `${JSON.stringify({ date: started.toISOString(), figures: med, runs }, null, 2)}\n`);
  return 0;
}

function machine() {
  const cpus = os.cpus();
  return {
    nproc: os.availableParallelism?.() ?? cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memTotalGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
}

async function main(): Promise<number> {
  // The SDK in this process (the stand-ins' table set-up) would warn about Node 20 on stderr.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  let o: BenchOptions;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    if (err.message) process.stderr.write(`bench: ${err.message}\n`);
    process.stderr.write(USAGE);
    return err.message ? 2 : 0;
  }
  if (o.node) useNode(o.node);
  const serverNode = o.node ? execFileSync(o.node, ['--version'], { encoding: 'utf8' }).trim() : process.version;
  const started = new Date();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-bench-'));
  const c: Partial<Context> = { o, tmp };
  if (o.token) {
    c.token = randomBytes(24).toString('base64url');
    c.tokenFile = path.join(tmp, 'token');
    fs.writeFileSync(c.tokenFile, `${c.token}\n`, { mode: 0o600 });
  }
  c.coldNames = Array.from({ length: o.cold }, (_, i) => `cold.secret-${i}`);
  c.cachedNames = Array.from({ length: o.secrets }, (_, i) => `${CACHED_PREFIX}team-${i % 10}.secret-${i}`);
  let s: StandIns | undefined;
  let quotaSkipped: string | undefined;
  try {
    if (o.cpuQuota !== undefined) {
      const q = openCpuQuota(o.cpuQuota);
      if ('unavailable' in q) {
        quotaSkipped = `skipped: no writable cgroup CPU controller (${q.unavailable})`;
        progress(`--cpu-quota: ${quotaSkipped}`);
      } else {
        c.quota = q;
        progress(`--cpu-quota: ${q.description}`);
      }
    }
    progress('starting the stand-ins (dynalite, KMS) and creating the table and key');
    s = await startStandIns();
    c.s = s;
    await createAppResources(s.kms, s.dynamo.endpoint, APP);
    const reps: Figures[] = [];
    if (o.importOnly) return await importOnly(c as Context, started);
    if (!o.soakOnly) {
      progress(`storing ${1 + o.cold + o.secrets} secrets`);
      await seed(c as Context);
    }
    if (o.propagationOnly) {
      const f = await propagationFigures(c as Context);
      const labels = { secrets: o.secrets, connections: o.connections, quotaConnections: o.quotaConnections };
      const rows = FIGURES.filter((x) => x.key in f);
      process.stdout.write(
        [
          '',
          `ecs-secrets bench (propagation only), ${started.toISOString()}`,
          '',
          ...rows.map(
            (x) =>
              `${labelOf(x, labels)}: ${f[x.key].toFixed(x.digits)} ${x.unit}${x.goal ? ` (goal ${x.goal.text}: ${x.goal.met(f[x.key]) ? 'met' : 'NOT met'})` : ''}`,
          ),
          '',
        ].join('\n'),
      );
      if (o.out) fs.writeFileSync(o.out, `${JSON.stringify({ date: started.toISOString(), figures: f }, null, 2)}\n`);
      return 0;
    }
    if (!o.soakOnly) {
      for (let rep = 0; rep < o.reps; rep++) reps.push(await repetition(c as Context, rep));
      // Measured once (minutes of idling): the first repetition carries them.
      Object.assign(reps[0], await propagationFigures(c as Context));
    }
    const soaks: SoakResult[] = [];
    if (o.soakSeconds > 0)
      for (const backend of o.soakBackends)
        soaks.push(
          await soak(
            backend,
            daemonOptions(c as Context, ''),
            tmp,
            { seconds: o.soakSeconds, secrets: o.soakSecrets, sampleSeconds: Math.min(5, o.soakSeconds / 6) },
            progress,
          ),
        );
    const soakText = soaks.length
      ? [
          `soak: each backend's daemon under a paced mixed load for ${o.soakSeconds} s after storing ${o.soakSecrets} secrets of 64 B to 64 KiB (${soakLoad()}); RSS from its /metrics`,
          '',
          soakTable(soaks),
          '',
        ]
      : [];
    const soakGoals = soaks.map((r) => ({
      key: `soak.${r.backend}.plateau`,
      label: `soak, ${r.backend === 'local' ? 'embedded' : 'AWS'} backend: mean RSS of the last third`,
      goal: `≤ first third × 1.2 + 16 MiB (${Math.round(r.limitMiB)} MiB)`,
      value: r.lastThirdMiB,
      met: r.met,
    }));
    if (o.soakOnly) {
      process.stdout.write(['', `ecs-secrets bench (soak only), ${started.toISOString()}`, '', ...soakText].join('\n'));
      if (o.out)
        fs.writeFileSync(
          o.out,
          `${JSON.stringify({ date: started.toISOString(), soak: soaks, goals: soakGoals }, null, 2)}\n`,
        );
      return 0;
    }
    const med = medianFigures(reps);
    const labels: LabelValues = {
      secrets: o.secrets,
      connections: o.connections,
      quota: o.cpuQuota,
      quotaConnections: o.quotaConnections,
    };
    for (const k of ['hot.daemon.bytesPerResponse', 'hot.bare.bytesPerResponse']) med[k] = reps[0][k];

    const config = {
      daemon: `node ${[...o.daemonNodeArgs, ''].join(' ')}${path.relative(process.cwd(), CLI)} ${daemonArgs({ app: APP, tokenFile: c.tokenFile ? '<file>' : undefined }, '<port>').join(' ')}`,
      settings:
        'defaults: --watch-interval 5 (so --cache-ttl 600) --stale-if-error 300 --cache-size 10000 --access-log errors (no line per cache hit); JSON logs to a file; /metrics on (prom-client, default metrics included, loaded at the first scrape); RSS read from /proc',
      token: o.token ? 'required, sent on every request (X-ECS-Secrets-Token)' : 'none (--no-token)',
      backend:
        'in-process stand-ins in the bench process: dynalite (DynamoDB) and the KMS stand-in, over HTTP through the real SDK clients',
      load: `autocannon (library, in the bench process): ${o.connections} connections, keep-alive, ${o.duration} s measured after ${o.warmup} s warm-up, GET ${HOT_PATH}`,
      bare: 'node:http server in a child process answering the same body and headers from memory',
      duration: o.duration,
      warmup: o.warmup,
      reps: o.reps,
      connections: o.connections,
      secrets: o.secrets,
      cold: o.cold,
      execRuns: o.execRuns,
      node: serverNode,
      nodeBinary: o.node ?? process.execPath,
      cpuQuota: c.quota
        ? { cores: o.cpuQuota, connections: o.quotaConnections, cgroup: c.quota.description }
        : (quotaSkipped ?? 'not requested (--cpu-quota C)'),
    };
    const text = table(med, reps, labels, quotaSkipped);
    const g = [...goals(med, labels), ...soakGoals];
    process.stdout.write(
      [
        '',
        `ecs-secrets bench, ${started.toISOString()}`,
        `machine: ${machine().nproc} CPUs (${machine().cpuModel}), ${machine().memTotalGiB} GiB, ${machine().platform}; bench on Node ${process.version}, daemon/CLI/bare on Node ${serverNode}${o.node ? ` (${o.node})` : ''}`,
        `quota:  ${typeof config.cpuQuota === 'string' ? config.cpuQuota : `${o.cpuQuota} vCPU for the daemon, then the bare server: ${config.cpuQuota.cgroup}`}`,
        `daemon: ${config.daemon}`,
        `        ${config.settings}; token ${config.token}`,
        `load:   ${config.load}`,
        `bare:   ${config.bare}`,
        `median of ${o.reps} repetition(s); response sizes: daemon ${Math.round(med['hot.daemon.bytesPerResponse'])} B, bare ${Math.round(med['hot.bare.bytesPerResponse'])} B; autocannon records latency in whole ms`,
        '',
        text,
        '',
        ...soakText,
        'footprint (ratios against the bare server in the same run):',
        ...footprint(med, labels),
        '',
        `goals met: ${g.filter((x) => x.met).length} of ${g.length}${
          g.some((x) => !x.met)
            ? ` (missed: ${g
                .filter((x) => !x.met)
                .map((x) => x.label)
                .join('; ')})`
            : ''
        }`,
        '',
      ].join('\n'),
    );
    if (o.out) {
      const result = {
        date: started.toISOString(),
        machine: { ...machine(), serverNode },
        command: [
          'node dist/bench/bench.js',
          ...process.argv.slice(2).map((x) => (/[\s"']/.test(x) ? JSON.stringify(x) : x)),
        ].join(' '),
        config,
        figures: med,
        units: Object.fromEntries(FIGURES.map((d) => [d.key, d.unit])),
        goals: g,
        repetitions: reps,
        soak: soaks,
      };
      fs.writeFileSync(o.out, `${JSON.stringify(result, null, 2)}\n`);
      progress(`figures written to ${o.out}`);
    }
    return 0;
  } finally {
    killAllChildren();
    try {
      c.quota?.remove();
    } catch (err) {
      progress(`warning: could not remove the cgroup: ${(err as Error).message}`);
    }
    closeClient();
    await s?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    killAllChildren();
    process.exit(130);
  });
process.once('exit', killAllChildren);

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error)?.stack ?? String(err)}\n`);
    killAllChildren();
    process.exit(1);
  },
);
