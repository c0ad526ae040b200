/**
 * `npm run build` ends with this: it bundles the CLI (dist/src/cli.js, in place) with esbuild, and
 * each package of SEPARATE into a file of its own under dist/src/vendor/ that the CLI requires at
 * that package's first use.
 *
 * Why more than one file: node reads and V8 pre-parses a script whole before running any of it,
 * and that costs every start-up about 50 ms of CPU per MiB of bundle on a 2-core machine, whether
 * or not the code ever runs. The packages below are used by one command or one route only
 * (already loaded lazily, with a literal `require`), yet made a third of the single bundle that
 * every `fetch` and every `exec` paid to parse.
 */
import * as path from 'node:path';
import { build } from 'esbuild';
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

async function main(): Promise<void> {
  const separate = new RegExp(`^(${SEPARATE.map((p) => p.replace(/[/.]/g, '\\$&')).join('|')})$`);
  await build({
    ...common,
    entryPoints: [path.join(outDir, 'cli.js')],
    outfile: path.join(outDir, 'cli.js'),
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
      }),
    ),
  );
}

main().catch((err: Error) => {
  process.stderr.write(`bundle: ${err.message}\n`);
  process.exit(1);
});
