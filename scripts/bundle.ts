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
import { EXTERNAL, SEPARATE, vendorFile } from './runtime-deps';

const root = path.join(__dirname, '..', '..');
const outDir = path.join(root, 'dist', 'src');

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: EXTERNAL,
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

async function main(): Promise<void> {
  const separate = new RegExp(`^(${SEPARATE.map((p) => p.replace(/[/.]/g, '\\$&')).join('|')})$`);
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
    plugins: [
      {
        name: 'separate-packages',
        setup(b) {
          b.onResolve({ filter: separate }, (args) => ({ path: vendorFile(args.path), external: true }));
        },
      },
    ],
  });
  await Promise.all(
    SEPARATE.map((pkg) =>
      build({
        ...common,
        entryPoints: [require.resolve(pkg, { paths: [root] })],
        outfile: path.join(outDir, vendorFile(pkg)),
        plugins: [dynaliteComputedRequires],
      }),
    ),
  );
  execFileSync(process.execPath, [path.join(__dirname, 'code-cache.js')], { stdio: ['ignore', 'ignore', 'inherit'] });
}

main().catch((err: Error) => {
  process.stderr.write(`bundle: ${err.message}\n`);
  process.exit(1);
});
