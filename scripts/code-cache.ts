/**
 * `npm run bundle` ends with this: it runs the bundled CLI once, a `create --local` into a fresh
 * folder, and keeps beside each bundled file that command loaded (dist/src/ecs-secrets.js,
 * dist/src/vendor/dynalite.js and classic-level.js) the bytecode V8 compiled for it, as FILE.cache,
 * which the executable reads at every start (src/startup/bundled-module.ts says why and how it is
 * checked).
 * The other vendor files get a cache of their top level only (compiled, not run): that still spares
 * V8 pre-parsing the whole file when a command first loads it (express for the daemon, yaml...).
 *
 * The cache holds compiled code, never data: the warm-up's store and value are thrown away. If the
 * warm-up fails, no cache is written and the CLI only starts slower, so the build says so and goes on.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Script } from 'node:vm';
import { CACHE_SUFFIX, compileBundled, listenForCompiled, requireBundled } from '../src/startup/bundled-module';
import { SEPARATE, vendorFile } from './runtime-deps';

const outDir = path.join(__dirname, '..', 'src');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-code-cache-'));
const compiled = new Map<string, { hash: Buffer; script: Script }>();
listenForCompiled((file, hash, script) => compiled.set(file, { hash, script }));

// The bundles scripts/bundle.ts wrote (a listing of vendor/ would also take a stale file of an older build).
const bundles = [path.join(outDir, 'ecs-secrets.js'), ...SEPARATE.map((pkg) => path.join(outDir, vendorFile(pkg)))];

process.on('exit', (code) => {
  fs.rmSync(dataDir, { recursive: true, force: true });
  for (const file of bundles) fs.rmSync(file + CACHE_SUFFIX, { force: true });
  if (code !== 0) {
    process.stderr.write(`code-cache: the warm-up command exited ${code}; the CLI will start without a code cache\n`);
    process.exitCode = 0;
    return;
  }
  for (const file of bundles) if (!compiled.has(file)) compiled.set(file, compileBundled(file, false));
  for (const [file, { hash, script }] of compiled) {
    fs.writeFileSync(file + CACHE_SUFFIX, Buffer.concat([hash, script.createCachedData()]));
    fs.chmodSync(file + CACHE_SUFFIX, 0o644); // readable like the file it belongs to (the CLI's umask is 077)
  }
});

process.argv = [
  process.argv[0],
  path.join(outDir, 'cli.js'),
  '--local',
  '--data-dir',
  dataDir,
  '--application-name',
  'code-cache',
  'create',
  'build.warm-up',
  '--payload',
  'warm-up',
];
requireBundled(bundles[0]);
