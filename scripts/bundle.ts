/**
 * `npm run build` ends with this: it bundles the CLI (dist/src/ecs-secrets.js, in place) and the
 * executable that loads it (dist/src/cli.js) with esbuild, each package of SEPARATE into a file of
 * its own under dist/src/vendor/ that the CLI requires at that package's first use, and then makes
 * their code caches (scripts/code-cache.ts).
 *
 * Why more than one file: node reads and V8 pre-parses a script whole before running any of it,
 * and that costs every start-up about 50 ms of CPU per MiB of bundle on a 2-core machine, whether
 * or not the code ever runs. The packages below are used by one command or one route only
 * (already loaded lazily, with a literal `require`), yet made a third of the single bundle that
 * every `fetch` and every `exec` paid to parse.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Plugin, build } from 'esbuild';
import { LEVEL_ENTRY, SEPARATE, vendorFile } from './runtime-deps';

const root = path.join(__dirname, '..', '..');
const outDir = path.join(root, 'dist', 'src');

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minifySyntax: true,
  minifyWhitespace: true,
  sourcemap: true,
  legalComments: 'eof',
  logLevel: 'warning',
} as const;

/**
 * dynalite requires its actions and validations by computed names (`require('./actions/' + action)`).
 * esbuild bundles every file such a pattern can match, keyed by file name with its extension, so the
 * names get theirs. The build fails if dynalite's source no longer has exactly these two requires.
 */
const dynaliteComputedRequires: Plugin = {
  name: 'dynalite-computed-requires',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]dynalite[\\/]index\.js$/ }, (args) => {
      const pattern = /require\('\.\/(actions|validations)\/' \+ action\)/g;
      const source = fs.readFileSync(args.path, 'utf8');
      const found = source.match(pattern)?.length ?? 0;
      if (found !== 2) throw new Error(`dynalite/index.js: expected 2 computed requires, found ${found}`);
      return { contents: source.replace(pattern, "require('./$1/' + action + '.js')"), loader: 'js' };
    });
  },
};

/**
 * classic-level's binding.js has node-gyp-build look for the native addon in the package's folder
 * (`__dirname`), which in the bundle would be dist/src/vendor/. The addon stays in the package
 * (NATIVE in scripts/runtime-deps.ts), so the bundle asks node where that folder is, at run time:
 * the checkout's, the image's or the installed package's node_modules/classic-level. The build
 * fails if binding.js is no longer this one line.
 */
const classicLevelAddon: Plugin = {
  name: 'classic-level-addon',
  setup(b) {
    b.onResolve({ filter: /^classic-level\/package\.json$/ }, (args) => ({ path: args.path, external: true }));
    b.onLoad({ filter: /[\\/]node_modules[\\/]classic-level[\\/]binding\.js$/ }, (args) => {
      const expected = "module.exports = require('node-gyp-build')(__dirname)";
      const source = fs.readFileSync(args.path, 'utf8').trim();
      if (source !== expected) throw new Error(`classic-level/binding.js: expected \`${expected}\``);
      const folder = "require('node:path').dirname(require.resolve('classic-level/package.json'))";
      return { contents: `module.exports = require('node-gyp-build')(${folder})`, loader: 'js' };
    });
  },
};

/**
 * Every SEPARATE package a bundle requires, and the module bundled as classic-level's file
 * (LEVEL_ENTRY), left to a require of its file, relative to the bundle being written (`from`: the
 * main file's folder or vendor/). `except`: the package this bundle is made of.
 */
function separatePackages(from: string, except?: string): Plugin {
  const separate = new RegExp(`^(${SEPARATE.map((p) => p.replace(/[/.]/g, '\\$&')).join('|')})$`);
  const levelEntry = path.join(outDir, LEVEL_ENTRY).replace(/\.js$/, '');
  const relative = (pkg: string) => `./${path.relative(from, path.join(outDir, vendorFile(pkg)))}`;
  return {
    name: 'separate-packages',
    setup(b) {
      b.onResolve({ filter: separate }, (args) =>
        args.path === except ? undefined : { path: relative(args.path), external: true },
      );
      b.onResolve({ filter: new RegExp(`/${path.basename(levelEntry)}(\\.js)?$`) }, (args) =>
        except !== 'classic-level' && path.resolve(args.resolveDir, args.path).replace(/\.js$/, '') === levelEntry
          ? { path: relative('classic-level'), external: true }
          : undefined,
      );
    },
  };
}

async function main(): Promise<void> {
  // LEVEL_ENTRY's abstract-level must be the one classic-level's iterators come from (one copy in its bundle).
  const fromClassic = path.dirname(require.resolve('classic-level/package.json', { paths: [root] }));
  const fromEntry = path.dirname(path.join(outDir, LEVEL_ENTRY));
  if (
    require.resolve('abstract-level', { paths: [fromClassic] }) !==
    require.resolve('abstract-level', { paths: [fromEntry] })
  )
    throw new Error(`${LEVEL_ENTRY} and classic-level resolve different copies of abstract-level`);
  await build({
    ...common,
    entryPoints: [path.join(outDir, 'cli.js')],
    outfile: path.join(outDir, 'cli.js'),
    allowOverwrite: true,
    sourcemap: false,
  });
  await build({
    ...common,
    entryPoints: [path.join(outDir, 'ecs-secrets.js')],
    outfile: path.join(outDir, 'ecs-secrets.js'),
    allowOverwrite: true,
    plugins: [separatePackages(outDir)],
  });
  await Promise.all(
    SEPARATE.map((pkg) =>
      build({
        ...common,
        entryPoints: [
          pkg === 'classic-level' ? path.join(outDir, LEVEL_ENTRY) : require.resolve(pkg, { paths: [root] }),
        ],
        outfile: path.join(outDir, vendorFile(pkg)),
        plugins: [separatePackages(path.join(outDir, 'vendor'), pkg), dynaliteComputedRequires, classicLevelAddon],
      }),
    ),
  );
  execFileSync(process.execPath, [path.join(__dirname, 'code-cache.js')], { stdio: ['ignore', 'ignore', 'inherit'] });
}

main().catch((err: Error) => {
  process.stderr.write(`bundle: ${err.message}\n`);
  process.exit(1);
});
