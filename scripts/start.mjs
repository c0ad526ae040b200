/**
 * `npm start [-- FLAGS]`: the daemon on the embedded store for application "demo", built first only
 * when dist/ is older than a source file (a rebuild takes most of a minute on a small machine).
 * FLAGS are the daemon's (`npm start -- --port 9000`); none is fixed here but --local and the
 * application, so none can be given twice. Plain JavaScript: it runs before anything is compiled.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'dist', 'src', 'cli.js');

/** The newest modification time among the files a build reads. */
function newestInput() {
  let newest = 0;
  const visit = (p) => {
    const st = fs.statSync(p);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) visit(path.join(p, e));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of ['src', 'scripts', 'cloudformation', 'package.json', 'package-lock.json', 'tsconfig.json'])
    visit(path.join(root, p));
  return newest;
}

const built = fs.existsSync(cli) ? fs.statSync(cli).mtimeMs : 0;
if (built < newestInput()) {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
process.argv = [process.argv[0], cli, 'daemon', '--local', '--application-name', 'demo', ...process.argv.slice(2)];
await import(cli);
