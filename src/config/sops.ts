/**
 * The SOPS v3 file format, as sops 3.8+ reads and writes it (facts from the sops sources:
 * aes/cipher.go, sops.go, stores/). Pure code: no KMS, no table. Given a data key it encrypts the
 * leaves under keys ending in `_ecs_secret`, computes the MAC and writes the `sops` block; given
 * the same key it checks and reverses all of that. Wrapping the data key (KMS, age) is keysource.ts.
 *
 * Documents are held as `yaml` Documents for both YAML and JSON (JSON is YAML 1.2), so comments and
 * key order survive, including integer-like keys that a JS object would move to the front.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Document, Pair, Scalar, YAMLMap, YAMLSeq } from 'yaml';
import { AppError } from '../core/errors';

// The yaml package is loaded on first use: only config commands and routes need it, and every
// secret command and sidecar would otherwise pay its start-up time.
let yamlModule: typeof import('yaml') | undefined;
const Y = (): typeof import('yaml') => (yamlModule ??= require('yaml') as typeof import('yaml'));
const isMap = (n: unknown): n is YAMLMap => Y().isMap(n);
const isSeq = (n: unknown): n is YAMLSeq => Y().isSeq(n);
const isScalar = (n: unknown): n is Scalar => Y().isScalar(n);
const isPair = (n: unknown): n is Pair => Y().isPair(n);

export const ENCRYPTED_SUFFIX = '_ecs_secret';
/** The sops version we write in the metadata (the format has not changed since 3.0; 3.9 readers and up). */
export const SOPS_VERSION = '3.9.4';
const IV_BYTES = 32; // sops: nonceSize = 32, GCM with a non-default nonce size
const TAG_BYTES = 16;
const ENC_RE = /^ENC\[AES256_GCM,data:([A-Za-z0-9+/=]*),iv:([A-Za-z0-9+/=]+),tag:([A-Za-z0-9+/=]+),type:([a-z0-9]+)\]$/;

export type DocFormat = 'yaml' | 'json';

export interface KmsEntry {
  arn: string;
  context?: Record<string, string>;
  created_at: string;
  enc: string;
  aws_profile: string;
}
export interface AgeEntry {
  recipient: string;
  enc: string;
}
/** The `sops` block, as far as we read it. */
export interface SopsMetadata {
  kms?: KmsEntry[];
  age?: AgeEntry[];
  lastmodified: string;
  mac: string;
  encrypted_suffix?: string;
  version?: string;
}

export interface ConfigDoc {
  doc: Document;
  format: DocFormat;
}

/** A scalar's plaintext and sops type, the two things the cipher and the MAC need. */
type Plain =
  | { kind: 'str'; v: string }
  | { kind: 'int'; v: number }
  | { kind: 'float'; v: number }
  | { kind: 'bool'; v: boolean };

// ---- parsing and printing ----------------------------------------------------------------------

/**
 * Parse YAML or JSON (JSON when `format` says so, or the text starts with `{`). Errors name the
 * line and column, never the text: a malformed line may be a secret.
 */
export function parseConfig(text: string, format?: DocFormat): ConfigDoc {
  const fmt: DocFormat = format ?? (/^\s*\{/.test(text) ? 'json' : 'yaml');
  if (fmt === 'json') {
    try {
      JSON.parse(text);
    } catch (err) {
      const pos = /position (\d+)/.exec(String((err as Error).message));
      const where = pos ? ` at line ${lineOf(text, Number(pos[1]))}` : '';
      throw new AppError('usage', `malformed JSON document${where}`);
    }
  }
  const doc = Y().parseDocument(text, { uniqueKeys: true, prettyErrors: true, version: '1.2' });
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0];
    throw new AppError(
      'usage',
      `malformed ${fmt === 'json' ? 'JSON' : 'YAML'} document${line ? ` at line ${line.line}, column ${line.col}` : ''} (${err.code})`,
    );
  }
  // Aliases would let one value stand for another (an encrypted one among them), and the yaml
  // package reports a bad one only later, in an error that quotes the alias text, which may be a
  // secret. Explicit tags (!!binary, !custom) have no place in sops' value types, would stay on
  // the ENC[...] text, and a bad one fails later the same way. Both are refused here, quoting nothing.
  let refused: string | undefined;
  Y().visit(doc, {
    Alias: () => {
      refused = 'YAML aliases (*name) are';
      return Y().visit.BREAK;
    },
    Node: (_key, node) => {
      if (!(node as { tag?: string }).tag) return undefined;
      refused = 'YAML tags (!tag) are';
      return Y().visit.BREAK;
    },
  });
  if (refused) throw new AppError('usage', `${refused} not supported in a configuration document`);
  if (doc.contents !== null && !isMap(doc.contents))
    throw new AppError('usage', 'a configuration document must be a mapping (key: value pairs) at the top level');
  if (doc.contents === null) doc.contents = new (Y().YAMLMap)() as never;
  return { doc, format: fmt };
}

function lineOf(text: string, pos: number): number {
  return text.slice(0, pos).split('\n').length;
}

/** Print a document as YAML (sops' 4-space indentation), JSON (key order kept) or dotenv. */
export function printConfig(cd: ConfigDoc, format: DocFormat | 'dotenv' = cd.format): string {
  if (format === 'yaml' && cd.format === 'json') return blockStyle(cd.doc).toString({ indent: 4, lineWidth: 0 });
  if (format === 'yaml') return cd.doc.toString({ indent: 4, lineWidth: 0 });
  if (format === 'json') return `${jsonOf(cd.doc.contents, '')}\n`;
  return dotenvOf(cd.doc);
}

/** A JSON-born document as YAML: block style, strings unquoted where YAML allows (a copy; the original is untouched). */
function blockStyle(doc: Document): Document {
  const copy = doc.clone();
  const visit = (node: unknown): void => {
    if (isMap(node) || isSeq(node)) {
      node.flow = false;
      for (const item of node.items as unknown[]) {
        if (isPair(item)) {
          if (node === copy.contents && keyOf(item) === 'sops') continue; // written as sops writes it
          if (isScalar(item.key)) item.key.type = undefined;
          visit(item.value);
        } else visit(item);
      }
    } else if (isScalar(node) && node.type === 'QUOTE_DOUBLE') node.type = undefined;
  };
  visit(copy.contents);
  return copy;
}

function jsonOf(node: unknown, indent: string): string {
  const inner = `${indent}    `;
  if (isMap(node)) {
    if (node.items.length === 0) return '{}';
    const parts = node.items.map((p) => `${inner}${JSON.stringify(keyOf(p))}: ${jsonOf(p.value, inner)}`);
    return `{\n${parts.join(',\n')}\n${indent}}`;
  }
  if (isSeq(node)) {
    if (node.items.length === 0) return '[]';
    return `[\n${node.items.map((v) => `${inner}${jsonOf(v, inner)}`).join(',\n')}\n${indent}]`;
  }
  const v = isScalar(node) ? node.value : null;
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' && !Number.isFinite(v)) return JSON.stringify(String(v));
  return JSON.stringify(typeof v === 'bigint' ? Number(v) : v) ?? 'null';
}

/**
 * dotenv: one KEY=value line per leaf; nested keys joined with `_`, characters outside
 * [A-Za-z0-9_] become `_`; lists as JSON. Values single-quoted so `set -a; . file` round-trips.
 * A key that cannot be a variable (empty, or starting with a digit, e.g. `"10"`) and two keys that
 * become one variable are usage errors naming the key paths (never a value): a file that `set -a;
 * . file` rejects or silently reads as the wrong variable is worse than no file.
 */
function dotenvOf(doc: Document): string {
  const lines: string[] = [];
  const seen = new Map<string, string>();
  const visit = (node: unknown, key: string, keyPath: string): void => {
    if (isMap(node))
      for (const p of node.items)
        visit(
          p.value,
          key === '' ? keyOf(p) : `${key}_${keyOf(p)}`,
          keyPath === '' ? keyOf(p) : `${keyPath}.${keyOf(p)}`,
        );
    else {
      const name = key.replace(/[^A-Za-z0-9_]/g, '_');
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
        throw new AppError(
          'usage',
          `cannot print the document as dotenv: key ${JSON.stringify(keyPath || '(the whole document)')} does not make a variable name (${JSON.stringify(name)}); use --format yaml or json`,
        );
      const other = seen.get(name);
      if (other !== undefined)
        throw new AppError(
          'usage',
          `cannot print the document as dotenv: keys ${JSON.stringify(other)} and ${JSON.stringify(keyPath)} both make the variable ${name}; use --format yaml or json`,
        );
      seen.set(name, keyPath);
      const value = isSeq(node)
        ? jsonOf(node, '').replace(/\s*\n\s*/g, '')
        : isScalar(node) && node.value !== null
          ? String(node.value)
          : '';
      lines.push(`${name}='${value.replace(/'/g, `'\\''`)}'`);
    }
  };
  visit(doc.contents, '', '');
  return lines.length ? `${lines.join('\n')}\n` : '';
}

export function keyOf(p: Pair): string {
  return String(isScalar(p.key) ? p.key.value : p.key);
}

// ---- the walk ------------------------------------------------------------------------------------

interface Leaf {
  scalar: Scalar;
  /** Key path, list indices not included (sops' AAD). */
  path: string[];
  encrypted: boolean;
}

/** Every scalar leaf in document order, the `sops` block excluded, and whether sops encrypts it. */
function leaves(doc: Document): Leaf[] {
  const out: Leaf[] = [];
  const visit = (node: unknown, path: string[], encrypted: boolean): void => {
    if (isMap(node)) {
      for (const p of node.items) {
        const k = keyOf(p);
        if (path.length === 0 && k === 'sops') continue;
        visit(p.value, [...path, k], encrypted || k.endsWith(ENCRYPTED_SUFFIX));
      }
    } else if (isSeq(node)) {
      for (const v of node.items) visit(v, path, encrypted);
    } else if (isScalar(node)) {
      out.push({ scalar: node, path, encrypted });
    }
  };
  visit(doc.contents, [], false);
  return out;
}

/** The collections whose comments sops encrypts: every map or list under an `_ecs_secret` key. */
function encryptedCollections(doc: Document): Array<{ node: YAMLMap | YAMLSeq; path: string[] }> {
  const out: Array<{ node: YAMLMap | YAMLSeq; path: string[] }> = [];
  const visit = (node: unknown, path: string[], encrypted: boolean): void => {
    if (!isMap(node) && !isSeq(node)) return;
    if (encrypted) out.push({ node, path });
    if (isMap(node))
      for (const p of node.items) {
        const k = keyOf(p);
        if (path.length === 0 && k === 'sops') continue;
        visit(p.value, [...path, k], encrypted || k.endsWith(ENCRYPTED_SUFFIX));
      }
    else for (const v of node.items) visit(v, path, encrypted);
  };
  visit(doc.contents, [], false);
  return out;
}

export const aadOf = (path: string[]): string => `${path.join(':')}:`;

function plainOf(s: Scalar): Plain | undefined {
  const v = s.value;
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'boolean') return { kind: 'bool', v };
  if (typeof v === 'number') {
    const src = (s as { source?: string }).source;
    const isInt =
      Number.isInteger(v) && !(typeof src === 'string' && /[.eE]/.test(src)) && Math.abs(v) <= Number.MAX_SAFE_INTEGER;
    return { kind: isInt ? 'int' : 'float', v };
  }
  return { kind: 'str', v: typeof v === 'string' ? v : String(v) };
}

/** Go's strconv.FormatFloat(f, 'f', -1, 64): the shortest round-tripping digits, never an exponent. */
export function formatFloat(f: number): string {
  const s = String(f);
  const m = /^(-?)(\d+)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const [, sign, intPart, frac = '', expStr] = m;
  const digits = intPart + frac;
  const point = intPart.length + Number(expStr);
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** The bytes sops hashes for the MAC (sops.go ToBytes). */
function macBytes(p: Plain): string {
  switch (p.kind) {
    case 'str':
      return p.v;
    case 'int':
      return String(p.v);
    case 'float':
      return formatFloat(p.v);
    case 'bool':
      return p.v ? 'True' : 'False';
  }
}

// ---- the value cipher ----------------------------------------------------------------------------

/** Encrypt one value as sops does; `iv` only for known-answer tests. Empty strings stay empty. */
export function encryptValue(
  value: string,
  type: 'str' | 'int' | 'float' | 'bool' | 'comment',
  key: Buffer,
  aad: string,
  iv: Buffer = randomBytes(IV_BYTES),
): string {
  if (value === '' && (type === 'str' || type === 'comment')) return '';
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const data = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
  return `ENC[AES256_GCM,data:${data.toString('base64')},iv:${iv.toString('base64')},tag:${cipher.getAuthTag().toString('base64')},type:${type}]`;
}

export function isEncryptedValue(v: unknown): v is string {
  return typeof v === 'string' && ENC_RE.test(v);
}

/** Decrypt one ENC[] value; `where` names it in the error (a key path, never a value). */
export function decryptValue(enc: string, key: Buffer, aad: string, where: string): { type: string; text: string } {
  const m = ENC_RE.exec(enc);
  if (!m) throw new AppError('integrity', `integrity check failed: ${where} is not an encrypted value`);
  const [, data, iv, tag, type] = m;
  try {
    const ivBuf = Buffer.from(iv, 'base64');
    if (ivBuf.length === 0) throw new Error('empty iv');
    const d = createDecipheriv('aes-256-gcm', key, ivBuf, { authTagLength: TAG_BYTES });
    d.setAAD(Buffer.from(aad, 'utf8'));
    d.setAuthTag(Buffer.from(tag, 'base64'));
    const text = Buffer.concat([d.update(Buffer.from(data, 'base64')), d.final()]).toString('utf8');
    return { type, text };
  } catch {
    throw new AppError(
      'integrity',
      `integrity check failed: ${where} could not be authenticated (tampered, moved, or another data key)`,
    );
  }
}

function typedValue(type: string, text: string, where: string): string | number | boolean {
  switch (type) {
    case 'str':
    case 'bytes':
    case 'comment':
      return text;
    case 'int':
    case 'int64':
    case 'float': {
      const n = Number(text);
      if (text.trim() === '' || Number.isNaN(n))
        throw new AppError('integrity', `integrity check failed: ${where} holds a malformed ${type}`);
      return n;
    }
    case 'bool':
      if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
      if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
      throw new AppError('integrity', `integrity check failed: ${where} holds a malformed bool`);
    default:
      throw new AppError('integrity', `integrity check failed: ${where} has unknown type ${JSON.stringify(type)}`);
  }
}

// ---- documents -----------------------------------------------------------------------------------

/** Go's time.RFC3339 for UTC: no fractional seconds (sops -d parses it with exactly that layout). */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function hasSopsBlock(cd: ConfigDoc): boolean {
  return isMap(cd.doc.contents) && cd.doc.contents.has('sops');
}

export function readMetadata(cd: ConfigDoc): SopsMetadata {
  const node = isMap(cd.doc.contents) ? cd.doc.contents.get('sops', true) : undefined;
  const meta = (node as { toJSON?: () => unknown } | undefined)?.toJSON?.() as SopsMetadata | undefined;
  if (!meta || typeof meta !== 'object' || typeof meta.mac !== 'string' || typeof meta.lastmodified !== 'string')
    throw new AppError('usage', 'the document has no valid sops block (mac and lastmodified are missing)');
  if (meta.encrypted_suffix !== ENCRYPTED_SUFFIX)
    throw new AppError(
      'usage',
      `the document was not encrypted by ecs-secrets' rules (encrypted_suffix is ${JSON.stringify(meta.encrypted_suffix ?? null)}, expected ${ENCRYPTED_SUFFIX})`,
    );
  return meta;
}

/** Refuse a document sops cannot represent the way we would encrypt it. */
function checkPlain(cd: ConfigDoc): void {
  if (hasSopsBlock(cd)) throw new AppError('usage', 'the document is already encrypted (it has a sops block)');
  for (const leaf of leaves(cd.doc))
    if (leaf.encrypted && isEncryptedValue(leaf.scalar.value))
      throw new AppError(
        'usage',
        `${leaf.path.join('.')} already holds an ENC[] value but the document has no sops block`,
      );
}

/**
 * Encrypt in place: every leaf under an `_ecs_secret` key (maps and lists under one have all their
 * leaves encrypted, as sops does), the comments inside those, then the MAC and the sops block.
 * `keys` is the block's key entries (kms or age), made by the caller from the same data key.
 */
export function encryptDocument(
  cd: ConfigDoc,
  dataKey: Buffer,
  keys: { kms?: KmsEntry[]; age?: AgeEntry[] },
  now = new Date(),
): void {
  checkPlain(cd);
  const hash = createHash('sha512');
  for (const leaf of leaves(cd.doc)) {
    const p = plainOf(leaf.scalar);
    if (!p) continue; // nulls: neither hashed nor encrypted
    hash.update(macBytes(p), 'utf8');
    if (!leaf.encrypted) continue;
    leaf.scalar.value = encryptValue(macBytes(p), p.kind, dataKey, aadOf(leaf.path));
    leaf.scalar.type = 'PLAIN';
  }
  for (const { node, path } of encryptedCollections(cd.doc))
    transformComments(node, (c) => `${encryptValue(c, 'comment', dataKey, aadOf(path))}`);
  const lastmodified = rfc3339(now);
  const mac = encryptValue(hash.digest('hex').toUpperCase(), 'str', dataKey, lastmodified);
  const meta: Record<string, unknown> = {};
  if (keys.kms?.length) meta.kms = keys.kms;
  if (keys.age?.length) meta.age = keys.age;
  Object.assign(meta, { lastmodified, mac, encrypted_suffix: ENCRYPTED_SUFFIX, version: SOPS_VERSION });
  const block = cd.doc.createNode(meta) as YAMLMap;
  // Quoted as sops writes them: a plain timestamp would be a YAML timestamp to some readers.
  for (const scalar of [
    block.get('lastmodified', true),
    ...(keys.kms ?? []).map((_, i) => block.getIn(['kms', i, 'created_at'], true)),
  ])
    if (isScalar(scalar)) scalar.type = 'QUOTE_DOUBLE';
  (cd.doc.contents as YAMLMap).set('sops', block);
}

/**
 * Decrypt in place and check the MAC. Everything is decrypted and checked before the caller sees
 * the document, so a failure never leaves a partial plaintext behind. Removes the sops block.
 */
export function decryptDocument(cd: ConfigDoc, dataKey: Buffer): void {
  const meta = readMetadata(cd);
  const hash = createHash('sha512');
  const updates: Array<() => void> = [];
  for (const leaf of leaves(cd.doc)) {
    const where = `the value at ${leaf.path.join('.')}`;
    const p0 = plainOf(leaf.scalar);
    if (!p0) continue;
    let p: Plain = p0;
    if (leaf.encrypted && p.kind === 'str' && p.v !== '') {
      const { type, text } = decryptValue(p.v, dataKey, aadOf(leaf.path), where);
      const v = typedValue(type, text, where);
      p =
        typeof v === 'boolean'
          ? { kind: 'bool', v }
          : typeof v === 'number'
            ? { kind: type === 'float' ? 'float' : 'int', v }
            : { kind: 'str', v };
      const scalar = leaf.scalar;
      updates.push(() => (scalar.value = v));
    }
    hash.update(macBytes(p), 'utf8');
  }
  const { text: mac } = decryptValue(meta.mac, dataKey, meta.lastmodified, 'the document MAC');
  if (mac.toUpperCase() !== hash.digest('hex').toUpperCase())
    throw new AppError(
      'integrity',
      'integrity check failed: the document MAC does not match its values (a value was changed after encryption)',
    );
  for (const { node, path } of encryptedCollections(cd.doc))
    transformComments(node, (c) =>
      isEncryptedValue(c.trim())
        ? decryptValue(c.trim(), dataKey, aadOf(path), `a comment under ${path.join('.')}`).text
        : c,
    );
  for (const u of updates) u();
  (cd.doc.contents as YAMLMap).delete('sops');
}

/** Drop the sops block, leaving values as stored (build without --show-secrets). */
export function stripMetadata(cd: ConfigDoc): void {
  (cd.doc.contents as YAMLMap).delete('sops');
}

/** Rename `x_ecs_secret` keys to `x` (build --strip-suffix). */
export function stripSuffix(cd: ConfigDoc): void {
  const visit = (node: unknown, at: string): void => {
    if (isMap(node)) {
      // Two keys that become one ("a" and "a_ecs_secret") would print a map with a duplicate key,
      // which YAML parsers refuse and JSON parsers resolve silently: refuse it, naming both keys.
      const seen = new Map(node.items.map((p) => [keyOf(p), keyOf(p)]));
      for (const p of node.items) {
        const k = keyOf(p);
        if (k.endsWith(ENCRYPTED_SUFFIX) && k.length > ENCRYPTED_SUFFIX.length) {
          const stripped = k.slice(0, -ENCRYPTED_SUFFIX.length);
          const other = seen.get(stripped);
          if (other !== undefined)
            throw new AppError(
              'usage',
              `--strip-suffix makes keys ${JSON.stringify(other)} and ${JSON.stringify(k)}${at ? ` under ${JSON.stringify(at)}` : ''} the same key`,
            );
          seen.set(stripped, k);
          p.key = new (Y().Scalar)(stripped);
        }
        visit(p.value, at ? `${at}.${k}` : k);
      }
    } else if (isSeq(node)) for (const item of node.items) visit(item, at);
  };
  visit(cd.doc.contents, '');
}

/** Apply `fn` to the comments attached to a collection's entries (the yaml package's comment slots). */
function transformComments(node: YAMLMap | YAMLSeq, fn: (c: string) => string): void {
  const one = (n: unknown): void => {
    const x = n as { commentBefore?: string | null; comment?: string | null } | null;
    if (!x || typeof x !== 'object') return;
    if (x.commentBefore) x.commentBefore = fn(x.commentBefore);
    if (x.comment) x.comment = fn(x.comment);
  };
  one(node); // a comment before the first entry hangs on the collection itself
  for (const item of node.items as unknown[]) {
    if (isPair(item)) {
      one(item.key);
      if (isScalar(item.value)) one(item.value);
    } else if (isScalar(item)) one(item);
  }
}

/** Flat view for diff: key path (list indices in brackets) → leaf value and whether it is secret. */
export function flatten(cd: ConfigDoc): Map<string, { value: unknown; secret: boolean }> {
  const out = new Map<string, { value: unknown; secret: boolean }>();
  const visit = (node: unknown, label: string, secret: boolean, top: boolean): void => {
    if (isMap(node)) {
      if (node.items.length === 0) out.set(label, { value: '{}', secret });
      for (const p of node.items) {
        const k = keyOf(p);
        if (top && k === 'sops') continue;
        visit(p.value, label === '' ? k : `${label}.${k}`, secret || k.endsWith(ENCRYPTED_SUFFIX), false);
      }
    } else if (isSeq(node)) {
      if (node.items.length === 0) out.set(label, { value: '[]', secret });
      for (const [i, v] of node.items.entries()) visit(v, `${label}[${i}]`, secret, false);
    } else out.set(label, { value: isScalar(node) ? node.value : null, secret });
  };
  visit(cd.doc.contents, '', false, true);
  return out;
}
