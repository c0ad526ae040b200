/**
 * Child processes for the bench (the daemon, the bare server, one-shot CLI runs) and a small HTTP
 * client. Every child is tracked and killed on the way out, whatever happens.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { BareMessage, BareSpec } from './bare-server';

/** dist/bench/procs.js → dist/src/cli.js */
export const CLI = path.resolve(__dirname, '..', 'src', 'cli.js');
const BARE = path.resolve(__dirname, 'bare-server.js');

/** The node binary for every child (the daemon, the CLI, the bare server): `--node`, else ours. */
let nodeBinary = process.execPath;
export function useNode(binary: string): void {
  nodeBinary = binary;
}

const children = new Set<ChildProcess>();
function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
/** Last resort (an exception or a signal in the bench): no child outlives us. */
export function killAllChildren(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

async function stopChild(
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 15_000,
): Promise<number | null> {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    return await exited(child);
  } finally {
    clearTimeout(timer);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** The parent's environment without anything that could point the SDK at real AWS, plus `extra`. */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('AWS_') && !k.startsWith('ECS_SECRETS_')) env[k] = v;
  return { ...env, ...extra };
}

// ---- HTTP client: keep-alive, so a measured request is one round trip, not a TCP handshake ----

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  ms: number;
}

export function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; fresh?: boolean } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(
      url,
      { method: opts.method ?? 'GET', headers: opts.headers, agent: opts.fresh ? false : agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            ms: performance.now() - t0,
          }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer from ${url} within 30 s`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

export function closeClient(): void {
  agent.destroy();
}

/**
 * Close our idle keep-alive connections to one server. A daemon told to stop drains for its drain
 * window while a client keeps a connection open, and ends early once every client has left.
 */
function leave(url: string): void {
  const { hostname, port } = new URL(url);
  for (const [name, sockets] of Object.entries(agent.freeSockets))
    if (name.startsWith(`${hostname}:${port}:`)) for (const socket of sockets ?? []) socket.destroy();
}

/** Store one secret through a daemon's POST route; anything but 201 is an error naming the secret. */
export async function storeSecret(
  d: Pick<DaemonProcess, 'url' | 'headers'>,
  name: string,
  payload: string,
): Promise<void> {
  const r = await request(`${d.url}/latest/secrets/${name}`, {
    method: 'POST',
    headers: { ...d.headers, 'content-type': 'application/json' },
    body: JSON.stringify({ payload }),
  });
  if (r.status !== 201) throw new Error(`storing ${name}: ${r.status} ${r.body.toString('utf8').slice(0, 200)}`);
}

/** Prometheus text → `name{labels}` (as written) → value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

// ---- the daemon ----

export interface DaemonProcess {
  child: ChildProcess;
  url: string;
  /** Spawn to the first HTTP answer, and spawn to /health 200, in ms. */
  listeningMs: number;
  healthyMs: number;
  /** Headers every request needs (the token, when one is configured). */
  headers: Record<string, string>;
  metrics(): Promise<Map<string, number>>;
  /** CPU time (user + system) of the whole process, in seconds, from its own /metrics. */
  cpuSeconds(): Promise<number>;
  /** Resident memory, from /proc where there is one (else from /metrics). */
  rssBytes(): Promise<number>;
  stop(): Promise<number | null>;
}

export interface DaemonSpawnOptions {
  app: string;
  env: Record<string, string>;
  token?: string;
  tokenFile?: string;
  /** The daemon's stderr (its logs) goes to this file. */
  logFile: string;
  nodeArgs?: string[];
  extraArgs?: string[];
  /** How long start-up may take to /health 200 (default 30 s; prefetching 1,000 secrets on a busy machine takes longer). */
  healthyWithinMs?: number;
}

export function daemonArgs(
  o: Pick<DaemonSpawnOptions, 'app' | 'tokenFile' | 'extraArgs'>,
  port: number | string,
): string[] {
  return [
    'daemon',
    '--application-name',
    o.app,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    ...(o.tokenFile ? ['--token-file', o.tokenFile] : []),
    ...(o.extraArgs ?? []),
  ];
}

export async function startDaemon(o: DaemonSpawnOptions): Promise<DaemonProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFd = fs.openSync(o.logFile, 'a');
  const t0 = performance.now();
  let child: ChildProcess;
  try {
    child = track(
      spawn(nodeBinary, [...(o.nodeArgs ?? []), CLI, ...daemonArgs(o, port)], {
        env: childEnv(o.env),
        stdio: ['ignore', 'ignore', logFd],
      }),
    );
  } finally {
    fs.closeSync(logFd); // the child has its own copy
  }
  const headers: Record<string, string> = o.token ? { 'x-ecs-secrets-token': o.token } : {};
  let listeningMs = NaN;
  let healthyMs = NaN;
  try {
    // Poll /health on fresh connections every few ms: the figure is spawn → first 200.
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(
          `the daemon exited (${child.exitCode ?? child.signalCode}) while starting; its log: ${tail(o.logFile)}`,
        );
      try {
        const r = await request(`${url}/health`, { fresh: true });
        if (Number.isNaN(listeningMs)) listeningMs = performance.now() - t0;
        if (r.status === 200) {
          healthyMs = performance.now() - t0;
          break;
        }
      } catch {
        // not listening yet
      }
      const within = o.healthyWithinMs ?? 30_000;
      if (performance.now() - t0 > within)
        throw new Error(`the daemon was not healthy within ${within / 1000} s; its log: ${tail(o.logFile)}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  } catch (err) {
    await stopChild(child, 'SIGKILL');
    throw err;
  }
  const metrics = async () => {
    const r = await request(`${url}/metrics`, { headers });
    if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
    return parseMetrics(r.body.toString('utf8'));
  };
  return {
    child,
    url,
    listeningMs,
    healthyMs,
    headers,
    metrics,
    async cpuSeconds() {
      const m = await metrics();
      return (
        need(m, 'ecs_secrets_process_cpu_user_seconds_total') + need(m, 'ecs_secrets_process_cpu_system_seconds_total')
      );
    },
    async rssBytes() {
      // From the kernel, not /metrics: a scrape would load prom-client (and express, which
      // serves /metrics) into a daemon that has not needed them yet, and measure that.
      const status = procStatus(child.pid);
      if (status !== undefined) return status;
      return need(await metrics(), 'ecs_secrets_process_resident_memory_bytes');
    },
    stop: () => {
      leave(url);
      return stopChild(child);
    },
  };
}

/** VmRSS of a process in bytes, where /proc has it (Linux). */
function procStatus(pid: number | undefined): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export function need(m: Map<string, number>, key: string): number {
  const v = m.get(key);
  if (v === undefined) throw new Error(`metric ${key} missing from /metrics`);
  return v;
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').slice(-2000);
  } catch {
    return '(no log)';
  }
}

// ---- the bare server ----

export interface BareProcess {
  url: string;
  pid: number;
  /** CPU seconds (user + system) and RSS, asked over IPC. */
  usage(): Promise<{ cpuSeconds: number; rss: number }>;
  stop(): Promise<number | null>;
}

export async function startBare(spec: BareSpec): Promise<BareProcess> {
  const child = track(
    spawn(nodeBinary, [BARE], {
      env: { ...process.env, BENCH_BARE_SPEC: JSON.stringify(spec) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  const next = () =>
    new Promise<BareMessage>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the bare server exited (${code})`));
      child.once('exit', onExit);
      child.once('message', (m) => {
        child.off('exit', onExit);
        resolve(m as BareMessage);
      });
    });
  let port: number;
  try {
    const first = await next();
    if (!('port' in first)) throw new Error('the bare server did not report its port');
    port = first.port;
  } catch (err) {
    await stopChild(child, 'SIGKILL');
    throw err;
  }
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    async usage() {
      const reply = next();
      child.send('usage');
      const m = await reply;
      if (!('cpuUserUs' in m)) throw new Error('unexpected message from the bare server');
      return { cpuSeconds: (m.cpuUserUs + m.cpuSystemUs) / 1e6, rss: m.rss };
    },
    stop: () => stopChild(child),
  };
}

// ---- one-shot CLI ----

export function runCli(
  args: string[],
  env: Record<string, string>,
  nodeArgs: string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = track(
      spawn(nodeBinary, [...nodeArgs, CLI, ...args], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, ms: performance.now() - t0 }));
  });
}
