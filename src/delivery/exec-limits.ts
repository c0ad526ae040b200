/**
 * What execve(2) accepts, checked before exec starts (or stops) anything, so a secret too large
 * for an environment is a clear refusal instead of `spawn E2BIG` after the running command was
 * already stopped. Linux's rules (fs/exec.c):
 * - each string, argument or `NAME=value`, with its NUL is at most MAX_ARG_STRLEN, 32 pages
 *   (131,072 bytes);
 * - all strings plus one pointer each fit in a quarter of the stack limit, capped at 3/4 of 8 MiB
 *   and never below 128 KiB.
 * Other systems have one total limit of their own, near or above these: the same check is a safe
 * approximation there.
 */
import * as fs from 'node:fs';
import { AppError } from '../core/errors';

/** MAX_ARG_STRLEN: one argument or one `NAME=value` string, its NUL included. */
export const MAX_STRING_BYTES = 32 * 4096;
/** The floor (ARG_MAX) and the cap (3/4 of _STK_LIM) of what all strings may take. */
const MIN_TOTAL_BYTES = 32 * 4096;
const MAX_TOTAL_BYTES = ((8 * 1024 * 1024) / 4) * 3;
const POINTER_BYTES = 8;

/** The bound on all strings and pointers: a quarter of the soft stack limit, within the kernel's floor and cap. */
export function totalLimit(stackLimit: number = softStackLimit()): number {
  return Math.max(MIN_TOTAL_BYTES, Math.min(MAX_TOTAL_BYTES, Math.floor(stackLimit / 4)));
}

/** The soft stack limit from /proc/self/limits (children inherit it); Infinity when unlimited or unknown. */
function softStackLimit(): number {
  try {
    const line = fs
      .readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max stack size'));
    const soft = line?.slice('Max stack size'.length).trim().split(/\s+/)[0];
    return soft !== undefined && /^[0-9]+$/.test(soft) ? Number(soft) : Number.POSITIVE_INFINITY;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/**
 * Throw `too_large` (one line, naming the variable and, when it is a secret, the secret; never a
 * value) when CMD could not be started with this argv and environment. `secretOf` maps a variable
 * to the secret it carries. `limit` is for tests.
 */
export function checkExecSize(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  secretOf: (variable: string) => string | undefined,
  limit = totalLimit(),
): void {
  let total = 0;
  let count = 0;
  for (const arg of argv) {
    total += Buffer.byteLength(arg) + 1;
    count++;
  }
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const bytes = Buffer.byteLength(name) + 1 + Buffer.byteLength(value) + 1;
    if (bytes > MAX_STRING_BYTES) {
      const secret = secretOf(name);
      throw new AppError(
        'too_large',
        `${secret === undefined ? `the variable ${name}` : `secret ${JSON.stringify(secret)} as ${name}`} is ${bytes} bytes as "${name}=value"; an environment variable holds at most ${MAX_STRING_BYTES} bytes: render it to a file instead`,
      );
    }
    total += bytes;
    count++;
  }
  total += (count + 1) * POINTER_BYTES;
  if (total > limit)
    throw new AppError(
      'too_large',
      `the command's arguments and environment would take ${total} bytes; the system allows ${limit}: deliver fewer or smaller secrets (render large ones to files)`,
    );
}
