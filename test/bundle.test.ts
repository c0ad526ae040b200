/**
 * The shipped CLI is an esbuild bundle (fast start-up, a small image): dist/src/cli.js loads nothing from disk but
 * node's built-in modules, the packages left out on purpose (scripts/runtime-deps.ts EXTERNAL) and the
 * packages bundled apart (SEPARATE, each in dist/src/vendor/, loaded at first use), and the image keeps
 * exactly the EXTERNAL packages and their dependencies.
 */
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import { EXTERNAL, SEPARATE, closure, vendorFile } from '../scripts/runtime-deps';

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');

const requiredIds = (file: string): string[] => {
  const text = fs.readFileSync(file, 'utf8'); // built by `npm test` before jest runs
  const ids = new Set([...text.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]));
  const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
  // The SDK tries these optional signers inside try/catch (SigV4a, CRT); they are not installed,
  // bundled or not, so the bundle behaves as the unbundled CLI did.
  const optionalAbsent = ['@aws-sdk/signature-v4-crt', '@aws-sdk/signature-v4a'];
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  for (const id of optionalAbsent) expect(lock.packages[`node_modules/${id}`]).toBeUndefined();
  return [...ids].filter((id) => !builtins.has(id) && !optionalAbsent.includes(id)).sort();
};

test('package.json bundles the CLI in place with scripts/bundle.ts', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  expect(pkg.bin['ecs-secrets']).toBe('dist/src/cli.js');
  expect(pkg.scripts.build).toBe('tsc -p tsconfig.json && node dist/scripts/stamp-build.js && npm run bundle');
  expect(pkg.scripts.bundle).toBe('node dist/scripts/bundle.js');
  expect(pkg.files).toEqual(['dist/src/cli.js', 'dist/src/cli.js.map', 'dist/src/vendor/']);
});

test('the built CLI requires only node built-ins, the EXTERNAL packages and its SEPARATE files, each of which exists', () => {
  const vendor = SEPARATE.map(vendorFile).sort();
  expect(requiredIds(CLI)).toEqual([...EXTERNAL, ...vendor].sort());
  for (const file of vendor) {
    const full = path.join(path.dirname(CLI), file);
    expect([file, fs.existsSync(full)]).toEqual([file, true]);
    expect([file, requiredIds(full).filter((id) => !EXTERNAL.includes(id))]).toEqual([file, []]);
  }
  // What a SEPARATE package alone brings stays out of the main file (express alone brings iconv-lite).
  expect(fs.readFileSync(CLI, 'utf8')).not.toContain('node_modules/iconv-lite');
  expect(fs.readFileSync(CLI, 'utf8')).toContain('DynamoDBClient');
});

test('a one-shot command loads none of the SEPARATE files; a configuration command loads yaml and age', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-bundle-'));
  const log = path.join(dir, 'loaded.txt');
  // Preloaded: records every file node loads by a relative require, so the test sees what the bundle pulled in.
  const hook = path.join(dir, 'hook.js');
  fs.writeFileSync(
    hook,
    `const M = require('module'); const fs = require('fs'); const load = M._load;
     M._load = function (request, ...rest) {
       if (request.startsWith('./vendor/')) fs.appendFileSync(${JSON.stringify(log)}, request + '\\n');
       return load.call(this, request, ...rest);
     };`,
  );
  const loadedBy = (args: string[], input?: string): string[] => {
    fs.rmSync(log, { force: true });
    execFileSync(process.execPath, ['-r', hook, CLI, '--local', '--data-dir', path.join(dir, 'data'), ...args], {
      cwd: dir,
      input,
      env: { ...process.env, ECS_SECRETS_LOG_FORMAT: 'json' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).sort() : [];
  };
  try {
    expect(loadedBy(['--version'])).toEqual([]);
    expect(loadedBy(['--application-name', 'b', 'create', 'db.password', '--payload', 'x'])).toEqual([]);
    expect(loadedBy(['--application-name', 'b', 'fetch', 'db.password'])).toEqual([]);
    fs.writeFileSync(path.join(dir, 'app.yaml'), 'db:\n  password_ecs_secret: hunter2\n');
    expect(loadedBy(['--application-name', 'b', 'config', 'push', '--path', 'app', '--file', 'app.yaml'])).toEqual(
      [vendorFile('age-encryption'), vendorFile('yaml')].sort(),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the runtime closure follows node resolution: nested copies first, then up the tree', () => {
  const packages = {
    '': {},
    'node_modules/dynalite': { dependencies: { a: '1', b: '1' } },
    'node_modules/dynalite/node_modules/a': { dependencies: { c: '1' } },
    'node_modules/a': { dependencies: {} }, // another version, not dynalite's
    'node_modules/b': { optionalDependencies: { missing: '1' } },
    'node_modules/c': {},
    'node_modules/classic-level': { dependencies: { c: '1' } },
    'node_modules/express': { dependencies: { c: '1' } },
  };
  expect([...closure(packages, EXTERNAL)].sort()).toEqual([
    'node_modules/b',
    'node_modules/c',
    'node_modules/classic-level',
    'node_modules/dynalite',
    'node_modules/dynalite/node_modules/a',
  ]);
  expect(() => closure(packages, ['nope'])).toThrow('nope is not in package-lock.json');
});

test('the real lockfile: the image keeps dynalite and classic-level with their dependencies, and no SDK, express or yargs', () => {
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  const keep = closure(lock.packages, EXTERNAL);
  expect(keep).toContain('node_modules/dynalite');
  expect(keep).toContain('node_modules/classic-level');
  for (const p of keep) expect(lock.packages[p].dev ?? false).toBe(false);
  expect([...keep].filter((p) => /node_modules\/(@aws-sdk|@smithy|express|yargs|pino|prom-client)/.test(p))).toEqual(
    [],
  );
});
