/**
 * The SOPS v3 file format, as sops reads and writes it (facts from the sops sources: aes/cipher.go,
 * sops.go, stores/). Pure code: no KMS, no table. Given a data key it encrypts the leaves under keys
 * ending in `_ecs_secret`, computes the MAC and writes the `sops` block; given the same key it checks
 * and reverses all of that. The document model and its walker are sops-tree.ts, the value cipher
 * sops-cipher.ts, printing sops-print.ts; wrapping the data key (KMS, age) is keysource.ts.
 */
import { createHash } from 'node:crypto';
import type { YAMLMap, YAMLSeq } from 'yaml';
import { AppError } from '../core/errors';
import {
  type Plain,
  aadOf,
  decryptValue,
  encryptValue,
  isEncryptedValue,
  macBytes,
  plainOf,
  resolvePlain,
  rfc3339,
  typedValue,
} from './sops-cipher';
import {
  type ConfigDoc,
  hasSopsBlock,
  isCollection,
  isMap,
  isScalar,
  isSopsBlock,
  keyOf,
  transformComments,
  walk,
  Y,
} from './sops-tree';

export { aadOf, decryptValue, encryptValue, formatFloat, isEncryptedValue, rfc3339 } from './sops-cipher';
export { printConfig } from './sops-print';
export { type ConfigDoc, type DocFormat, hasSopsBlock, keyOf, parseConfig, stripMetadata } from './sops-tree';

export const ENCRYPTED_SUFFIX = '_ecs_secret';
/**
 * The sops version whose layout we write: values typed and hashed as yaml.v3 reads them, plain
 * dates as `type:time` (which sops reads since 3.10), 4-space YAML, one ENC per comment line.
 */
export const SOPS_VERSION = '3.10.2';

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
  unencrypted_suffix?: string;
  encrypted_regex?: string;
  unencrypted_regex?: string;
  encrypted_comment_regex?: string;
  unencrypted_comment_regex?: string;
  mac_only_encrypted?: boolean;
  pgp?: unknown[];
  key_groups?: unknown[];
  version?: string;
}

/** Which leaves a document encrypts: sops' shouldBeEncrypted for a key path (lists add no key). */
type Rule = { encrypts(path: string[]): boolean; macOnlyEncrypted: boolean };

/** Ours: every leaf under a key ending in `_ecs_secret`, everything in the MAC. */
const OUR_RULE: Rule = { encrypts: (path) => path.some((k) => k.endsWith(ENCRYPTED_SUFFIX)), macOnlyEncrypted: false };

/**
 * The rule a sops file says it was written with, as sops applies it (sops.go shouldBeEncrypted):
 * everything is encrypted unless a key on the path ends in unencrypted_suffix; with
 * encrypted_suffix only leaves under such a key are; the regexes likewise, matching anywhere in a key.
 */
function ruleOf(meta: SopsMetadata): Rule {
  const regex = (field: 'encrypted_regex' | 'unencrypted_regex'): RegExp | undefined => {
    const source = meta[field];
    if (!source) return undefined;
    try {
      return new RegExp(source);
    } catch {
      throw new AppError('usage', `the document's sops.${field} is not a regular expression this tool can read`);
    }
  };
  const encRe = regex('encrypted_regex');
  const unencRe = regex('unencrypted_regex');
  const { encrypted_suffix: encSuffix, unencrypted_suffix: unencSuffix } = meta;
  return {
    macOnlyEncrypted: meta.mac_only_encrypted === true,
    encrypts(path) {
      let encrypted = true;
      if (unencSuffix && path.some((k) => k.endsWith(unencSuffix))) encrypted = false;
      if (encSuffix) encrypted = path.some((k) => k.endsWith(encSuffix));
      if (unencRe && path.some((k) => unencRe.test(k))) encrypted = false;
      if (encRe) encrypted = path.some((k) => encRe.test(k));
      return encrypted;
    },
  };
}

/**
 * sops.go MACOnlyEncryptedInitialization: hashed first when only encrypted values are in the MAC,
 * so that such a MAC never equals one over every value.
 */
const MAC_ONLY_ENCRYPTED_INIT = Buffer.from('8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69', 'hex');

interface Leaf {
  scalar: import('yaml').Scalar;
  path: string[];
  encrypted: boolean;
}

/**
 * Every scalar leaf in document order, the `sops` block excluded, and whether sops encrypts it; and
 * the collections whose comments sops encrypts (every map or list under an encrypted key).
 */
function valuesOf(
  cd: ConfigDoc,
  rule: Rule,
): { leaves: Leaf[]; collections: Array<{ node: YAMLMap | YAMLSeq; path: string[] }> } {
  const leaves: Leaf[] = [];
  const collections: Array<{ node: YAMLMap | YAMLSeq; path: string[] }> = [];
  walk(cd.doc.contents, (s) => {
    if (isSopsBlock(s)) return false;
    if (cd.format === 'yaml' && isScalar(s.pair?.key) && s.pair.key.type === 'PLAIN') {
      const k = s.pair.key as { source?: string; value: unknown };
      if (resolvePlain(k.source ?? String(k.value))?.kind !== 'str')
        throw new AppError(
          'usage',
          `the key ${JSON.stringify(s.label)} is not a string (sops reads an unquoted ${JSON.stringify(keyOf(s.pair))} as a number, bool, date or null, and refuses it): quote it`,
        );
    }
    const encrypted = rule.encrypts(s.path);
    if (isCollection(s.node)) {
      if (encrypted) collections.push({ node: s.node, path: s.path });
    } else if (isScalar(s.node)) leaves.push({ scalar: s.node, path: s.path, encrypted });
    return true;
  });
  return { leaves, collections };
}

/** The `sops` block of a file written by any sops-compatible tool, refusing what we cannot open. */
export function readAnyMetadata(cd: ConfigDoc): SopsMetadata {
  const node = isMap(cd.doc.contents) ? cd.doc.contents.get('sops', true) : undefined;
  const meta = (node as { toJSON?: () => unknown } | undefined)?.toJSON?.() as SopsMetadata | undefined;
  if (!meta || typeof meta !== 'object' || typeof meta.mac !== 'string' || typeof meta.lastmodified !== 'string')
    throw new AppError('usage', 'the document has no valid sops block (mac and lastmodified are missing)');
  for (const field of ['encrypted_comment_regex', 'unencrypted_comment_regex', 'key_groups'] as const)
    if (meta[field] !== undefined && meta[field] !== '')
      throw new AppError('usage', `the document uses sops.${field}, which ecs-secrets does not support`);
  return meta;
}

/** The `sops` block of a document we store: written by our rule (`encrypted_suffix: _ecs_secret`). */
export function readMetadata(cd: ConfigDoc): SopsMetadata {
  const meta = readAnyMetadata(cd);
  if (meta.encrypted_suffix !== ENCRYPTED_SUFFIX)
    throw new AppError(
      'usage',
      `the document was not encrypted by ecs-secrets' rules (encrypted_suffix is ${JSON.stringify(meta.encrypted_suffix ?? null)}, expected ${ENCRYPTED_SUFFIX}); stored documents must use that rule: decrypt it (config decrypt) and push the plain file`,
    );
  return meta;
}

/** Refuse a document sops cannot represent the way we would encrypt it. */
function checkPlain(cd: ConfigDoc, leaves: Leaf[]): void {
  if (hasSopsBlock(cd)) throw new AppError('usage', 'the document is already encrypted (it has a sops block)');
  for (const leaf of leaves)
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
  const { leaves, collections } = valuesOf(cd, OUR_RULE);
  checkPlain(cd, leaves);
  const hash = createHash('sha512');
  for (const leaf of leaves) {
    const p = plainOf(leaf.scalar, cd.format);
    if (!p) continue; // nulls: neither hashed nor encrypted
    hash.update(macBytes(p), 'utf8');
    if (!leaf.encrypted) continue;
    leaf.scalar.value = encryptValue(macBytes(p), p.kind, dataKey, aadOf(leaf.path));
    leaf.scalar.type = 'PLAIN';
  }
  for (const { node, path } of collections)
    transformComments(node, (c) => eachLine(c, (line) => encryptValue(line, 'comment', dataKey, aadOf(path))));
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
  const meta = readAnyMetadata(cd);
  const rule = ruleOf(meta);
  const { leaves, collections } = valuesOf(cd, rule);
  const hash = createHash('sha512');
  if (rule.macOnlyEncrypted) hash.update(MAC_ONLY_ENCRYPTED_INIT);
  const updates: Array<() => void> = [];
  for (const leaf of leaves) {
    const where = `the value at ${leaf.path.join('.')}`;
    const p0 = plainOf(leaf.scalar, cd.format);
    if (!p0) continue;
    let p: Plain = p0;
    if (leaf.encrypted && p.kind === 'str' && p.v !== '') {
      const { type, text } = decryptValue(p.v, dataKey, aadOf(leaf.path), where);
      p = typedValue(type, text, where);
      const { scalar } = leaf;
      const v = p.v;
      // A time prints as the timestamp it is (unquoted): it reads as written, as sops prints it.
      const time = p.kind === 'time';
      updates.push(() => {
        scalar.value = v;
        if (time) (scalar as { source?: unknown }).source = v;
      });
    }
    if (leaf.encrypted || !rule.macOnlyEncrypted) hash.update(macBytes(p), 'utf8');
  }
  const { text: mac } = decryptValue(meta.mac, dataKey, meta.lastmodified, 'the document MAC');
  if (mac.toUpperCase() !== hash.digest('hex').toUpperCase())
    throw new AppError(
      'integrity',
      'integrity check failed: the document MAC does not match its values (a value was changed after encryption)',
    );
  for (const { node, path } of collections)
    transformComments(node, (c) =>
      eachLine(c, (line) =>
        isEncryptedValue(line.trim())
          ? decryptValue(line.trim(), dataKey, aadOf(path), `a comment under ${path.join('.')}`).text
          : line,
      ),
    );
  for (const u of updates) u();
  (cd.doc.contents as YAMLMap).delete('sops');
}

/** sops keeps a comment line by line (one `#` line, one value): so does its cipher. */
function eachLine(comment: string, fn: (line: string) => string): string {
  return comment.split('\n').map(fn).join('\n');
}

/** Rename `x_ecs_secret` keys to `x` (build --strip-suffix). */
export function stripSuffix(cd: ConfigDoc): void {
  const maps: Array<{ node: YAMLMap; at: string }> = [];
  walk(cd.doc.contents, (s) => {
    if (isMap(s.node)) maps.push({ node: s.node, at: s.path.join('.') });
    return true;
  });
  for (const { node, at } of maps) {
    // Two keys that become one ("a" and "a_ecs_secret") would print a map with a duplicate key,
    // which YAML parsers refuse and JSON parsers resolve silently: refuse it, naming both keys.
    const seen = new Map(node.items.map((p) => [keyOf(p), keyOf(p)]));
    for (const p of node.items) {
      const k = keyOf(p);
      if (!k.endsWith(ENCRYPTED_SUFFIX) || k.length === ENCRYPTED_SUFFIX.length) continue;
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
  }
}

/** Flat view for diff: key path (list indices in brackets) → leaf value and whether it is secret. */
export function flatten(cd: ConfigDoc): Map<string, { value: unknown; secret: boolean }> {
  const out = new Map<string, { value: unknown; secret: boolean }>();
  walk(cd.doc.contents, (s) => {
    if (isSopsBlock(s)) return false;
    const secret = OUR_RULE.encrypts(s.path);
    if (isMap(s.node) && s.node.items.length === 0) out.set(s.label, { value: '{}', secret });
    else if (isCollection(s.node) && s.node.items.length === 0) out.set(s.label, { value: '[]', secret });
    else if (!isCollection(s.node)) out.set(s.label, { value: isScalar(s.node) ? s.node.value : null, secret });
    return true;
  });
  return out;
}
