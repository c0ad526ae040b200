/**
 * nodecredstash, the independent Node implementation of credstash, as a writer of real credstash
 * items for the import tests. Its published package is ES-module syntax in `.js` files with
 * extensionless imports, which neither Node's loader nor this CommonJS test build can load as it
 * is: esbuild (already the project's bundler) turns it into one CommonJS module, loaded here with
 * the real SDK packages from node_modules.
 */
import Module from 'node:module';
import * as path from 'node:path';
import { buildSync } from 'esbuild';

type CredStashClass = typeof import('nodecredstash').CredStash;

export function loadCredStash(): CredStashClass {
  const entry = require.resolve('nodecredstash');
  const out = buildSync({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    write: false,
    external: ['@aws-sdk/*', 'debug'],
    logLevel: 'silent',
  });
  const m = new Module(entry) as Module & { _compile(code: string, filename: string): void };
  m.filename = entry;
  m.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(path.dirname(entry));
  m._compile(out.outputFiles[0].text, entry);
  return (m.exports as { CredStash: CredStashClass }).CredStash;
}
