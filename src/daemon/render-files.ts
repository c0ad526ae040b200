/**
 * The file side of `daemon --render`: how a rendered file reaches the disk, and what is checked
 * before and between writes (render.ts decides what to write and when).
 *
 * - Every file is written atomically (core/atomic-file.ts). A temp file left by a crash (ours are
 *   named `.<file>.ecs-secrets-tmp-*`) is removed at the next start, before anything is written.
 * - A file found at start is kept only if it is a regular file of our own user with the very
 *   bytes we would write; a file changed on disk since we wrote it is noticed by its stamp.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempPrefix } from '../core/atomic-file';
import { AppError } from '../core/errors';
import type { Logger } from '../core/log';
import type { RenderTarget } from './render-targets';

/** What rendered bytes are compared by: a digest, so that no secret is kept twice in memory. */
export const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * At start, before anything is written: each target's directory must exist and be writable (a
 * usage error otherwise: the task definition is wrong, and retrying cannot fix it), the target
 * must not be a directory, and temp files a crashed run of ours left next to it are removed.
 */
export function prepareTargets(targets: readonly Pick<RenderTarget, 'file' | 'spec'>[], logger?: Logger): void {
  for (const t of targets) {
    const dir = path.dirname(t.file);
    let st: fs.Stats;
    try {
      st = fs.statSync(dir);
    } catch (err) {
      throw new AppError(
        'usage',
        `--render ${JSON.stringify(t.spec)}: directory ${JSON.stringify(dir)} ${describeFsError(err)}`,
      );
    }
    if (!st.isDirectory())
      throw new AppError('usage', `--render ${JSON.stringify(t.spec)}: ${JSON.stringify(dir)} is not a directory`);
    // In a directory anyone may write without the sticky bit, anyone may rename or remove our
    // file and put theirs in its place between two writes (as /tmp would allow without +t).
    if ((st.mode & 0o002) !== 0 && (st.mode & 0o1000) === 0)
      throw new AppError(
        'usage',
        `--render ${JSON.stringify(t.spec)}: directory ${JSON.stringify(dir)} is writable by everyone without the sticky bit (mode ${(st.mode & 0o7777).toString(8)}); chmod o-w or +t it`,
      );
    try {
      if (fs.statSync(t.file).isDirectory())
        throw new AppError('usage', `--render ${JSON.stringify(t.spec)}: ${JSON.stringify(t.file)} is a directory`);
    } catch (err) {
      if (err instanceof AppError) throw err;
    }
    // Create and remove a temp file: the only test that covers read-only mounts, ACLs and root alike.
    const probe = path.join(dir, `${tempPrefix(t.file)}probe-${process.pid}`);
    try {
      fs.closeSync(fs.openSync(probe, 'wx', 0o600));
      fs.unlinkSync(probe);
    } catch (err) {
      throw new AppError(
        'usage',
        `--render ${JSON.stringify(t.spec)}: directory ${JSON.stringify(dir)} is not writable (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    for (const f of fs.readdirSync(dir)) {
      if (!f.startsWith(tempPrefix(t.file))) continue;
      const file = path.join(dir, f);
      // Only what our writer leaves: a file (or a link, removed itself, never followed). Anything
      // else under that name (a folder another user made in a shared directory) is not ours to
      // remove, and costs nothing: each write uses a fresh random temp name.
      try {
        if (fs.lstatSync(file).isDirectory()) {
          logger?.warn({ file }, 'render: left alone a folder named like our temp files');
          continue;
        }
        fs.rmSync(file, { force: true });
      } catch (err) {
        throw new AppError(
          'usage',
          `--render ${JSON.stringify(t.spec)}: cannot remove ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        );
      }
      logger?.warn({ file }, 'render: removed a temp file left by an earlier run');
    }
  }
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'ENOTDIR') return 'is not a directory';
  if (code === 'EACCES') return 'cannot be reached (permission denied)';
  return `cannot be used (${code ?? 'error'})`;
}

/** Who and what a path is now, without following a link: compared with what we left. */
export async function stampOf(file: string): Promise<string | undefined> {
  try {
    const st = await fs.promises.lstat(file);
    return st.isFile() ? `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}` : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A file left by an earlier run of this container with the same bytes (`sum`): keep it (fix its
 * mode), no rewrite. Only a regular file of our own user: a link (never followed) or another
 * user's file with the right bytes is replaced, so the file the application reads is always ours.
 */
export async function keepIfSame(file: string, sum: string, mode: number): Promise<boolean> {
  let fh: fs.promises.FileHandle;
  try {
    // Checked, read and chmod-ed through one descriptor opened without following a link: a path
    // swapped for a link between a check and a chmod by path would lend our mode to its target.
    fh = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.uid !== process.getuid?.() || digest(await fh.readFile()) !== sum) return false;
    if ((st.mode & 0o777) !== mode) await fh.chmod(mode);
    return true;
  } catch {
    return false;
  } finally {
    await fh.close();
  }
}
