/**
 * The shipped CLI is one esbuild bundle (fast start-up, a small image): dist/src/cli.js loads nothing from disk but
 * node's built-in modules and the packages left out on purpose (scripts/runtime-deps.ts EXTERNAL),
 * and the image keeps exactly those packages and their dependencies.
 */
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { EXTERNAL, closure } from '../scripts/runtime-deps';

const ROOT = path.join(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');

test('package.json bundles the CLI in place, leaving out exactly the EXTERNAL packages', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  expect(pkg.bin['ecs-secrets']).toBe('dist/src/cli.js');
  expect(pkg.scripts.build).toBe('tsc -p tsconfig.json && node dist/scripts/stamp-build.js && npm run bundle');
  const bundle: string = pkg.scripts.bundle;
  expect(bundle).toMatch(/^esbuild dist\/src\/cli\.js --bundle --platform=node /);
  expect(bundle).toContain('--outfile=dist/src/cli.js');
  expect([...bundle.matchAll(/--external:(\S+)/g)].map((m) => m[1]).sort()).toEqual([...EXTERNAL].sort());
});

test('the built CLI requires only node built-ins and the EXTERNAL packages', () => {
  const text = fs.readFileSync(CLI, 'utf8'); // built by `npm test` before jest runs
  const ids = new Set([...text.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]));
  const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
  const other = [...ids].filter((id) => !builtins.has(id) && !builtins.has(id.replace(/^node:/, '')));
  // The SDK tries these optional signers inside try/catch (SigV4a, CRT); they are not installed,
  // bundled or not, so the bundle behaves as the unbundled CLI did.
  const optionalAbsent = ['@aws-sdk/signature-v4-crt', '@aws-sdk/signature-v4a'];
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  for (const id of optionalAbsent) expect(lock.packages[`node_modules/${id}`]).toBeUndefined();
  expect(other.filter((id) => !optionalAbsent.includes(id)).sort()).toEqual([...EXTERNAL].sort());
  // Loaded lazily, by their commands only (so other commands start without them): still inside the bundle.
  expect(text).toContain('CloudFormationClient');
  expect(text).toContain('express');
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
