/**
 * Key providers: where data keys come from (the outer half of envelope encryption).
 * - KmsKeyProvider: AWS KMS GenerateDataKey/Decrypt on the application's alias, with the
 *   EncryptionContext that lets IAM restrict a role to a namespace of names.
 * - LocalKeyProvider: the embedded backend's stand-in for KMS: data keys wrapped with AES-GCM
 *   under a 32-byte master key file (mode 0600) in the data dir, the context bound as AAD.
 * - withDataKeyCache: a bounded, TTL'd memory cache of decrypted data keys, so hot reads and
 *   re-reads after a record cache expiry make no KMS call.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import * as path from 'node:path';
import type { KMSClient } from '@aws-sdk/client-kms';
import { LRUCache } from 'lru-cache';
import { ownedBytes } from './buffers';
import { AppError, fromAwsError } from './errors';
import { readOrCreatePrivateFile } from './private-files';

/**
 * The KMS SDK package, loaded at its first use rather than when this module is imported: a
 * `--local` command, `--help` or `version` never needs it, and running its module code cost every
 * start-up some tens of ms of CPU. A plain require with a literal name, so the bundle still
 * contains it.
 */
export const kmsSdk = (): typeof import('@aws-sdk/client-kms') =>
  require('@aws-sdk/client-kms') as typeof import('@aws-sdk/client-kms');

export type EncryptionContext = Record<string, string>;

export interface DataKey {
  plaintext: Buffer;
  /** The wrapped key, stored in the record's EncryptedDataKey. */
  encrypted: Buffer;
}

export interface KeyProvider {
  generateDataKey(context: EncryptionContext): Promise<DataKey>;
  /** `context` undefined: a legacy record, whose data key was made without a context. */
  decryptDataKey(encrypted: Buffer, context: EncryptionContext | undefined): Promise<Buffer>;
  /** Confirms the key exists and is usable (health checks, setup). Returns its id. */
  describe(): Promise<string>;
}

export function encryptionContext(app: string, name: string): EncryptionContext {
  return { 'ecs-secrets:application': app, 'ecs-secrets:name': name };
}

export class KmsKeyProvider implements KeyProvider {
  constructor(
    private readonly kms: KMSClient,
    private readonly keyId: string,
  ) {}

  async generateDataKey(context: EncryptionContext): Promise<DataKey> {
    try {
      const out = await this.kms.send(
        new (kmsSdk().GenerateDataKeyCommand)({ KeyId: this.keyId, KeySpec: 'AES_256', EncryptionContext: context }),
      );
      if (!out.Plaintext || !out.CiphertextBlob) throw new AppError('internal', 'KMS returned no data key');
      return { plaintext: Buffer.from(out.Plaintext), encrypted: Buffer.from(out.CiphertextBlob) };
    } catch (err) {
      throw fromAwsError(err, `generating a data key with ${this.keyId}`);
    }
  }

  async decryptDataKey(encrypted: Buffer, context: EncryptionContext | undefined): Promise<Buffer> {
    try {
      // KeyId pins the key: a data key wrapped under any other key (by someone who may write the
      // table and use some key) is IncorrectKeyException, an integrity error, never a secret.
      const out = await this.kms.send(
        new (kmsSdk().DecryptCommand)({ CiphertextBlob: encrypted, EncryptionContext: context, KeyId: this.keyId }),
      );
      if (!out.Plaintext) throw new AppError('internal', 'KMS returned no plaintext');
      return Buffer.from(out.Plaintext);
    } catch (err) {
      throw fromAwsError(err, `decrypting a data key for ${context?.['ecs-secrets:name'] ?? 'a legacy record'}`);
    }
  }

  async describe(): Promise<string> {
    try {
      const out = await this.kms.send(new (kmsSdk().DescribeKeyCommand)({ KeyId: this.keyId }));
      return out.KeyMetadata?.KeyId ?? this.keyId;
    } catch (err) {
      throw fromAwsError(err, `describing KMS key ${this.keyId}`);
    }
  }
}

const LOCAL_BLOB_VERSION = 1;
export const MASTER_KEY_FILE = 'master.key';

export class LocalKeyProvider implements KeyProvider {
  private masterKey: Buffer | undefined;

  constructor(private readonly dataDir: string) {}

  async generateDataKey(context: EncryptionContext): Promise<DataKey> {
    const plaintext = randomBytes(32);
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key(), nonce);
    cipher.setAAD(canonicalContext(context));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const encrypted = Buffer.concat([Buffer.from([LOCAL_BLOB_VERSION]), nonce, body, cipher.getAuthTag()]);
    return { plaintext, encrypted };
  }

  async decryptDataKey(encrypted: Buffer, context: EncryptionContext | undefined): Promise<Buffer> {
    if (encrypted.length !== 1 + 12 + 32 + 16 || encrypted[0] !== LOCAL_BLOB_VERSION)
      throw new AppError('integrity', 'integrity check failed: the data key was not made by this local master key');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key(), encrypted.subarray(1, 13));
      decipher.setAAD(canonicalContext(context ?? {}));
      decipher.setAuthTag(encrypted.subarray(45));
      return Buffer.concat([decipher.update(encrypted.subarray(13, 45)), decipher.final()]);
    } catch {
      throw new AppError(
        'integrity',
        'integrity check failed: the data key does not match this master key and encryption context',
      );
    }
  }

  async describe(): Promise<string> {
    this.key();
    return `local:${path.join(this.dataDir, MASTER_KEY_FILE)}`;
  }

  private key(): Buffer {
    this.masterKey ??= loadOrCreateMasterKey(this.dataDir);
    return this.masterKey;
  }
}

/**
 * Read the master key, creating it on first use (32 random bytes). A key that is a link, another
 * user's, or readable by group or others is refused, as ssh does (core/private-files.ts).
 */
export function loadOrCreateMasterKey(dataDir: string): Buffer {
  const file = path.join(dataDir, MASTER_KEY_FILE);
  const key = readOrCreatePrivateFile(file, 'master key', () => randomBytes(32));
  if (key.length !== 32) throw new AppError('integrity', `master key ${file} has ${key.length} bytes, expected 32`);
  return key;
}

/** Sorted-key JSON, so the same context always binds the same bytes. */
function canonicalContext(context: EncryptionContext): Buffer {
  const sorted = Object.keys(context)
    .sort()
    .map((k) => [k, context[k]]);
  return Buffer.from(JSON.stringify(sorted), 'utf8');
}

export interface DataKeyCacheOptions {
  max: number;
  ttlMs: number;
  /** Bound on the bytes held (see dataKeyEntryBytes); default: no byte bound. */
  maxBytes?: number;
}

/** Per cached key, beyond its id and the 32 key bytes: the Buffer object and lru-cache's slots. Rounded up. */
const DATA_KEY_OVERHEAD_BYTES = 256;

/** What one cached data key costs, an upper bound: the id string (two bytes per unit, held twice) and the key. */
export function dataKeyEntryBytes(id: string, key: Buffer): number {
  return 4 * id.length + key.length + DATA_KEY_OVERHEAD_BYTES;
}

/** A KeyProvider with a data-key cache; `cachedBytes()` counts what it holds (metrics, tests). */
export type CachingKeyProvider = KeyProvider & { cachedBytes(): number };

/**
 * Cache decrypted data keys. The cache key includes the encryption context, so a record moved to
 * another name never gets a key that KMS would have refused for it.
 */
export function withDataKeyCache(inner: KeyProvider, opts: DataKeyCacheOptions): CachingKeyProvider {
  if (opts.ttlMs <= 0 || opts.max <= 0)
    return {
      generateDataKey: (context) => inner.generateDataKey(context),
      decryptDataKey: (encrypted, context) => inner.decryptDataKey(encrypted, context),
      describe: () => inner.describe(),
      cachedBytes: () => 0,
    };
  const cache = new LRUCache<string, Buffer>({
    max: opts.max,
    ttl: opts.ttlMs,
    ...(opts.maxBytes === undefined
      ? {}
      : { maxSize: opts.maxBytes, sizeCalculation: (key: Buffer, id: string) => dataKeyEntryBytes(id, key) }),
  });
  return {
    cachedBytes() {
      let total = 0;
      for (const [id, key] of cache.entries()) total += dataKeyEntryBytes(id, key);
      return total;
    },
    generateDataKey: (context) => inner.generateDataKey(context),
    describe: () => inner.describe(),
    async decryptDataKey(encrypted, context) {
      const id = `${context ? JSON.stringify(canonicalContext(context).toString()) : 'legacy'}|${encrypted.toString('base64')}`;
      const hit = cache.get(id);
      if (hit) return hit;
      // Kept for the TTL: its own 32 bytes, not a slice pinning a shared slab (core/buffers.ts).
      const key = ownedBytes(await inner.decryptDataKey(encrypted, context));
      cache.set(id, key);
      return key;
    },
  };
}
