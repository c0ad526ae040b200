/**
 * The shipped CLI is an esbuild bundle (fast start-up, a small image): dist/src/cli.js, the executable,
 * loads dist/src/ecs-secrets.js, the bundle, through V8's code cache; the bundle loads nothing from
 * disk but node's built-in modules and the packages bundled apart (SEPARATE, each in dist/src/vendor/,
 * loaded at first use), which load only each other's files and, from node_modules, classic-level's
 * native addon; and the image keeps exactly the NATIVE packages (scripts/runtime-deps.ts) and
 * their dependencies.
 */
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import * as os from 'node:os';
import { NATIVE, SEPARATE, closure, vendorFile } from '../scripts/runtime-deps';

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');
const BUNDLE = path.join(ROOT, 'dist', 'src', 'ecs-secrets.js');
const LOADER = path.join(ROOT, 'dist', 'src', 'startup', 'bundled-module.js'); // tsc's copy of what cli.js bundles

/** A child's environment without settings that change how node compiles (V8 rejects a cache made under other flags). */
const spawnEnv = (): NodeJS.ProcessEnv => {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_COMPILE_CACHE;
  return env;
};

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

test('package.json bundles the CLI with scripts/bundle.ts and ships the executable, the bundles and their caches', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  expect(pkg.bin['ecs-secrets']).toBe('dist/src/cli.js');
  expect(pkg.scripts.build).toBe('tsc -p tsconfig.json && node dist/scripts/stamp-build.js && npm run bundle');
  expect(pkg.scripts.bundle).toBe('node dist/scripts/bundle.js');
  expect(pkg.files).toEqual([
    'dist/src/cli.js',
    'dist/src/ecs-secrets.js',
    'dist/src/ecs-secrets.js.map',
    'dist/src/ecs-secrets.js.cache',
    'dist/src/vendor/',
  ]);
});

test('the executable is small and requires only built-ins; the bundle requires only its SEPARATE files, and those no package', () => {
  expect(requiredIds(CLI)).toEqual([]);
  expect(fs.statSync(CLI).size).toBeLessThan(20_000);
  const vendor = SEPARATE.map(vendorFile).sort();
  expect(requiredIds(BUNDLE)).toEqual(vendor); // the embedded store's lock is a classic-level
  for (const file of vendor) {
    const full = path.join(path.dirname(BUNDLE), file);
    expect([file, fs.existsSync(full)]).toEqual([file, true]);
    expect([file, requiredIds(full).filter((id) => id !== './classic-level.js')]).toEqual([file, []]);
  }
  // dynalite opens LevelDB through the same file as the store's lock: one copy of abstract-level, whose iterators are fixed.
  expect(requiredIds(path.join(path.dirname(BUNDLE), vendorFile('dynalite')))).toEqual(['./classic-level.js']);
  // Of classic-level only its addon is read from node_modules, found from the package's folder at run time.
  const level = fs.readFileSync(path.join(path.dirname(BUNDLE), vendorFile('classic-level')), 'utf8');
  expect(level).toContain('require.resolve("classic-level/package.json")');
  expect(level).not.toContain('__dirname');
  // What a SEPARATE package alone brings stays out of the main file (express alone brings iconv-lite).
  expect(fs.readFileSync(BUNDLE, 'utf8')).not.toContain('node_modules/iconv-lite');
  expect(fs.readFileSync(BUNDLE, 'utf8')).toContain('DynamoDBClient');
});

test('of the SEPARATE files, a --local one-shot command loads only the embedded store; a configuration command also loads yaml and age', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-bundle-'));
  const log = path.join(dir, 'loaded.txt');
  // Preloaded: records every vendor file opened or read as source (the executable reads each bundle's
  // text to compile it), so the test sees what the bundle pulled in.
  const hook = path.join(dir, 'hook.js');
  fs.writeFileSync(
    hook,
    `const fs = require('fs');
     for (const name of ['readFileSync', 'openSync']) {
       const original = fs[name];
       fs[name] = function (file, ...rest) {
         const m = typeof file === 'string' && /[\\/]dist[\\/]src[\\/](vendor[\\/][^\\/]+\\.js)$/.exec(file);
         if (m) fs.appendFileSync(${JSON.stringify(log)}, './' + m[1] + '\\n');
         return original.call(this, file, ...rest);
       };
     }`,
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
    const store = [vendorFile('classic-level'), vendorFile('dynalite')].sort();
    expect(loadedBy(['--version'])).toEqual([]);
    expect(loadedBy(['--application-name', 'b', 'create', 'db.password', '--payload', 'x'])).toEqual(store);
    expect(loadedBy(['--application-name', 'b', 'fetch', 'db.password'])).toEqual(store);
    fs.writeFileSync(path.join(dir, 'app.yaml'), 'db:\n  password_ecs_secret: hunter2\n');
    expect(loadedBy(['--application-name', 'b', 'config', 'push', '--path', 'app', '--file', 'app.yaml'])).toEqual(
      [vendorFile('age-encryption'), vendorFile('yaml'), ...store].sort(),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** Runs `script` in node with the loader's listener set, printing each loaded file's name and whether V8 took its cache. */
const cacheUse = (script: string, env: NodeJS.ProcessEnv = process.env): string[] => {
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      `const b = require(${JSON.stringify(LOADER)});
       b.listenForCompiled((file, hash, script) => process.on('exit', () =>
         process.stderr.write(require('path').basename(file) + (script.cachedDataRejected === false ? ' cached' : ' compiled') + '\\n')));
       ${script}`,
    ],
    { env, encoding: 'utf8' },
  );
  expect({ status: r.status }).toEqual({ status: 0 });
  return r.stderr.split('\n').filter(Boolean).sort();
};

test('the build leaves a code cache for every bundle, readable by everyone, that V8 accepts', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-bundle-'));
  try {
    for (const file of [BUNDLE, ...SEPARATE.map((p) => path.join(path.dirname(BUNDLE), vendorFile(p)))])
      expect([file, (fs.statSync(`${file}.cache`).mode & 0o777).toString(8)]).toEqual([file, '644']);
    const args = [
      'x',
      '--local',
      '--data-dir',
      dir,
      '--application-name',
      'b',
      'create',
      'db.password',
      '--payload',
      'x',
    ];
    const run = `process.argv = [process.argv[0], ...${JSON.stringify(args)}]; b.requireBundled(${JSON.stringify(BUNDLE)});`;
    expect(cacheUse(run, spawnEnv())).toEqual([
      'classic-level.js cached',
      'dynalite.js cached',
      'ecs-secrets.js cached',
    ]);
    // A vendor file the warm-up never loaded: its cache holds its top level.
    const express = path.join(path.dirname(BUNDLE), vendorFile('express'));
    expect(cacheUse(`b.requireBundled(${JSON.stringify(express)});`, spawnEnv())).toEqual(['express.js cached']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a code cache made for other source of the same length, a cache that is a link or a FIFO, and no cache: the file is compiled and runs as written', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-bundle-'));
  const file = path.join(dir, 'ecs-secrets.js');
  const launcher = path.join(dir, 'cli.js');
  fs.copyFileSync(CLI, launcher);
  const say = (word: string) => `process.stdout.write(${JSON.stringify(word)});`;
  const run = () => execFileSync(process.execPath, [launcher], { env: spawnEnv() }).toString();
  try {
    // A cache made from "older" by the build's own tool, then the source changes to "newer", same length:
    // V8 alone would accept the cache (it checks lengths) and run the old code.
    fs.writeFileSync(file, say('older'));
    const made = `b.listenForCompiled((f, hash, script) => process.on('exit', () =>
      require('fs').writeFileSync(f + '.cache', Buffer.concat([hash, script.createCachedData()]))));
      b.requireBundled(${JSON.stringify(file)});`;
    cacheUse(made, spawnEnv());
    expect(run()).toBe('older');
    expect(cacheUse(`b.requireBundled(${JSON.stringify(file)});`, spawnEnv())).toEqual(['ecs-secrets.js cached']);
    fs.writeFileSync(file, say('newer'));
    expect(run()).toBe('newer');
    expect(cacheUse(`b.requireBundled(${JSON.stringify(file)});`, spawnEnv())).toEqual(['ecs-secrets.js compiled']);
    // The cache is not followed through a link, nor read from a FIFO (which would block the start).
    const real = path.join(dir, 'elsewhere.cache');
    fs.renameSync(`${file}.cache`, real);
    fs.writeFileSync(file, say('older'));
    fs.symlinkSync(real, `${file}.cache`);
    expect(run()).toBe('older');
    expect(cacheUse(`b.requireBundled(${JSON.stringify(file)});`, spawnEnv())).toEqual(['ecs-secrets.js compiled']);
    fs.rmSync(`${file}.cache`);
    execFileSync('mkfifo', [`${file}.cache`]);
    expect(run()).toBe('older');
    fs.rmSync(`${file}.cache`);
    expect(run()).toBe('older');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('with NODE_COMPILE_CACHE set (the image, node 22 and later) the bundle loads with a plain require', () => {
  const env = { ...spawnEnv(), NODE_COMPILE_CACHE: path.join(os.tmpdir(), 'ecs-secrets-no-such-cache') };
  const run = `process.argv = [process.argv[0], 'x', '--version']; b.requireBundled(${JSON.stringify(BUNDLE)});`;
  // node 20 has no compile cache of its own: there the build's cache is still used.
  expect(cacheUse(run, env)).toEqual('enableCompileCache' in require('node:module') ? [] : ['ecs-secrets.js cached']);
});

test('the runtime closure follows node resolution: nested copies first, then up the tree', () => {
  const packages = {
    '': {},
    'node_modules/classic-level': { dependencies: { a: '1', b: '1' } },
    'node_modules/classic-level/node_modules/a': { dependencies: { c: '1' } },
    'node_modules/a': { dependencies: {} }, // another version, not classic-level's
    'node_modules/b': { optionalDependencies: { missing: '1' } },
    'node_modules/c': {},
    'node_modules/express': { dependencies: { c: '1' } },
  };
  expect([...closure(packages, NATIVE)].sort()).toEqual([
    'node_modules/b',
    'node_modules/c',
    'node_modules/classic-level',
    'node_modules/classic-level/node_modules/a',
  ]);
  expect(() => closure(packages, ['nope'])).toThrow('nope is not in package-lock.json');
});

test('the real lockfile: the image keeps classic-level with its dependencies, and no dynalite, SDK, express or yargs', () => {
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  const keep = closure(lock.packages, NATIVE);
  expect(keep).toContain('node_modules/classic-level');
  for (const p of keep) expect(lock.packages[p].dev ?? false).toBe(false);
  expect(
    [...keep].filter((p) => /node_modules\/(dynalite|@aws-sdk|@smithy|express|yargs|pino|prom-client)/.test(p)),
  ).toEqual([]);
});
