/** Spawn `ecs-secrets daemon` on a free port and wait until it listens (and, if asked, is healthy). */
import { type ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';
import { CLI, baseEnv } from './cli';

export interface SpawnedDaemon {
  child: ChildProcess;
  port: number;
  url: string;
  /** Everything the process wrote to stderr so far (its logs). */
  logs(): string;
  /** Wait until the logs match (the daemon buffers its request lines for up to 100 ms). */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  stdout(): string;
  /** SIGTERM and wait for exit; resolves to the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * How long a daemon may take to listen (and be healthy, if asked): about 1 s on a quiet machine;
 * a `--local` daemon started while another suite runs 50 CLI processes beside a CPU-bound process
 * took more than 15 s. Half a test's usual 60 s, so a daemon that never comes up still fails in time.
 */
const SPAWN_TIMEOUT_MS = 30_000;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function spawnDaemon(
  args: string[],
  opts: {
    env?: Record<string, string | undefined>;
    waitHealthy?: boolean;
    timeoutMs?: number;
    /** A command the daemon is started through, e.g. a shell that lowers a limit and execs it. */
    launcher?: string[];
    /**
     * The port the daemon will listen on, given elsewhere than on the command line (a config file,
     * a variable): then no --host and --port are added.
     */
    port?: number;
  } = {},
): Promise<SpawnedDaemon> {
  // A free port can be taken by another suite's process between freePort() and the daemon's
  // listen (three suites run at once): then start again on another, a few times.
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnOnce(args, opts);
    } catch (err) {
      if (!(err instanceof PortTaken) || opts.port !== undefined || attempt === 3) throw err;
    }
  }
}

class PortTaken extends Error {}

async function spawnOnce(args: string[], opts: Parameters<typeof spawnDaemon>[1] & object): Promise<SpawnedDaemon> {
  const port = opts.port ?? (await freePort());
  const listen = opts.port === undefined ? ['--host', '127.0.0.1', '--port', String(port)] : [];
  const env = { ...baseEnv(), ...opts.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  // Suites stop hundreds of daemons; the drain window (test/reliability/shutdown.test.ts tests it)
  // would add seconds to each stop while a test's idle keep-alive connections wait it out.
  const drain = args.some((a) => a.startsWith('--drain-seconds')) ? [] : ['--drain-seconds', '0'];
  const argv = [process.execPath, CLI, 'daemon', ...listen, ...drain, ...args];
  const [command, ...rest] = [...(opts.launcher ?? []), ...argv];
  const child = spawn(command, rest, {
    env: env as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
  child.stdout!.setEncoding('utf8').on('data', (d) => (stdout += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.timeoutMs ?? SPAWN_TIMEOUT_MS);
  for (;;) {
    if (child.exitCode !== null) {
      if (/cannot listen on .*: the port is in use/.test(stderr)) throw new PortTaken(stderr);
      throw new Error(`daemon exited with ${child.exitCode}: ${stderr}`);
    }
    try {
      const r = await fetch(`${url}/health`);
      if (!opts.waitHealthy || r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`daemon did not come up: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    port,
    url,
    logs: () => stderr,
    async waitForLog(pattern: RegExp, timeoutMs = 5000) {
      const until = Date.now() + timeoutMs;
      while (!pattern.test(stderr) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      return stderr;
    },
    stdout: () => stdout,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
