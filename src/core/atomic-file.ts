/**
 * The one atomic file writer (rendered files, `config encrypt/decrypt --out`, the embedded store's
 * endpoint file): a temp file in the same directory (so the rename cannot cross file systems),
 * created exclusively with the final mode, written, fsynced, renamed over the target, then the
 * directory fsynced so the rename itself survives a crash. A reader sees the old file or the new
 * one, never a mix, and the temp file is never left behind by a failed write.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

const TEMP_MARK = '.ecs-secrets-tmp-';

/** How our temp files for `file` begin: `.<file>.ecs-secrets-tmp-`, so a crash's leftovers can be found and removed. */
export const tempPrefix = (file: string): string => `.${path.basename(file)}${TEMP_MARK}`;

/** Write `data` to `file` atomically with `mode`. Errors are the file system's own (callers word them). */
export async function writeFileAtomic(file: string, data: Buffer | string, mode: number): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `${tempPrefix(file)}${process.pid}-${randomBytes(6).toString('hex')}`);
  let renamed = false;
  try {
    // Exclusive and never through a link: a name planted in a shared directory is not written through.
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
    const fh = await fs.promises.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    try {
      await fh.chmod(mode); // the umask may have taken bits away at creation
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
    renamed = true;
  } finally {
    if (!renamed) await fs.promises.rm(tmp, { force: true });
  }
  // The rename is durable only once the directory entry is on disk.
  const dh = await fs.promises.open(dir, 'r');
  try {
    await dh.sync().catch(() => undefined); // some file systems refuse fsync on a directory: nothing more to do there
  } finally {
    await dh.close();
  }
}
