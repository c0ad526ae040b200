/**
 * Jest's transform for the TypeScript tests: esbuild (the build's own bundler) strips the types of
 * one file at a time, several times faster than the TypeScript compiler does. No type checking here:
 * `npm test` runs `tsc` over src/ and test/ first.
 */
const { createHash } = require('node:crypto');
const { readFileSync } = require('node:fs');
const esbuild = require('esbuild');

// import() becomes a require: jest runs tests as CommonJS, without the vm modules flag import() needs.
const OPTIONS = {
  loader: 'ts',
  format: 'cjs',
  target: 'node20',
  sourcemap: 'external',
  supported: { 'dynamic-import': false },
};
const SELF = createHash('sha256').update(readFileSync(__filename)).update(esbuild.version).digest('hex');

module.exports = {
  getCacheKey(source, filename, { configString }) {
    return createHash('sha256').update(SELF).update(configString).update(filename).update(source).digest('hex');
  },
  process(source, filename) {
    const { code, map } = esbuild.transformSync(source, { ...OPTIONS, sourcefile: filename });
    return { code, map };
  },
};
