/**
 * The config service: versioned configuration documents at paths, in the secrets table under
 * `Name = "config/" + PATH` with the SOPS text in `Document`. Built from the same SecretStore as
 * secrets, the SOPS format (sops.ts) and a key source (keysource.ts: KMS or age). Both front ends,
 * the CLI and the daemon, go through this class.
 */
import { AppError } from '../core/errors';
import type { Logger } from '../core/log';
import { CONFIG_NAME_PREFIX, parseSerial } from '../core/names';
import { RECORD_FORMAT, type SecretItem, type SecretStore, type VersionInfo } from '../core/storage';
import { documentMac, documentMacMatches } from './document-mac';
import type { ConfigKeySource } from './keysource';
import {
  type ConfigDoc,
  type DocFormat,
  decryptDocument,
  encryptDocument,
  flatten,
  hasSopsBlock,
  parseConfig,
  printConfig,
  readAnyMetadata,
  readMetadata,
  stripMetadata,
  stripSuffix,
} from './sops';

export const CONFIG_PATH_RULE = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;
/** The table items that hold configuration documents (what the store checks as documents). */
export const isConfigItemName = (name: string): boolean => name.startsWith(CONFIG_NAME_PREFIX);
/** The stored (encrypted) document's limit: DynamoDB's item limit is 400 KB; keep well under it. */
export const MAX_DOCUMENT_BYTES = 256 * 1024;
/** What we read from a file before refusing it: encryption roughly doubles short values. */
export const MAX_INPUT_BYTES = 1024 * 1024;

export type OutputFormat = DocFormat | 'dotenv';

export function validateConfigPath(p: unknown): string {
  if (typeof p !== 'string' || p === '')
    throw new AppError('usage', 'missing configuration path: pass --path (e.g. team-a/api)');
  if (p.length > 255 || !CONFIG_PATH_RULE.test(p)) {
    const shown = JSON.stringify(p.length > 80 ? `${p.slice(0, 77)}...` : p);
    throw new AppError(
      'usage',
      `invalid configuration path ${shown}: use segments of A-Z a-z 0-9 . _ - separated by '/', each starting with a letter or digit (at most 255 characters)`,
    );
  }
  return p;
}

export function validateOutputFormat(f: unknown): OutputFormat | undefined {
  if (f === undefined) return undefined;
  if (f === 'yaml' || f === 'json' || f === 'dotenv') return f;
  throw new AppError('usage', `invalid format ${JSON.stringify(String(f))}: use yaml, json or dotenv`);
}

export interface BuildOptions {
  serial?: number;
  showSecrets?: boolean;
  format?: OutputFormat;
  stripSuffix?: boolean;
}

export interface DiffResult {
  path: string;
  serial: number;
  added: string[];
  removed: string[];
  changed: string[];
  notCompared: string[];
}

export class ConfigService {
  constructor(
    readonly app: string,
    private readonly store: SecretStore,
    private readonly keys: ConfigKeySource,
    /** Where a document read without a DocumentMac is reported (one warning per read). */
    private readonly logger?: Logger,
  ) {}

  /**
   * Store a new version. A plain document is encrypted for this path; one already encrypted for
   * this application and path is stored as it is once its MAC checks out.
   */
  async push(pathIn: string, text: string): Promise<{ path: string; serial: number }> {
    const path = validateConfigPath(pathIn);
    const name = CONFIG_NAME_PREFIX + path;
    // The document's MAC for the table, written in the same put as the document.
    const { text: stored, mac } = hasSopsBlock(parseConfig(text))
      ? await checkEncrypted(this.keys, this.app, text, path, name)
      : await encryptWithMac(this.keys, this.app, text, path, name);
    checkSize(stored);
    const serial = await this.store.claimNextSerial(
      name,
      (serial) => ({
        name,
        serial,
        encryptedData: '',
        encryptedDataKey: '',
        document: stored,
        documentMac: mac,
        active: true,
        format: RECORD_FORMAT,
        createdAt: new Date().toISOString(),
      }),
      `configuration ${path}`,
    );
    return { path, serial };
  }

  /**
   * The document at a path. Without showSecrets nothing is decrypted (no KMS call): secret values
   * print as stored, ENC[...]. The sops block is never printed.
   */
  async build(pathIn: string, opts: BuildOptions = {}): Promise<string> {
    const path = validateConfigPath(pathIn);
    const item = await this.item(path, opts.serial);
    const cd = parseStored(item, path);
    if (opts.showSecrets) await this.decryptStored(item, cd, path);
    else stripMetadata(cd);
    if (opts.stripSuffix) stripSuffix(cd);
    return printConfig(cd, opts.format ?? cd.format);
  }

  async list(prefix = ''): Promise<Array<{ path: string; latestSerial: number }>> {
    const names = await this.store.listNames();
    return names
      .filter((n) => n.name.startsWith(CONFIG_NAME_PREFIX + prefix))
      .map((n) => ({ path: n.name.slice(CONFIG_NAME_PREFIX.length), latestSerial: n.latestSerial }));
  }

  async history(pathIn: string): Promise<VersionInfo[]> {
    const path = validateConfigPath(pathIn);
    const versions = await this.store.history(CONFIG_NAME_PREFIX + path);
    if (versions.length === 0) throw new AppError('not_found', `configuration ${path} not found`);
    return versions;
  }

  async revoke(pathIn: string, serialIn: unknown): Promise<{ path: string; serial: number; active: false }> {
    const path = validateConfigPath(pathIn);
    const serial = parseSerial(serialIn);
    try {
      await this.store.revoke(CONFIG_NAME_PREFIX + path, serial);
    } catch (err) {
      if (err instanceof AppError && err.kind === 'not_found')
        throw new AppError('not_found', `configuration ${path} has no serial ${serial}`);
      throw err;
    }
    return { path, serial, active: false };
  }

  /**
   * Drift between the stored latest version and `text` (plain, or encrypted for this path): key
   * paths only, never values. Secret values are compared only if the stored data key can be
   * decrypted (read-secrets); otherwise they are listed under notCompared.
   */
  async diff(pathIn: string, text: string): Promise<DiffResult> {
    const path = validateConfigPath(pathIn);
    const item = await this.item(path);
    const mine = parseConfig(text);
    const stored = parseStored(item, path);
    let secretsCompared = true;
    try {
      await this.decryptStored(item, stored, path);
      if (hasSopsBlock(mine)) await this.decryptInPlace(mine, path);
    } catch (err) {
      if (!(err instanceof AppError) || err.kind !== 'access_denied') throw err;
      secretsCompared = false;
      const fresh = parseStored(item, path);
      stripMetadata(fresh);
      stored.doc = fresh.doc;
      if (hasSopsBlock(mine)) stripMetadata(mine);
    }
    const a = flatten(stored);
    const b = flatten(mine);
    const result: DiffResult = { path, serial: item.serial, added: [], removed: [], changed: [], notCompared: [] };
    for (const [k, v] of b) {
      const old = a.get(k);
      if (!old) result.added.push(k);
      else if ((old.secret || v.secret) && !secretsCompared) result.notCompared.push(k);
      else if (!sameLeaf(old.value, v.value)) result.changed.push(k);
    }
    for (const k of a.keys()) if (!b.has(k)) result.removed.push(k);
    return result;
  }

  private async item(path: string, serial?: number): Promise<SecretItem> {
    const name = CONFIG_NAME_PREFIX + path;
    const item =
      serial === undefined ? await this.store.latestActive(name) : await this.store.get(name, parseSerial(serial));
    if (!item)
      throw new AppError(
        'not_found',
        serial === undefined
          ? `configuration ${path} not found (no active version)`
          : `configuration ${path} has no serial ${serial}`,
      );
    if (!item.active) throw new AppError('not_found', `configuration ${path} serial ${item.serial} is revoked`);
    return item;
  }

  /**
   * For stored items: what is a usage error in a file given to us (bound to another path or app,
   * a bad sops block) means a stored document was moved or altered, an integrity failure (exit 1).
   * The remedy for a file someone passed in does not apply to a stored item, so only the detail is kept.
   */
  private async decryptInPlace(cd: ConfigDoc, path: string | undefined, item?: SecretItem): Promise<void> {
    try {
      await decryptInPlace(this.keys, this.app, cd, path, item && ((dataKey) => this.checkMac(item, path, dataKey)));
    } catch (err) {
      if (err instanceof AppError && err.kind === 'usage')
        throw new AppError('integrity', `integrity check failed: ${err.detail}`, { cause: err });
      throw err;
    }
  }

  /** A stored document decrypted: its DocumentMac checked first, under its own data key. */
  private decryptStored(item: SecretItem, cd: ConfigDoc, path: string): Promise<void> {
    return this.decryptInPlace(cd, path, item);
  }

  /**
   * The item's DocumentMac against its document. Items written before the attribute existed have
   * none: existing tables hold them, so they are still served (their SOPS MAC still checks the
   * values), with a warning saying the structure is unchecked and how to fix it (push it again).
   */
  private checkMac(item: SecretItem, path: string | undefined, dataKey: Buffer): void {
    const where = `configuration ${path} serial ${item.serial}`;
    if (item.documentMac === undefined) {
      this.logger?.warn(
        `${where} has no DocumentMac (written by an older version): its structure is not checked; push it again to add one`,
      );
      return;
    }
    if (!documentMacMatches(dataKey, item.name, item.document ?? '', item.documentMac))
      throw new AppError(
        'integrity',
        `integrity check failed: ${where} does not match its DocumentMac: the stored document was altered`,
      );
  }
}

/**
 * A pushed file that says it is encrypted: for this path and application, with a MAC that checks;
 * stored as it is, with the table's MAC of it under `name`.
 */
async function checkEncrypted(
  keys: ConfigKeySource,
  app: string,
  text: string,
  path: string,
  name: string,
): Promise<{ text: string; mac: string }> {
  let mac = '';
  await decryptInPlace(keys, app, parseConfig(text), path, (dataKey) => {
    mac = documentMac(dataKey, name, text);
  });
  return { text, mac };
}

/** Decrypt `cd`; `withKey` sees the data key first (the stored document's MAC is checked there). */
async function decryptInPlace(
  keys: ConfigKeySource,
  app: string,
  cd: ConfigDoc,
  path: string | undefined,
  withKey?: (dataKey: Buffer) => void,
): Promise<void> {
  const meta = readMetadata(cd);
  const dataKey = await keys.dataKey(meta, app, path);
  try {
    withKey?.(dataKey);
    decryptDocument(cd, dataKey);
  } finally {
    dataKey.fill(0);
  }
}

/** `config encrypt`: a local file, no table. `path` (optional) binds the data key to that path. */
export async function encryptConfigText(
  keys: ConfigKeySource,
  app: string,
  text: string,
  path: string | undefined,
): Promise<string> {
  return (await encryptWithMac(keys, app, text, path, undefined)).text;
}

/** Encrypt a plain document; with `name`, also the table's MAC of the result (else mac is ''). */
async function encryptWithMac(
  keys: ConfigKeySource,
  app: string,
  text: string,
  path: string | undefined,
  name: string | undefined,
): Promise<{ text: string; mac: string }> {
  if (path !== undefined) validateConfigPath(path);
  const cd = parseConfig(text);
  const { dataKey, keys: entries } = await keys.newDataKey(app, path);
  try {
    encryptDocument(cd, dataKey, entries);
    const encrypted = printConfig(cd);
    return { text: encrypted, mac: name === undefined ? '' : documentMac(dataKey, name, encrypted) };
  } finally {
    dataKey.fill(0);
  }
}

/**
 * `config decrypt`: a local file, no table, written by us or by sops itself under any of its rules
 * (the file's own sops block says which); the path is the one the file says it was encrypted for.
 */
export async function decryptConfigText(keys: ConfigKeySource, app: string, text: string): Promise<string> {
  const cd = parseConfig(text);
  if (!hasSopsBlock(cd)) throw new AppError('usage', 'the document is not encrypted (it has no sops block)');
  const meta = readAnyMetadata(cd);
  if (!meta.kms?.length && !meta.age?.length)
    throw new AppError(
      'usage',
      meta.pgp?.length
        ? "the document's data key is wrapped only with PGP (sops.pgp), which ecs-secrets does not support: decrypt it with sops"
        : 'the document has no sops.kms or sops.age entry to take its data key from',
    );
  const dataKey = await keys.dataKey(meta, app, meta.kms?.[0]?.context?.['ecs-secrets:config']);
  try {
    decryptDocument(cd, dataKey);
  } finally {
    dataKey.fill(0);
  }
  return printConfig(cd);
}

/** Whether a sops file's data key can only come from age (no KMS entry): decrypt then reads age identities. */
export function wrappedOnlyForAge(text: string): boolean {
  try {
    const meta = readAnyMetadata(parseConfig(text));
    return !meta.kms?.length && (meta.age?.length ?? 0) > 0;
  } catch {
    return false; // the decrypt itself reports what is wrong with the file
  }
}

function parseStored(item: SecretItem, path: string): ConfigDoc {
  if (item.document === undefined)
    throw new AppError('integrity', `configuration ${path} serial ${item.serial} has no Document attribute`);
  try {
    return parseConfig(item.document);
  } catch {
    throw new AppError('integrity', `configuration ${path} serial ${item.serial} is not a readable document`);
  }
}

function checkSize(text: string): void {
  const size = Buffer.byteLength(text, 'utf8');
  if (size > MAX_DOCUMENT_BYTES)
    throw new AppError(
      'too_large',
      `the encrypted document is ${size} bytes; the limit is ${MAX_DOCUMENT_BYTES} bytes (256 KiB, under DynamoDB's 400 KB item limit)`,
    );
}

function sameLeaf(a: unknown, b: unknown): boolean {
  return a === b;
}

/**
 * The decrypted document at a path, in a format: what the daemon's `--render FILE=config:PATH`
 * writes and `GET /config/*path` serves. Makes the KMS (or age) call; the caller caches.
 */
export function renderConfig(config: ConfigService, path: string, format: OutputFormat = 'yaml'): Promise<string> {
  return config.build(path, { showSecrets: true, format });
}
