/**
 * The embedded backend's data dir holds the master key and every secret's ciphertext: it must be
 * private to the user who runs ecs-secrets, as ssh insists for ~/.ssh. A directory or key that is
 * owned by another user, writable by group or others, or reached through a symbolic link could be
 * swapped or read by someone else, so it is refused with a message saying what to fix. A directory
 * that cannot be written (typically a Docker volume owned by root while the image runs as uid 1000)
 * is reported as exactly that, instead of as a LevelDB error.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AppError } from './errors';

const mode = (st: fs.Stats) => (st.mode & 0o777).toString(8).padStart(3, '0');
const myUid = (): number | undefined => process.getuid?.();

function lstat(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AppError(
      'access_denied',
      `cannot inspect ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

/** The nearest existing directory at or above `p` (what must be writable to create `p`). */
function nearestExisting(p: string): string {
  let dir = p;
  while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

/**
 * mkdir -p, one level at a time: Node's own `recursive: true` loops forever where a parent refuses
 * new entries with ENOENT instead of EACCES (e.g. under /proc), so a bad --data-dir would hang.
 */
function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; !fs.existsSync(d) && path.dirname(d) !== d; d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) fs.mkdirSync(d, { mode: 0o700 });
}

function notWritable(dataDir: string, blocking: string): AppError {
  const uid = myUid();
  const st = lstat(blocking);
  const owner = st ? ` (owned by uid ${st.uid}, mode ${mode(st)})` : '';
  const who = uid === undefined ? 'this user' : `uid ${uid}`;
  const where =
    blocking === dataDir
      ? `data dir ${dataDir} is not writable by ${who}`
      : `cannot create data dir ${dataDir}: ${blocking} is not writable by ${who}`;
  return new AppError(
    'access_denied',
    `${where}${owner}; give ${who} write access (e.g. chown ${uid ?? '<uid>'} on the volume mounted there) or pass a --data-dir it can write`,
  );
}

/**
 * Create the data dir (0700) or check the one that exists: a real directory, owned by us, not
 * writable by group or others, writable by us. Read bits for group or others are taken away rather
 * than refused: nothing in it is meant for them, and an older version created it 0755.
 */
export function ensurePrivateDir(dir: string): void {
  let st = lstat(dir);
  if (!st) {
    try {
      makeDirs(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw notWritable(dir, nearestExisting(dir));
      throw new AppError('access_denied', `cannot create data dir ${dir}: ${code ?? (err as Error).message}`);
    }
    st = fs.lstatSync(dir);
  }
  if (st.isSymbolicLink())
    throw new AppError(
      'access_denied',
      `refusing data dir ${dir}: it is a symbolic link; pass the real directory (${safeRealpath(dir)}) as --data-dir`,
    );
  if (!st.isDirectory()) throw new AppError('access_denied', `refusing data dir ${dir}: it is not a directory`);
  const uid = myUid();
  if (uid !== undefined && st.uid !== uid)
    throw new AppError(
      'access_denied',
      `refusing data dir ${dir}: it is owned by uid ${st.uid}, not by uid ${uid} that runs ecs-secrets; chown -R ${uid} ${dir}, or run as its owner`,
    );
  if ((st.mode & 0o022) !== 0)
    throw new AppError(
      'access_denied',
      `refusing data dir ${dir}: it is writable by group or others (mode ${mode(st)}); run chmod 700 ${dir}`,
    );
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch {
    throw notWritable(dir, dir);
  }
  if ((st.mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}

/**
 * Check a file that must be ours alone (the master key): not a symbolic link, owned by us, no
 * permission bits for group or others. `lstat` first: following a link would check its target,
 * which whoever controls the link chooses.
 */
export function checkPrivateFile(file: string, what: string): void {
  const st = lstat(file);
  if (!st) throw new AppError('access_denied', `${what} ${file} does not exist`);
  if (st.isSymbolicLink())
    throw new AppError(
      'access_denied',
      `refusing to use ${what} ${file}: it is a symbolic link; keep the real file in the data dir`,
    );
  if (!st.isFile()) throw new AppError('access_denied', `refusing to use ${what} ${file}: it is not a regular file`);
  const uid = myUid();
  if (uid !== undefined && st.uid !== uid)
    throw new AppError(
      'access_denied',
      `refusing to use ${what} ${file}: it is owned by uid ${st.uid}, not by uid ${uid} that runs ecs-secrets`,
    );
  if ((st.mode & 0o077) !== 0)
    throw new AppError(
      'access_denied',
      `refusing to use ${what} ${file}: it is readable by group or others (mode ${mode(st)}); run chmod 600 on it`,
    );
}

/**
 * Read a key file of the data dir (the master key, the age identity), creating it on first use
 * with `create()`. Creation writes a temporary 0600 file and links it into place, so two processes
 * starting at once agree on one file and neither reads a half-written one. The file is then held
 * to checkPrivateFile's rules and read with O_NOFOLLOW, so a link swapped in after the check is not
 * followed either.
 */
export function readOrCreatePrivateFile(file: string, what: string, create: () => Buffer | string): Buffer {
  ensurePrivateDir(path.dirname(file));
  if (!fs.existsSync(file)) {
    const content = create();
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    fs.writeFileSync(tmp, content, { mode: 0o600, flag: 'wx' });
    try {
      fs.linkSync(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  checkPrivateFile(file, what);
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Take group and other bits off everything under `dir` that we own (0600 files, 0700 folders).
 * For data dirs written before the umask was set, or by tools that ignore it. Never follows links.
 * `except`: names left alone because they have their own rule (a loose master key is refused, not
 * silently fixed: someone may already have read it).
 */
export function tightenTree(dir: string, except: readonly string[] = []): void {
  const uid = myUid();
  for (const entry of goneIsEmpty(() => fs.readdirSync(dir, { withFileTypes: true })) ?? []) {
    const p = path.join(dir, entry.name);
    if (entry.isSymbolicLink() || except.includes(entry.name)) continue;
    // Another process's LevelDB renames and deletes its files (LOG, logs, tables) at any time: an
    // entry gone since the listing has nothing left to tighten.
    goneIsEmpty(() => {
      const st = fs.lstatSync(p);
      if (uid !== undefined && st.uid !== uid) return;
      if (entry.isDirectory()) {
        if ((st.mode & 0o077) !== 0) fs.chmodSync(p, 0o700);
        tightenTree(p);
      } else if ((st.mode & 0o077) !== 0) {
        fs.chmodSync(p, st.mode & 0o700);
      }
    });
  }
}

/** `f()`, or undefined when what it touches no longer exists (ENOENT). */
function goneIsEmpty<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function safeRealpath(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return 'its target';
  }
}
