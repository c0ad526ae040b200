/**
 * `exec`'s supervisor: runs CMD as a child with the secrets in its environment and stays its
 * parent (no exec(2)), so it can restart it on rotation. What it promises:
 * - every SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 it receives reaches the child exactly once;
 * - the exit code is the child's, or 128+n when a signal n killed it (what a shell reports);
 * - a child still running `stopTimeoutMs` after SIGTERM (a restart, an exit, a forwarded SIGTERM)
 *   gets SIGKILL; its process group too, so nothing it started outlives it;
 * - the child is always waited for (Node reaps it), so it never lingers as a zombie.
 *
 * The child gets its own process group when stdin is not a terminal (a container's entrypoint):
 * then signals reach it only through us, hence once. In a terminal it stays in the foreground
 * group so it can read the terminal; the terminal itself already delivers Ctrl-C (SIGINT) and
 * Ctrl-\ (SIGQUIT) to the whole group, so we do not forward those two a second time there.
 */
import { type ChildProcess, spawn } from 'node:child_process';
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

export interface SupervisorOptions {
  command: string;
  args: readonly string[];
  stopTimeoutMs: number;
  logger: Logger;
}

export class Supervisor {
  private child: ChildProcess | undefined;
  private exited: Promise<number> | undefined;
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

  /** Start the child with this environment. Rejects (exit 127 not found, 126 not executable) when it cannot be spawned. */
  async start(env: NodeJS.ProcessEnv): Promise<void> {
    const child = spawn(this.opts.command, [...this.opts.args], { env, stdio: 'inherit', detached: this.ownGroup });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err: NodeJS.ErrnoException) => {
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
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(exitCodeOf(code, signal))));
    void this.exited.then((code) => {
      if (this.child !== child) return; // replaced by a restart: that exit was ours
      this.child = undefined;
      this.finish(code);
    });
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Send a signal to the child (`--on-change signal:SIG`). */
  signal(sig: NodeJS.Signals): void {
    this.child?.kill(sig);
  }

  /** Stop the child and start it again with a new environment (`--on-change restart`). */
  async restart(env: NodeJS.ProcessEnv): Promise<void> {
    const old = this.child;
    if (old === undefined || this.stopping) return;
    this.child = undefined; // its exit is part of the restart, not the end of exec
    await this.terminate(old, this.exited!);
    if (this.stopping) {
      // A stop arrived while we waited: the restart is off, and that exit is final.
      this.finish(exitCodeOf(old.exitCode, old.signalCode as NodeJS.Signals | null));
      return;
    }
    try {
      await this.start(env);
    } catch (err) {
      this.opts.logger.error({ err: (err as Error).message }, 'restart failed: the command could not be started again');
      this.finish(ERROR_TABLE.command_not_found.exitCode);
    }
  }

  /** Stop the child and end with code 0 (`--on-change exit`: ECS then replaces the task). */
  async exit(): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (child === undefined) return this.finish(0);
    this.child = undefined;
    await this.terminate(child, this.exited!);
    this.finish(0);
  }

  private onSignal(sig: NodeJS.Signals): void {
    if (sig === 'SIGTERM' || sig === 'SIGINT' || sig === 'SIGQUIT') this.stopping = true;
    const child = this.child;
    if (child === undefined) return; // between a stop and a start: nothing to signal, and no restart will follow
    if (!this.ownGroup && (sig === 'SIGINT' || sig === 'SIGQUIT')) return; // the terminal sent it to the child already
    child.kill(sig);
    // A child that ignores SIGTERM must still end: give it the stop timeout, then SIGKILL.
    if (sig === 'SIGTERM') this.killAfterTimeout(child, this.exited!);
  }

  /** SIGTERM, wait up to the stop timeout, then SIGKILL (the group when the child has one). */
  private async terminate(child: ChildProcess, exited: Promise<number>): Promise<number> {
    child.kill('SIGTERM');
    this.killAfterTimeout(child, exited);
    return exited;
  }

  private killAfterTimeout(child: ChildProcess, exited: Promise<number>): void {
    const timer = setTimeout(() => {
      this.opts.logger.warn(
        { pid: child.pid, stopTimeoutSeconds: this.opts.stopTimeoutMs / 1000 },
        'the command did not stop after SIGTERM: sending SIGKILL',
      );
      this.killGroup(child, 'SIGKILL');
    }, this.opts.stopTimeoutMs);
    void exited.then(() => clearTimeout(timer));
  }

  private killGroup(child: ChildProcess, sig: NodeJS.Signals): void {
    try {
      if (this.ownGroup && child.pid !== undefined) process.kill(-child.pid, sig);
      else child.kill(sig);
    } catch {
      child.kill(sig); // the group is gone already
    }
  }

  private finish(code: number): void {
    for (const [sig, handler] of this.handlers) process.off(sig, handler);
    this.handlers.clear();
    this.finalCode?.(code);
    this.finalCode = undefined;
  }
}
