/**
 * The built CLI, runnable by another local user (tests that act as `nobody`: an ECS task's
 * non-root user, or an attacker on the same host).
 *
 * A checkout can sit where that user cannot reach it (`mktemp -d` makes 0700 folders, and CI
 * clones into one): then `node <checkout>/dist/src/cli.js` fails as that user with
 * MODULE_NOT_FOUND, which would test nothing. So when the checkout's CLI is not reachable, this
 * copies what the CLI loads from disk to a fresh 0755 folder: the executable (dist/src/cli.js), the
 * bundles with their code caches (dist/src/ecs-secrets.js, dist/src/vendor/), package.json (the
 * version), and the packages kept for their native addon (classic-level, for --local) with their
 * dependencies, as the image does (scripts/runtime-deps.ts).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NATIVE, closure } from '../../scripts/runtime-deps';
import { CLI } from './cli';

const ROOT = path.join(__dirname, '..', '..');

function reachableBy(uid: number, file: string): boolean {
  const r = spawnSync(
    'setpriv',
    [
      `--reuid=${uid}`,
      `--regid=${uid}`,
      '--clear-groups',
      process.execPath,
      '-e',
      `require('fs').accessSync(${JSON.stringify(file)}, require('fs').constants.R_OK)`,
    ],
    {
      cwd: '/',
      stdio: 'ignore',
    },
  );
  return r.status === 0;
}

/** A CLI path `uid` can run, and a cleanup for it. */
export function cliFor(uid: number): { cli: string; cleanup(): void } {
  if (reachableBy(uid, CLI)) return { cli: CLI, cleanup: () => undefined };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-cli-'));
  const src = path.dirname(CLI);
  fs.mkdirSync(path.join(dir, 'dist', 'src'), { recursive: true });
  for (const file of ['cli.js', 'ecs-secrets.js', 'ecs-secrets.js.cache'])
    fs.copyFileSync(path.join(src, file), path.join(dir, 'dist', 'src', file));
  fs.cpSync(path.join(src, 'vendor'), path.join(dir, 'dist', 'src', 'vendor'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, object>;
  };
  for (const pkg of closure(lock.packages, NATIVE))
    if (fs.existsSync(path.join(ROOT, pkg)))
      fs.cpSync(path.join(ROOT, pkg), path.join(dir, pkg), { recursive: true, dereference: true });
  // Readable and traversable by everyone, writable by its owner only, whatever the umask.
  const open = (p: string) => {
    const st = fs.statSync(p);
    fs.chmodSync(p, st.isDirectory() ? 0o755 : st.mode & 0o111 ? 0o755 : 0o644);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) open(path.join(p, e));
  };
  open(dir);
  const cli = path.join(dir, 'dist', 'src', 'cli.js');
  if (!reachableBy(uid, cli)) throw new Error(`cannot give uid ${uid} a CLI it can run (${cli})`);
  return { cli, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
