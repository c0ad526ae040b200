/**
 * Rotation with a hook: the Secrets Manager create/set/test/finish sequence for any system a
 * script can update. The new value is made first; the hook gets
 * `{"name","serial","payload","previousPayload"}` on its stdin only (never argv or environment,
 * which other users and crash reports can see) and sets it in the target system; only when it
 * exits 0 is the version stored and are the labels moved. A failed hook stores nothing.
 */
import { spawn } from 'node:child_process';
import { AppError } from '../core/errors';
import type { Logger } from '../core/log';
import type { SecretsService } from '../core/secrets-service';
import { exitCodeOf } from '../delivery/supervisor';

export interface RotateOptions {
  name: string;
  /** The new value (generated or read from a file), text. */
  payload: string;
  hook: { command: string; args: readonly string[] };
  moveLabels: readonly string[];
  logger: Logger;
}

export type RotateOutcome =
  | { stored: true; result: { name: string; serial: number; labels?: string[] } }
  | { stored: false; exitCode: number };

export async function rotate(service: SecretsService, o: RotateOptions): Promise<RotateOutcome> {
  let previousPayload: string | null = null;
  try {
    previousPayload = (await service.fetch(o.name)).payload;
  } catch (err) {
    // A first rotation has nothing before it; any other failure stops before the hook runs.
    if (!(err instanceof AppError && err.kind === 'not_found')) throw err;
  }
  const serial = (await service.store.latestSerial(o.name)) + 1;
  const input = JSON.stringify({ name: o.name, serial, payload: o.payload, previousPayload });
  const exitCode = await runHook(o.hook.command, o.hook.args, input);
  if (exitCode !== 0) {
    o.logger.error({ secret: o.name, exitCode }, 'rotate: the hook failed; nothing was stored');
    return { stored: false, exitCode };
  }
  const created = await service.create(o.name, o.payload);
  if (created.serial !== serial)
    // Another writer stored a version while the hook ran. The hook's value is the one the target
    // system now holds, so it is stored all the same (as the newest version), never dropped.
    o.logger.warn(
      { secret: o.name, expected: serial, serial: created.serial },
      'rotate: another version was stored while the hook ran; the new value got the next serial',
    );
  for (const label of o.moveLabels) await service.setLabel(o.name, label, created.serial);
  return {
    stored: true,
    result: o.moveLabels.length === 0 ? created : { ...created, labels: [...o.moveLabels] },
  };
}

/** Run the hook with `input` on stdin, stdout/stderr passed through; resolves to its exit code. */
function runHook(command: string, args: readonly string[], input: string): Promise<number> {
  return new Promise((resolve, reject) => {
    // The hook's stdout goes to our stderr: stdout is for this command's one JSON result.
    const child = spawn(command, args, { stdio: ['pipe', process.stderr, 'inherit'] });
    child.once('error', (err: NodeJS.ErrnoException) => {
      const kind = err.code === 'ENOENT' ? 'command_not_found' : 'command_not_executable';
      reject(new AppError(kind, `rotate: cannot run the hook ${JSON.stringify(command)}: ${err.code ?? err.message}`));
    });
    // A hook that does not read its stdin closes the pipe early: that is its business, not an error.
    child.stdin.once('error', () => undefined);
    child.stdin.end(input);
    child.once('close', (code, signal) => resolve(exitCodeOf(code, signal)));
  });
}
