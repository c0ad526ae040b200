/**
 * The package installs as a user installs it: `npm pack`, then `npm i -g` of the tarball gives a
 * working `ecs-secrets` on PATH with production dependencies only. The tarball is packed from the
 * dist/ that `npm test` has just built (--ignore-scripts skips the prepack build, which would only
 * repeat it). npm prefers its cache (filled by `npm ci`) and asks the registry only for what the
 * cache lacks, so the first run on a fresh machine takes longer than the rest.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { SEPARATE, vendorFile } from '../scripts/runtime-deps';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..');
/** npm's own network timeouts bound the install; this only catches a hang, far above a cold install (about 15 s here). */
const INSTALL_TIMEOUT_MS = 300_000;

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-pack-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test(
  'npm pack, then npm i -g of the tarball, puts a working ecs-secrets on PATH with no dev dependency',
  async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.private).toBeUndefined();
    expect(pkg.scripts.prepack).toBe('npm run build');
    const packed = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT });
    const [info] = JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    // The executable, the bundle, the packages bundled apart, their source maps and the code caches
    // the build made for each bundle are the whole program; the rest of dist/ (tests, per-module
    // files) stays out.
    const vendor = SEPARATE.map((p) => path.posix.join('dist/src', vendorFile(p)));
    expect(info.files.map((f) => f.path).sort()).toEqual(
      [
        'README.md',
        'dist/src/cli.js',
        'dist/src/ecs-secrets.js',
        'dist/src/ecs-secrets.js.map',
        'dist/src/ecs-secrets.js.cache',
        'package.json',
        ...vendor,
        ...vendor.map((f) => `${f}.map`),
        ...vendor.map((f) => `${f}.cache`),
      ].sort(),
    );
    const prefix = path.join(dir, 'global');
    await run(
      'npm',
      [
        'install',
        '--global',
        '--prefix',
        prefix,
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        path.join(dir, info.filename),
      ],
      { cwd: dir, timeout: INSTALL_TIMEOUT_MS },
    );
    const bin = path.join(prefix, 'bin', 'ecs-secrets');
    const version = await run(bin, ['--version'], { cwd: dir });
    expect(version.stdout.trim()).toBe(pkg.version);
    const installed = path.join(prefix, 'lib', 'node_modules', 'ecs-secrets', 'node_modules');
    // Packages only development needs (jest, typescript, ...; some dev dependencies are also production ones' dependencies).
    const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
    const devOnly = Object.keys(pkg.devDependencies).filter((d) => lock.packages[`node_modules/${d}`]?.dev === true);
    expect(devOnly).toContain('jest');
    expect(devOnly.filter((d) => fs.existsSync(path.join(installed, d)))).toEqual([]);
    // The embedded store's native package, kept for its addon, came along: --local works from the install.
    const data = path.join(dir, 'data');
    const local = ['--local', '--data-dir', data, '--application-name', 'demo'];
    await run(bin, ['create', ...local, '--name', 'db.password', '--payload', 'pw'], { cwd: dir });
    const fetched = await run(bin, ['fetch', ...local, '--name', 'db.password'], { cwd: dir });
    expect(JSON.parse(fetched.stdout)).toMatchObject({ name: 'db.password', serial: 1, payload: 'pw' });
  },
  INSTALL_TIMEOUT_MS + 60_000,
);
