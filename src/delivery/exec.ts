/**
 * `exec`: read the selection, run CMD with it in the environment under the Supervisor, and with
 * `--watch` re-read every few seconds and apply `--on-change` when a selected secret has a new
 * version (or the set under a prefix changed). Through a daemon, the wait between re-reads is its
 * long-poll instead of a timer: a new version is seen as soon as the daemon knows of it, and
 * the set under a prefix at least every `--watch` seconds (the longest wait, at most 60). A failed re-read is a warning, never a reason to
 * touch a running application: the backend being down must not take the service down with it.
 */
import { AppError } from '../core/errors';
import type { Logger } from '../core/log';
import { type SelectedValue, type Selection, toEnvironment } from './selection';
import { type SecretSource, readSelection } from './secret-reader';
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
  source: SecretSource;
  selection: Selection;
  command: string;
  args: readonly string[];
  /** Only the secrets and PATH in the child's environment. */
  pristine: boolean;
  /** Seconds between re-reads; undefined: no watching. */
  watchSeconds?: number;
  onChange: OnChange;
  stopTimeoutMs: number;
  logger: Logger;
}

/** Which versions were delivered: a change of any of them (or of the set) is a rotation. */
const fingerprint = (values: readonly SelectedValue[]): string =>
  values.map((v) => `${v.variable}=${v.name}#${v.serial}`).join('\n');

/** Run CMD until it ends (or `--on-change exit`); resolves to exec's exit code. */
export async function runExec(o: ExecOptions): Promise<number> {
  // Read and check everything before starting anything: a missing or binary secret means the
  // application is never started with an incomplete environment.
  let values = await readSelection(o.source, o.selection);
  const environment = (vs: readonly SelectedValue[]): NodeJS.ProcessEnv => {
    const secrets = toEnvironment(vs);
    const base: NodeJS.ProcessEnv = o.pristine
      ? process.env.PATH === undefined
        ? {}
        : { PATH: process.env.PATH }
      : { ...process.env };
    return { ...base, ...secrets };
  };
  const supervisor = new Supervisor({
    command: o.command,
    args: o.args,
    stopTimeoutMs: o.stopTimeoutMs,
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
  const stopWaiting = new AbortController();
  const tick = async () => {
    // After a failure, the next attempt waits a full interval: a daemon that is down is not hammered.
    let failed = false;
    try {
      if (o.source.waitForChange) {
        await o.source.waitForChange(values, o.watchSeconds!, stopWaiting.signal);
        if (ended) return;
      }
      const next = await readSelection(o.source, o.selection);
      if (ended || fingerprint(next) === fingerprint(values)) return;
      const env = environment(next); // a binary secret newly under the prefix: a warning below, CMD keeps its old environment
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
      const message = err instanceof AppError ? err.message : (err as Error).message;
      o.logger.warn(
        { err: message },
        're-reading the secrets failed: the command keeps running with the secrets it has',
      );
    } finally {
      const waits = o.source.waitForChange !== undefined && !failed;
      if (!ended) timer = setTimeout(() => void tick(), waits ? 0 : o.watchSeconds! * 1000);
    }
  };
  if (o.watchSeconds !== undefined)
    timer = setTimeout(() => void tick(), o.source.waitForChange ? 0 : o.watchSeconds * 1000);
  const code = await supervisor.done;
  ended = true;
  clearTimeout(timer);
  stopWaiting.abort();
  return code;
}
