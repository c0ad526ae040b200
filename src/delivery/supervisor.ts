/**
 * `exec`'s supervisor: runs CMD as a child with the secrets in its environment and stays its
 * parent (no exec(2)), so it can restart it on rotation. What it promises:
 * - every SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 it receives reaches the child exactly once;
 * - the exit code is the child's, or 128+n when a signal n killed it (what a shell reports);
 * - a stop (a restart, `--on-change exit`, a forwarded SIGTERM, SIGINT or SIGQUIT) reaches the
 *   child's whole process group, and so does the end of the child: whatever it started (a server
 *   behind a wrapper shell) gets SIGTERM too, and whatever is still running `stopTimeoutMs` later
 *   gets SIGKILL. Nothing of an old child runs beside its replacement or outlives exec;
 * - the child is always waited for (Node reaps it), so it never lingers as a zombie;
 * - the child gets the umask exec was started with, not the private one a `--local` store sets.
 *
 * The child gets its own process group when stdin is not a terminal (a container's entrypoint):
 * then signals reach it only through us, hence once. In a terminal it stays in the foreground
 * group so it can read the terminal; the terminal itself already delivers Ctrl-C (SIGINT) and
 * Ctrl-\ (SIGQUIT) to the whole group, so we do not forward those two a second time there, and
 * stops reach the child alone (its group is ours).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { AppError, ERROR_TABLE } from '../core/errors';
import type { Logger } from '../core/log';

export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = [
  'SIGTERM',
  'SIGINT',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
];

/** `SIGHUP`, `HUP` or `hup` → `SIGHUP`; anything that is not a signal of this system is a usage error. */
export function parseSignal(value: string): NodeJS.Signals {
  const upper = value.toUpperCase();
  const name = (upper.startsWith('SIG') ? upper : `SIG${upper}`) as NodeJS.Signals;
  if (!(name in osConstants.signals) || name === 'SIGKILL' || name === 'SIGSTOP')
    throw new AppError(
      'usage',
      `unknown signal ${JSON.stringify(value)}: use a name such as SIGHUP, SIGUSR1 or SIGTERM`,
    );
  return name;
}

/** The exit code a shell would report for a child that ended with `code` or was killed by `signal`. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (signal) return 128 + (osConstants.signals[signal] ?? 0);
  return code ?? 1;
}

/**
 * This process's umask, read without changing it (/proc/self/status; process.umask() with no
 * argument sets it twice to read it). Read it before anything sets ours, to give it to the child.
 */
export function currentUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number.parseInt(m[1], 8);
  } catch {
    // not Linux: the portable way below
  }
  return process.umask();
}

export interface SupervisorOptions {
  command: string;
  args: readonly string[];
  stopTimeoutMs: number;
  /** The umask the child starts with (the caller's, captured before a --local store set 077). */
  umask?: number;
  logger: Logger;
}

/** One started child: its exit, and its stop once one has begun (shared by whoever asks for it). */
interface Run {
  child: ChildProcess;
  exited: Promise<number>;
  stopped?: Promise<number>;
}

/** How often a stop looks whether the child's process group is empty yet. */
const GROUP_POLL_MS = 50;

export class Supervisor {
  private run: Run | undefined;
  /** Set once we are ending (a forwarded SIGTERM/SIGINT, --on-change exit): the next exit is final. */
  private stopping = false;
  private finalCode: ((code: number) => void) | undefined;
  /** Resolves with exec's own exit code, once the last child has ended and will not be restarted. */
  readonly done: Promise<number>;
  private readonly handlers = new Map<NodeJS.Signals, () => void>();
  private readonly ownGroup = !process.stdin.isTTY;

  constructor(private readonly opts: SupervisorOptions) {
    this.done = new Promise((resolve) => (this.finalCode = resolve));
    for (const sig of FORWARDED_SIGNALS) {
      const handler = () => this.onSignal(sig);
      this.handlers.set(sig, handler);
      process.on(sig, handler);
    }
  }

  /** Start the child with this environment. Rejects (exit 127 not found, 126 not executable, 2 too large) when it cannot be spawned. */
  async start(env: NodeJS.ProcessEnv): Promise<void> {
    const child = this.spawnWithUmask(env);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err: NodeJS.ErrnoException) => {
        // checkExecSize refuses this first; should a system's limit be lower still, it is no 126.
        if (err.code === 'E2BIG')
          return reject(
            new AppError(
              'too_large',
              `cannot run ${JSON.stringify(this.opts.command)}: its arguments and environment are too large`,
            ),
          );
        // 127 and 126 as a shell, env(1) and `docker run` report them, so an entrypoint's
        // failure reads the same whichever of them started it.
        const kind = err.code === 'ENOENT' ? 'command_not_found' : 'command_not_executable';
        const why =
          err.code === 'ENOENT'
            ? 'command not found'
            : err.code === 'EACCES'
              ? 'permission denied'
              : (err.code ?? err.message);
        reject(new AppError(kind, `cannot run ${JSON.stringify(this.opts.command)}: ${why}`));
      });
    });
    const run: Run = {
      child,
      exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve(exitCodeOf(code, signal)))),
    };
    this.run = run;
    void run.exited.then(async (code) => {
      if (this.run !== run) return; // replaced by a restart: that exit was ours
      this.run = undefined;
      // What the child started may still run: it goes with the child.
      await this.stop(run);
      this.finish(code);
    });
  }

  /**
   * spawn() forks synchronously, so the child gets the umask in force during the call: the
   * caller's, set back to ours at once. Nothing else of ours creates files meanwhile (exec closes
   * the store before it starts CMD).
   */
  private spawnWithUmask(env: NodeJS.ProcessEnv): ChildProcess {
    const ours = this.opts.umask === undefined ? undefined : process.umask(this.opts.umask);
    try {
      return spawn(this.opts.command, [...this.opts.args], { env, stdio: 'inherit', detached: this.ownGroup });
    } finally {
      if (ours !== undefined) process.umask(ours);
    }
  }

  get running(): boolean {
    return this.run !== undefined;
  }

  /** Send a signal to the child (`--on-change signal:SIG`): the child alone, it is its to pass on. */
  signal(sig: NodeJS.Signals): void {
    this.run?.child.kill(sig);
  }

  /** Stop the child and start it again with a new environment (`--on-change restart`). */
  async restart(env: NodeJS.ProcessEnv): Promise<void> {
    const old = this.run;
    if (old === undefined || this.stopping) return;
    this.run = undefined; // its exit is part of the restart, not the end of exec
    const code = await this.stop(old);
    if (this.stopping) {
      // A stop arrived while we waited: the restart is off, and that exit is final.
      this.finish(code);
      return;
    }
    try {
      await this.start(env);
    } catch (err) {
      this.opts.logger.error({ err: (err as Error).message }, 'restart failed: the command could not be started again');
      this.finish(err instanceof AppError ? err.exitCode : ERROR_TABLE.command_not_found.exitCode);
    }
  }

  /** Stop the child and end with code 0 (`--on-change exit`: ECS then replaces the task). */
  async exit(): Promise<void> {
    this.stopping = true;
    const run = this.run;
    if (run === undefined) return this.finish(0);
    this.run = undefined;
    await this.stop(run);
    this.finish(0);
  }

  private onSignal(sig: NodeJS.Signals): void {
    const ends = sig === 'SIGTERM' || sig === 'SIGINT' || sig === 'SIGQUIT';
    if (ends) this.stopping = true;
    const run = this.run;
    if (run === undefined) return; // between a stop and a start: nothing to signal, and no restart will follow
    if (!this.ownGroup && (sig === 'SIGINT' || sig === 'SIGQUIT')) return; // the terminal sent it to the group already
    if (sig === 'SIGTERM') void this.stop(run);
    else if (ends) this.signalGroup(run.child, sig);
    else run.child.kill(sig);
  }

  /**
   * The one stop: SIGTERM to the child's group, then, once the child has ended, wait for the rest
   * of its group until the stop timeout, and SIGKILL to whatever is left of it (the child
   * included, if it is still running). Resolves with the child's exit code. Asked twice, the same
   * stop: one SIGTERM, one deadline.
   */
  private stop(run: Run): Promise<number> {
    run.stopped ??= (async () => {
      const deadline = Date.now() + this.opts.stopTimeoutMs;
      this.signalGroup(run.child, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), this.opts.stopTimeoutMs);
      });
      const first = await Promise.race([run.exited, timedOut]);
      clearTimeout(timer);
      if (first === 'timeout') {
        this.opts.logger.warn(
          { pid: run.child.pid, stopTimeoutSeconds: this.opts.stopTimeoutMs / 1000 },
          'the command did not stop after SIGTERM: sending SIGKILL',
        );
        this.signalGroup(run.child, 'SIGKILL');
        return run.exited;
      }
      const pgid = run.child.pid;
      if (!this.ownGroup || pgid === undefined) return first;
      while (groupAlive(pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, GROUP_POLL_MS));
      if (groupAlive(pgid)) {
        this.opts.logger.warn(
          { pgid, stopTimeoutSeconds: this.opts.stopTimeoutMs / 1000 },
          'processes the command started did not stop after SIGTERM: sending SIGKILL',
        );
        this.signalGroup(run.child, 'SIGKILL');
      }
      return first;
    })();
    return run.stopped;
  }

  /** A signal to the child's process group when it has one of its own, else to the child. */
  private signalGroup(child: ChildProcess, sig: NodeJS.Signals): void {
    try {
      if (this.ownGroup && child.pid !== undefined) process.kill(-child.pid, sig);
      else child.kill(sig);
    } catch {
      // the group is empty already
    }
  }

  private finish(code: number): void {
    for (const [sig, handler] of this.handlers) process.off(sig, handler);
    this.handlers.clear();
    this.finalCode?.(code);
    this.finalCode = undefined;
  }
}

/**
 * True while a live process of the group exists. One we may not signal counts as gone (we cannot
 * stop it), and so does a zombie: an orphan that ended waits for a reaper that may never come
 * (exec as PID 1 without an init), and kill(2) still finds it.
 */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((f) => /^[0-9]+$/.test(f));
  } catch {
    return true; // no /proc: the signal's answer is all there is
  }
  return pids.some((pid) => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(pgrp) === pgid && state !== 'Z' && state !== 'X';
    } catch {
      return false; // ended meanwhile
    }
  });
}
