/**
 * The image's node_modules: only what the bundled CLI (dist/src/ecs-secrets.js, `npm run bundle`) still
 * loads from disk, that is the packages with a native addon (NATIVE) and what they depend on (kept
 * whole, though their JavaScript is bundled too). Everything else is inside the bundles, so the
 * Dockerfile's runtime stage runs this right after `npm ci --omit=dev`, in the same layer, and the
 * image carries no second copy.
 *
 *   node dist/scripts/runtime-deps.js           lists what is kept, with sizes
 *   node dist/scripts/runtime-deps.js --prune   deletes the rest from ./node_modules
 *
 * Reads package-lock.json (lockfile v2/v3 "packages"), resolving each dependency the way node does:
 * the nearest node_modules folder up the tree.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Kept on disk: classic-level, for its native addon (a prebuilt .node file), which node-gyp-build
 * finds in the package's own folder. Its JavaScript is bundled all the same (SEPARATE).
 */
export const NATIVE = ['classic-level'];

/**
 * Bundled apart, each with what it depends on (a few shared helpers are then in two files; none of
 * these hands objects to the main bundle whose class identity matters: errors are classified by
 * their fields, and SDK clients take the request handler by its shape).
 * - express: the daemon's routes outside the hot path (it alone brings iconv-lite and mime-db);
 * - prom-client: the first `/metrics` scrape;
 * - pino-pretty: logs for a terminal; cli-progress: import's progress bar;
 * - yaml and age-encryption: configuration documents and file imports;
 * - the SSM, Secrets Manager and CloudFormation clients: `import` and `setup` only;
 * - dynalite: the embedded store (`--local`);
 * - classic-level: LevelDB for the embedded store, shared by dynalite's file and the main one
 *   (src/backends/leveldb.ts is its entry, `LEVEL_ENTRY`; scripts/bundle.ts says how its addon is found).
 */
export const SEPARATE = [
  'express',
  'prom-client',
  'pino-pretty',
  'cli-progress',
  'yaml',
  'age-encryption',
  '@aws-sdk/client-ssm',
  '@aws-sdk/client-secrets-manager',
  '@aws-sdk/client-cloudformation',
  'dynalite',
  'classic-level',
];

/** The module bundled as classic-level's file, relative to dist/src/: classic-level and the abstract-level it uses. */
export const LEVEL_ENTRY = './backends/leveldb.js';

/** The file a SEPARATE package is bundled into, relative to dist/src/ecs-secrets.js. */
export const vendorFile = (pkg: string): string => `./vendor/${pkg.replace(/^@/, '').replace(/\//g, '+')}.js`;

interface LockPackage {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  dev?: boolean;
}

/** Lockfile paths ("node_modules/a/node_modules/b") of `roots` and everything they depend on. */
export function closure(packages: Record<string, LockPackage>, roots: string[]): Set<string> {
  const keep = new Set<string>();
  const resolve = (from: string, name: string): string | undefined => {
    for (let dir = from; ; ) {
      const candidate = `${dir ? `${dir}/` : ''}node_modules/${name}`;
      if (packages[candidate]) return candidate;
      if (!dir) return undefined;
      const i = dir.lastIndexOf('/node_modules/');
      dir = i < 0 ? '' : dir.slice(0, i);
    }
  };
  const queue = roots.map((r) => {
    const p = resolve('', r);
    if (!p) throw new Error(`${r} is not in package-lock.json`);
    return p;
  });
  while (queue.length) {
    const p = queue.pop()!;
    if (keep.has(p)) continue;
    keep.add(p);
    const pkg = packages[p];
    for (const dep of [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})]) {
      const d = resolve(p, dep);
      if (d) queue.push(d); // an optional dependency for another platform is not installed, nor in the lockfile's tree here
    }
  }
  return keep;
}

function dirSize(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += dirSize(p);
    else if (e.isFile()) total += fs.statSync(p).size;
  }
  return total;
}

function main(): void {
  const root = process.cwd();
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockPackage>;
  };
  const keep = closure(lock.packages, NATIVE);
  const prune = process.argv.includes('--prune');
  const removed: string[] = [];
  // Longest paths last: a nested package goes with its parent when the parent goes.
  for (const p of Object.keys(lock.packages)
    .filter((k) => k.startsWith('node_modules/'))
    .sort()) {
    if (keep.has(p) || removed.some((r) => p.startsWith(`${r}/`))) continue;
    if (!fs.existsSync(path.join(root, p))) continue;
    removed.push(p);
    if (prune) fs.rmSync(path.join(root, p), { recursive: true, force: true });
  }
  if (prune) {
    fs.rmSync(path.join(root, 'node_modules', '.bin'), { recursive: true, force: true });
    // Scope folders (@aws-sdk/...) whose packages all went.
    for (const e of fs.readdirSync(path.join(root, 'node_modules'))) {
      const dir = path.join(root, 'node_modules', e);
      if (e.startsWith('@') && fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
    }
  }
  const kept = [...keep].filter((p) => fs.existsSync(path.join(root, p)));
  const size = kept.reduce((s, p) => s + dirSize(path.join(root, p)), 0);
  process.stdout.write(
    `${prune ? 'kept' : 'would keep'} ${kept.length} packages (${(size / 1024 / 1024).toFixed(1)} MiB) for ${NATIVE.join(', ')}; ${prune ? 'removed' : 'would remove'} ${removed.length}\n`,
  );
}

if (require.main === module) main();
