/**
 * The daemon's memory must not grow with `import`: the SSM and Secrets Manager clients and the
 * progress bar are loaded by the import path only. The check runs the built (unbundled) modules in
 * a fresh node: loading the whole command line and the daemon leaves them out of require.cache,
 * while opening an import source brings them in (so the check can see them when they are there).
 * The bundle keeps this: esbuild runs a CommonJS module's body only when it is first required.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

const DIST = path.join(__dirname, '..', '..', 'dist', 'src');
const IMPORT_ONLY = /node_modules\/(@aws-sdk\/client-ssm|@aws-sdk\/client-secrets-manager|cli-progress)\//;

/** The import-only packages in require.cache after requiring `modules` in a fresh node. */
function loadedAfter(modules: string[]): string[] {
  const script = `
    for (const m of ${JSON.stringify(modules.map((m) => path.join(DIST, m)))}) require(m);
    const re = new RegExp(${JSON.stringify(IMPORT_ONLY.source)});
    const hits = Object.keys(require.cache).map((k) => re.exec(k)).filter(Boolean).map((m) => m[1]);
    process.stdout.write(JSON.stringify([...new Set(hits)].sort()));`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
}

test('the command line and the daemon load neither the SSM nor the Secrets Manager client nor cli-progress', () => {
  expect(loadedAfter(['cli/main.js', 'cli/commands/import.js', 'daemon/daemon.js'])).toEqual([]);
});

test('the import sources do load them (the check sees them when they are loaded)', () => {
  expect(loadedAfter(['import/ssm.js', 'import/secrets-manager.js'])).toEqual([
    '@aws-sdk/client-secrets-manager',
    '@aws-sdk/client-ssm',
  ]);
});
