/**
 * credstash tables (`import credstash [--table credential-store] [--context K=V ...]`), read as
 * credstash's own source defines its (released, "legacy") format:
 * - items keyed by `name` (S, hash) and `version` (S, range), versions zero-padded to 19 digits
 *   and ordered as DynamoDB orders strings, which is how credstash finds the newest;
 * - `key`: base64 of a KMS ciphertext of a 64-byte key, made under the optional encryption context;
 *   its first 32 bytes are the AES-256-CTR key, the last 32 the HMAC key;
 * - `contents`: base64 of the AES-CTR ciphertext, counter block starting at 1 (15 zero bytes, 0x01);
 * - `hmac`: hex of the HMAC (`digest`, default SHA256) of the ciphertext, as a string or, from
 *   Python 3 clients, as a binary attribute holding the hex text.
 * The HMAC is checked before the contents are decrypted: a mismatch is an integrity error.
 */
import { createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { KMSClient } from '@aws-sdk/client-kms';
import { DynamoDBDocumentClient, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { dynamoClient, kmsClient } from '../backends/aws';
import { AppError, fromAwsError } from '../core/errors';
import type { ImportSource, SourceSecret, SourceValue, SourceVersion } from './import-source';

export const DEFAULT_CREDSTASH_TABLE = 'credential-store';

/** credstash's digest names, as its `digest` attribute holds them, to Node's. */
const DIGESTS: Record<string, string> = {
  SHA: 'sha1',
  SHA224: 'sha224',
  SHA256: 'sha256',
  SHA384: 'sha384',
  SHA512: 'sha512',
  MD5: 'md5',
  RIPEMD: 'ripemd160',
};
const COUNTER_START = Buffer.concat([Buffer.alloc(15), Buffer.from([1])]);

export interface CredstashOptions {
  table: string;
  context: Record<string, string>;
  history: boolean;
  region?: string;
}

interface CredstashItem {
  name?: unknown;
  version?: unknown;
  key?: unknown;
  contents?: unknown;
  hmac?: unknown;
  digest?: unknown;
}

/** credstash's order of versions: DynamoDB's order of strings (UTF-8 bytes), not numbers. */
const compareVersions = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

export class CredstashSource implements ImportSource {
  readonly versioned = true;
  private readonly dynamo: DynamoDBClient;
  private readonly doc: DynamoDBDocumentClient;
  private readonly kms: KMSClient;

  constructor(private readonly opts: CredstashOptions) {
    this.dynamo = dynamoClient({ region: opts.region });
    this.doc = DynamoDBDocumentClient.from(this.dynamo);
    this.kms = kmsClient({ region: opts.region });
  }

  async list(): Promise<SourceSecret[]> {
    const versions = new Map<string, string[]>();
    let startKey: Record<string, unknown> | undefined;
    do {
      try {
        const page = await this.doc.send(
          new ScanCommand({
            TableName: this.opts.table,
            ProjectionExpression: '#n, #v',
            ExpressionAttributeNames: { '#n': 'name', '#v': 'version' },
            ExclusiveStartKey: startKey,
          }),
        );
        for (const i of (page.Items ?? []) as CredstashItem[]) {
          if (typeof i.name !== 'string' || typeof i.version !== 'string') continue;
          versions.set(i.name, [...(versions.get(i.name) ?? []), i.version]);
        }
        startKey = page.LastEvaluatedKey;
      } catch (err) {
        throw fromAwsError(err, `scanning credstash table ${this.opts.table}`);
      }
    } while (startKey);
    return [...versions.entries()]
      .sort(([a], [b]) => compareVersions(a, b))
      .map(([name, vs]) => {
        const ordered = vs.sort(compareVersions);
        return {
          source: `credstash:${this.opts.table}/${name}`,
          relativeName: name,
          versions: (this.opts.history ? ordered : ordered.slice(-1)).map((v) => ({
            source: `credstash:${this.opts.table}/${name}#${v}`,
          })),
        };
      });
  }

  async read(secret: SourceSecret, versions: SourceVersion[]): Promise<SourceValue[]> {
    const items = await this.items(secret.relativeName);
    const out: SourceValue[] = [];
    for (const v of versions) {
      const version = v.source.slice(v.source.lastIndexOf('#') + 1);
      const item = items.get(version);
      if (!item) throw new AppError('not_found', `${v.source} is no longer in the table`);
      out.push({ bytes: await this.open(item, v.source), binary: false });
    }
    return out;
  }

  close(): void {
    this.dynamo.destroy();
    this.kms.destroy();
  }

  private async items(name: string): Promise<Map<string, CredstashItem>> {
    const found = new Map<string, CredstashItem>();
    let startKey: Record<string, unknown> | undefined;
    do {
      try {
        const page = await this.doc.send(
          new QueryCommand({
            TableName: this.opts.table,
            KeyConditionExpression: '#n = :n',
            ExpressionAttributeNames: { '#n': 'name' },
            ExpressionAttributeValues: { ':n': name },
            ConsistentRead: true,
            ExclusiveStartKey: startKey,
          }),
        );
        for (const i of (page.Items ?? []) as CredstashItem[])
          if (typeof i.version === 'string') found.set(i.version, i);
        startKey = page.LastEvaluatedKey;
      } catch (err) {
        throw fromAwsError(err, `reading credstash ${name}`);
      }
    } while (startKey);
    return found;
  }

  /** Unwrap the key, verify the HMAC, and only then decrypt. Messages never hold key or value bytes. */
  private async open(item: CredstashItem, what: string): Promise<Buffer> {
    const digest = item.digest === undefined ? 'sha256' : DIGESTS[String(item.digest)];
    if (!digest) throw new AppError('integrity', `${what} uses digest ${JSON.stringify(item.digest)}, not supported`);
    if (typeof item.key !== 'string' || typeof item.contents !== 'string')
      throw new AppError('integrity', `integrity check failed on ${what}: key or contents missing`);
    const hmacHex =
      typeof item.hmac === 'string'
        ? item.hmac
        : item.hmac instanceof Uint8Array
          ? Buffer.from(item.hmac).toString('latin1')
          : undefined;
    if (hmacHex === undefined || !/^(?:[0-9a-fA-F]{2})+$/.test(hmacHex))
      throw new AppError('integrity', `integrity check failed on ${what}: no valid hmac`);
    const key = await this.decryptKey(Buffer.from(item.key, 'base64'), what);
    try {
      if (key.length !== 64)
        throw new AppError('integrity', `integrity check failed on ${what}: the key is not 64 bytes`);
      const ciphertext = Buffer.from(item.contents, 'base64');
      const expected = Buffer.from(hmacHex, 'hex');
      const actual = createHmac(digest, key.subarray(32)).update(ciphertext).digest();
      if (actual.length !== expected.length || !timingSafeEqual(actual, expected))
        throw new AppError('integrity', `integrity check failed on ${what}: HMAC mismatch`);
      const decipher = createDecipheriv('aes-256-ctr', key.subarray(0, 32), COUNTER_START);
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    } finally {
      key.fill(0);
    }
  }

  private async decryptKey(blob: Buffer, what: string): Promise<Buffer> {
    const { DecryptCommand } = require('@aws-sdk/client-kms') as typeof import('@aws-sdk/client-kms');
    try {
      const out = await this.kms.send(
        new DecryptCommand({
          CiphertextBlob: blob,
          EncryptionContext: Object.keys(this.opts.context).length > 0 ? this.opts.context : undefined,
        }),
      );
      return Buffer.from(out.Plaintext ?? []);
    } catch (err) {
      if ((err as Error).name === 'InvalidCiphertextException')
        throw new AppError(
          'integrity',
          `KMS would not decrypt the key of ${what}: wrong or missing --context, or the item was altered`,
        );
      throw fromAwsError(err, `decrypting the key of ${what}`);
    }
  }
}
