/**
 * nodecredstash, the independent Node implementation of credstash, as a writer of real credstash
 * items for the import tests. Its published package is ES-module syntax in `.js` files with
 * extensionless imports, which neither Node's loader nor this CommonJS test build can load as it
 * is: esbuild (already the project's bundler) turns it into one CommonJS module, loaded here with
 * the real SDK packages from node_modules.
 *
 * Its putSecret makes its own `new KMSClient({})`, which reads the settings of the real process
 * (not jest's copy of process.env): the module is given a KMSClient that starts from `kms`, the
 * stand-in's settings, so every KMS call it makes reaches the stand-in.
 */
import Module from 'node:module';
import * as path from 'node:path';
import type { KMSClientConfig } from '@aws-sdk/client-kms';
import { buildSync } from 'esbuild';

type CredStashClass = typeof import('nodecredstash').CredStash;
type CompilableModule = Module & { _compile(code: string, filename: string): void };

export function loadCredStash(kms: KMSClientConfig): CredStashClass {
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
  const m = new Module(entry) as CompilableModule;
  m.filename = entry;
  m.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(path.dirname(entry));
  const load = (id: string): unknown => Module.prototype.require.call(m, id);
  const real = load('@aws-sdk/client-kms') as typeof import('@aws-sdk/client-kms');
  class StandInKMSClient extends real.KMSClient {
    constructor(config: KMSClientConfig = {}) {
      super({ ...kms, ...config });
    }
  }
  const kmsModule = { ...real, KMSClient: StandInKMSClient };
  m.require = ((id: string) => (id === '@aws-sdk/client-kms' ? kmsModule : load(id))) as NodeJS.Require;
  m._compile(out.outputFiles[0].text, entry);
  return (m.exports as { CredStash: CredStashClass }).CredStash;
}
