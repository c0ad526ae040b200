/**
 * Loads the CLI's bundled files (dist/src/ecs-secrets.js and dist/src/vendor/*.js) the way node
 * loads a CommonJS module, but through V8's code cache: `npm run build` runs the CLI once and keeps,
 * beside each file it loaded, the bytecode V8 compiled for it (FILE.cache, scripts/code-cache.ts).
 *
 * Why: every command is a fresh process, and before running any of the 2 MB of JavaScript that a
 * `--local` fetch loads, V8 parses all of it and then compiles what runs. With the cache it
 * deserialises instead: about a sixth of the CPU a one-shot command costs (docs/performance.md).
 *
 * The cache is only ever read here. V8 checks its own version and flags and the source's length,
 * not its content, so each cache starts with the SHA-256 of the source it was made from, and a
 * cache that does not match (or is missing, or is not a regular file) is ignored: the file is then
 * compiled as usual. V8 also rejects a cache made under other heap flags: the image sets those per
 * container (scripts/entrypoint.sh), so there node's own compile cache (NODE_COMPILE_CACHE, node 22
 * and later, filled at run time) does this job, and these files load with a plain `require`.
 */
import { isAscii } from 'node:buffer';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import Module, { createRequire } from 'node:module';
import * as path from 'node:path';
import * as vm from 'node:vm';

export const CACHE_SUFFIX = '.cache';
const HASH_BYTES = 32;

/** The CommonJS wrapper on a line of its own, so that line 2 of the script is line 1 of the file (source maps stay exact). */
const WRAPPER_HEAD = '(function (exports, require, module, __filename, __dirname) {\n';
const WRAPPER_TAIL = '\n})';

/** Called once per file loaded, before it runs, with what a cache for it is made of (scripts/code-cache.ts). */
export type CompiledListener = (file: string, sourceHash: Buffer, script: vm.Script) => void;
let onCompiled: CompiledListener | undefined;
export const listenForCompiled = (listener: CompiledListener): void => {
  onCompiled = listener;
};

const loaded = new Map<string, Module>();

const sourceHash = (bytes: Buffer): Buffer => createHash('sha256').update(bytes).digest();

function readCache(file: string, hash: Buffer): Buffer | undefined {
  try {
    const fd = fs.openSync(
      file + CACHE_SUFFIX,
      fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK,
    );
    try {
      if (!fs.fstatSync(fd).isFile()) return undefined;
      const data = fs.readFileSync(fd);
      return data.subarray(0, HASH_BYTES).equals(hash) ? data.subarray(HASH_BYTES) : undefined;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

/**
 * The file read straight into a buffer between the wrapper's head and tail: V8 then gets one flat
 * string, where joining strings would make it copy the whole source once more before compiling.
 * `bytes` is the file's own part of `whole`.
 */
function readWrapped(file: string): { whole: Buffer; bytes: Buffer } {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const whole = Buffer.allocUnsafe(WRAPPER_HEAD.length + size + WRAPPER_TAIL.length);
    whole.write(WRAPPER_HEAD, 0, 'latin1');
    const bytes = whole.subarray(WRAPPER_HEAD.length, WRAPPER_HEAD.length + size);
    for (let at = 0; at < size; ) {
      const n = fs.readSync(fd, bytes, at, size - at, at);
      if (n === 0) throw new Error(`${file}: shorter than its size`);
      at += n;
    }
    whole.write(WRAPPER_TAIL, WRAPPER_HEAD.length + size, 'latin1');
    return { whole, bytes };
  } finally {
    fs.closeSync(fd);
  }
}

/** One bundle compiled as a CommonJS module's function, from its code cache if `useCache` and one matches. */
export function compileBundled(file: string, useCache: boolean): { hash: Buffer; script: vm.Script } {
  const { whole, bytes } = readWrapped(file);
  const hash = sourceHash(bytes);
  if (bytes[0] === 0x23 && bytes[1] === 0x21) bytes.write('//', 'latin1'); // "#!" made a comment of the same length
  // esbuild writes ASCII (it escapes the rest): made a string as latin1, a plain copy, instead of decoding UTF-8.
  const script = new vm.Script(isAscii(bytes) ? whole.toString('latin1') : whole.toString('utf8'), {
    filename: file,
    lineOffset: -1,
    cachedData: useCache ? readCache(file, hash) : undefined,
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  return { hash, script };
}

/**
 * `require(file)` for one of our bundles: its `require` resolves from its own folder, and hands
 * relative ids back here (a bundle has no relative require but of another bundle: `./vendor/x.js`
 * from the main file, `./x.js` from a vendor file).
 */
export function requireBundled(file: string): unknown {
  if (process.env.NODE_COMPILE_CACHE && 'enableCompileCache' in Module) return require(file);
  const known = loaded.get(file);
  if (known) return known.exports;

  const { hash, script } = compileBundled(file, true);

  const dir = path.dirname(file);
  const mod = new Module(file, require.main);
  mod.filename = file;
  loaded.set(file, mod);
  const nodeRequire = createRequire(file);
  const bundleRequire = Object.assign(
    (id: string) => (id.startsWith('./') ? requireBundled(path.join(dir, id)) : nodeRequire(id)),
    {
      resolve: nodeRequire.resolve,
      cache: nodeRequire.cache,
      main: nodeRequire.main,
      extensions: nodeRequire.extensions,
    },
  );
  onCompiled?.(file, hash, script);
  script.runInThisContext().call(mod.exports, mod.exports, bundleRequire, mod, file, dir);
  mod.loaded = true;
  return mod.exports;
}
