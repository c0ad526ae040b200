/**
 * Reading a file that decides how the daemon behaves (the token file, the config file): a file
 * another user owns or may write is a setting they may choose, so it is refused, as ssh refuses
 * such an authorized_keys. Readers are left to the deployment: secrets mounted by a runtime are
 * often root's and readable by the sidecar's group.
 */
import * as fs from 'node:fs';
import { AppError } from './errors';

/** Errors that mean the path names no file we may read: the operator's to fix, like a bad flag. */
const WRONG_PATH = new Set(['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'ELOOP', 'ENAMETOOLONG', 'EISDIR']);

/**
 * The text of `file`, a regular file owned by this user or root and not writable by group or
 * others. `what` names it in errors (e.g. `--token-file "/run/token"`); no error carries its
 * content. A path naming no readable file is a usage error; a failing read (EIO) is unavailable.
 */
export function readTrustedFile(file: string, what: string): string {
  let fd: number | undefined;
  try {
    // Opened without blocking (a FIFO would hold the start until someone writes to it) and checked
    // on the descriptor, so what is checked is what is read.
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new AppError('usage', `refusing ${what}: it is not a regular file`);
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid && st.uid !== 0)
      throw new AppError(
        'usage',
        `refusing ${what}: it is owned by uid ${st.uid}, neither this user (${uid}) nor root`,
      );
    if ((st.mode & 0o022) !== 0)
      throw new AppError(
        'usage',
        `refusing ${what}: it is writable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod go-w it`,
      );
    return fs.readFileSync(fd, 'utf8');
  } catch (err) {
    if (err instanceof AppError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new AppError(WRONG_PATH.has(code) ? 'usage' : 'unavailable', `cannot read ${what}: ${code}`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
