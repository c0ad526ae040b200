/**
 * `exec`: read the selection, run CMD with it in the environment under the Supervisor, and with
 * `--watch` re-read every few seconds and apply `--on-change` when a selected secret has a new
 * version (or the set under a prefix changed). Through a daemon, the wait between re-reads is its
 * long-poll instead of a timer: a new version is seen as soon as the daemon knows of it, and
 * the set under a prefix at least every `--watch` seconds (the longest wait, at most 60). A failed re-read is a warning, never a reason to
 * touch a running application: the backend being down must not take the service down with it.
 * Likewise a new environment that could not be delivered (too large, binary) is checked before
 * CMD is stopped, and refused with a warning: CMD keeps running on the one it has.
 */
import { AppError } from '../core/errors';
import type { Logger } from '../core/log';
import { checkExecSize } from './exec-limits';
import type { SecretSource } from './secret-reader';
import { type SelectedValue, toEnvironment } from './selection';
import { Supervisor, parseSignal } from './supervisor';

export type OnChange = { action: 'restart' } | { action: 'exit' } | { action: 'signal'; signal: NodeJS.Signals };

/** `restart`, `exit` or `signal:SIG`. */
export function parseOnChange(value: string): OnChange {
  if (value === 'restart' || value === 'exit') return { action: value };
  if (value.startsWith('signal:')) return { action: 'signal', signal: parseSignal(value.slice('signal:'.length)) };
  throw new AppError(
    'usage',
    `unknown --on-change ${JSON.stringify(value)}: use restart, exit or signal:SIG (e.g. signal:SIGHUP)`,
  );
}

export interface ExecOptions {
  /**
   * Reads the selection, holding nothing open afterwards: CMD is started after it returns, and a
   * descriptor open during a spawn (the embedded store's log, say) could end up in CMD.
   */
  read: () => Promise<SelectedValue[]>;
  /**
   * Through a daemon: waits until one of the delivered secrets has a new version (its long-poll),
   * or `seconds` pass, instead of sleeping between re-reads.
   */
  waitForChange?: SecretSource['waitForChange'];
  command: string;
  args: readonly string[];
  /** Only the secrets and PATH in the child's environment. */
  pristine: boolean;
  /** Seconds between re-reads; undefined: no watching. */
  watchSeconds?: number;
  onChange: OnChange;
  stopTimeoutMs: number;
  /** The umask CMD starts with (exec's caller's). */
  umask?: number;
  logger: Logger;
}

/** Which versions were delivered: a change of any of them (or of the set) is a rotation. */
const fingerprint = (values: readonly SelectedValue[]): string =>
  values.map((v) => `${v.variable}=${v.name}#${v.serial}`).join('\n');

/** Run CMD until it ends (or `--on-change exit`); resolves to exec's exit code. */
export async function runExec(o: ExecOptions): Promise<number> {
  /**
   * CMD's environment for these values, checked whole before anything is started or stopped: a
   * binary or NUL-holding secret, or one too large for execve, throws a usage or too_large error.
   */
  const environment = (vs: readonly SelectedValue[]): NodeJS.ProcessEnv => {
    const secrets = toEnvironment(vs);
    const base: NodeJS.ProcessEnv = o.pristine
      ? process.env.PATH === undefined
        ? {}
        : { PATH: process.env.PATH }
      : { ...process.env };
    // No prototype, so a variable named __proto__ is a variable (see toEnvironment).
    const env: NodeJS.ProcessEnv = Object.assign(Object.create(null), base, secrets);
    const secretOf = new Map(vs.map((v) => [v.variable, v.name]));
    checkExecSize([o.command, ...o.args], env, (variable) => secretOf.get(variable));
    return env;
  };
  // Read and check everything before starting anything: a missing, binary or oversized secret
  // means the application is never started with an incomplete environment.
  let values = await o.read();
  const supervisor = new Supervisor({
    command: o.command,
    args: o.args,
    stopTimeoutMs: o.stopTimeoutMs,
    umask: o.umask,
    logger: o.logger,
  });
  try {
    await supervisor.start(environment(values));
  } catch (err) {
    await supervisor.exit(); // releases the signal handlers
    throw err;
  }
  let timer: NodeJS.Timeout | undefined;
  let ended = false;
  /** The set of versions last refused, so a refusal is logged once, not on every tick. */
  let refused: string | undefined;
  const stopWaiting = new AbortController();
  const tick = async () => {
    // After a failure, the next attempt waits a full interval: a daemon that is down is not hammered.
    let failed = false;
    try {
      if (o.waitForChange) {
        await o.waitForChange(values, o.watchSeconds!, stopWaiting.signal);
        if (ended) return;
      }
      const next = await o.read();
      if (ended || fingerprint(next) === fingerprint(values)) return;
      let env: NodeJS.ProcessEnv;
      try {
        env = environment(next);
      } catch (err) {
        // Checked before stopping anything: CMD keeps the environment it has. `values` stays, so
        // the next tick compares with what CMD has, and a fixed version is applied then.
        if (refused !== fingerprint(next))
          o.logger.warn(
            { err: messageOf(err) },
            'the new secrets cannot be delivered as an environment: the command keeps running with the secrets it has',
          );
        refused = fingerprint(next);
        // Wait a full interval as after a failure: a long-poll on the versions CMD has would
        // answer at once (they are not the latest), and the refused set would be re-read in a loop.
        failed = true;
        return;
      }
      refused = undefined;
      const changed = next
        .filter(
          (v) => !values.some((old) => old.variable === v.variable && old.name === v.name && old.serial === v.serial),
        )
        .map((v) => `${v.name}#${v.serial}`);
      const removed = values.filter((old) => !next.some((v) => v.variable === old.variable)).map((v) => v.name);
      values = next;
      o.logger.info({ changed, removed, action: o.onChange.action }, 'secrets changed');
      if (o.onChange.action === 'restart') await supervisor.restart(env);
      else if (o.onChange.action === 'signal') supervisor.signal(o.onChange.signal);
      else await supervisor.exit();
    } catch (err) {
      failed = true;
      o.logger.warn(
        { err: messageOf(err) },
        're-reading the secrets failed: the command keeps running with the secrets it has',
      );
    } finally {
      const waits = o.waitForChange !== undefined && !failed;
      if (!ended) timer = setTimeout(() => void tick(), waits ? 0 : o.watchSeconds! * 1000);
    }
  };
  if (o.watchSeconds !== undefined) timer = setTimeout(() => void tick(), o.waitForChange ? 0 : o.watchSeconds * 1000);
  const code = await supervisor.done;
  ended = true;
  clearTimeout(timer);
  stopWaiting.abort();
  return code;
}

/** An error's one line for a log (AppError messages never hold a value). */
const messageOf = (err: unknown): string => (err instanceof AppError ? err.message : (err as Error).message);
