/**
 * tightenTree runs while other processes' LevelDB renames and deletes its own files: an entry
 * listed and then gone is skipped, never an error (a store opened beside 50 writers failed on a
 * LOG that LevelDB had just rotated).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tightenTree } from '../../src/core/private-files';

test('tightenTree tightens what is there and skips an entry that vanished after the listing', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-tighten-'));
  try {
    fs.writeFileSync(path.join(dir, 'kept'), 'x', { mode: 0o644 });
    fs.mkdirSync(path.join(dir, 'sub'), { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'sub', 'LOG'), 'x', { mode: 0o666 });
    // The module object itself (the namespace import is read-only): what src/ reads through its import.
    const nodeFs = require('node:fs') as typeof fs;
    const readdir = nodeFs.readdirSync;
    // The listing names a file that is deleted before it is looked at, as LevelDB does with LOG.
    nodeFs.readdirSync = ((p: fs.PathLike, opts: never) => {
      const real = readdir(p, opts) as unknown as fs.Dirent[];
      const gone = { name: 'LOG.old', isSymbolicLink: () => false, isDirectory: () => false } as fs.Dirent;
      return [gone, ...real];
    }) as typeof fs.readdirSync;
    try {
      expect(() => tightenTree(dir)).not.toThrow();
    } finally {
      nodeFs.readdirSync = readdir;
    }
    expect(fs.statSync(path.join(dir, 'kept')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(dir, 'sub')).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(dir, 'sub', 'LOG')).mode & 0o777).toBe(0o600);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
