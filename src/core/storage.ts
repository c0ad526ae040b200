/**
 * The DynamoDB table: one item per (Name, Serial) version, in the original's layout plus
 * Format/CreatedAt/RevokedAt. This module knows items and conditions, nothing of encryption.
 */
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { AppError, fromAwsError } from './errors';

/** A stored version, as the table holds it. `format` undefined = written by the original. */
export interface SecretItem {
  name: string;
  serial: number;
  encryptedData: string;
  encryptedDataKey: string;
  active: boolean;
  format?: number;
  createdAt?: string;
  revokedAt?: string;
  /** Item attribute `Binary` (BOOL): the payload is bytes, shown as base64. Absent on text secrets. */
  binary?: boolean;
  /** Configuration documents (`config/` names): the encrypted SOPS text; encryptedData is then empty. */
  document?: string;
  /** Where an imported version came from (`ssm:/prod/db#3`), written with the version itself. */
  source?: string;
  /** The source's own author and date of that version, where it knows them. */
  sourceAuthor?: string;
  sourceCreatedAt?: string;
}

export interface VersionInfo {
  serial: number;
  active: boolean;
  createdAt: string | null;
  /** Imported versions only: absent on every other record, so their history reads as before. */
  source?: string;
  sourceAuthor?: string;
  sourceCreatedAt?: string;
}

interface RawItem {
  Name: string;
  Serial: number;
  EncryptedData?: string;
  EncryptedDataKey?: string;
  Active?: boolean;
  Format?: number;
  CreatedAt?: string;
  RevokedAt?: string;
  Binary?: boolean;
  Document?: string;
  Source?: string;
  SourceAuthor?: string;
  SourceCreatedAt?: string;
}

/** The table's keys, the original's layout: what setup's template and the embedded store create. */
export const TABLE_KEYS = {
  KeySchema: [
    { AttributeName: 'Name', KeyType: 'HASH' },
    { AttributeName: 'Serial', KeyType: 'RANGE' },
  ],
  AttributeDefinitions: [
    { AttributeName: 'Name', AttributeType: 'S' },
    { AttributeName: 'Serial', AttributeType: 'N' },
  ],
} satisfies Pick<CreateTableCommandInput, 'KeySchema' | 'AttributeDefinitions'>;

export class SecretStore {
  readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    readonly table: string,
  ) {
    this.doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  }

  /** Write a new version; false if (Name, Serial) already exists (another writer won it). */
  async putNew(item: SecretItem): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: toRaw(item),
          ConditionExpression: 'attribute_not_exists(#n)',
          ExpressionAttributeNames: { '#n': 'Name' },
        }),
      );
      return true;
    } catch (err) {
      if ((err as Error).name !== 'ConditionalCheckFailedException')
        throw fromAwsError(err, `writing a version of ${item.name}`);
      // The SDK retries a put whose answer was lost or late; if the first attempt did land, the
      // retry finds our own item. EncryptedData starts with a fresh random nonce, so an equal
      // value means this very write, not another writer's: report success, not a lost race
      // (which would store the same payload again under the next serial).
      const existing = await this.get(item.name, item.serial);
      // (Documents carry fresh random IVs the same way.)
      return existing?.encryptedData === item.encryptedData && existing?.document === item.document;
    }
  }

  /** The highest serial of a name, active or not; 0 when there is none. */
  async latestSerial(name: string): Promise<number> {
    const out = await this.query(name, { Limit: 1, ProjectionExpression: '#n, #s' }, `reading ${name}`);
    return out.items[0] ? checkSerial(this.table, out.items[0]) : 0;
  }

  /** The newest active version, skipping revoked ones (the original returned a revoked latest). */
  async latestActive(name: string): Promise<SecretItem | undefined> {
    let startKey: Record<string, unknown> | undefined;
    do {
      // Small pages: the newest version is almost always active, so one round trip reads one item.
      const page = await this.query(name, { Limit: 4, ExclusiveStartKey: startKey }, `reading ${name}`);
      // Each item is checked before its Active is believed: an Active of the wrong type must not
      // make a revoked version look active, or the other way round.
      const hit = page.items.find((i) => checkItem(this.table, i).active);
      if (hit) return fromRaw(this.table, hit);
      startKey = page.lastKey;
    } while (startKey);
    return undefined;
  }

  async get(name: string, serial: number): Promise<SecretItem | undefined> {
    try {
      const out = await this.doc.send(
        new GetCommand({ TableName: this.table, Key: { Name: name, Serial: serial }, ConsistentRead: true }),
      );
      return out.Item ? fromRaw(this.table, out.Item as RawItem) : undefined;
    } catch (err) {
      throw fromAwsError(err, `reading ${name} serial ${serial}`);
    }
  }

  /**
   * Mark a version revoked. Conditional on the item existing, so revoking an unknown serial writes
   * nothing (the original's unconditional update created a phantom item). Idempotent.
   */
  async revoke(name: string, serial: number): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { Name: name, Serial: serial },
          UpdateExpression: 'SET #a = :f, #r = if_not_exists(#r, :now)',
          ConditionExpression: 'attribute_exists(#n)',
          ExpressionAttributeNames: { '#a': 'Active', '#r': 'RevokedAt', '#n': 'Name' },
          ExpressionAttributeValues: { ':f': false, ':now': new Date().toISOString() },
        }),
      );
    } catch (err) {
      if ((err as Error).name === 'ConditionalCheckFailedException')
        throw new AppError('not_found', `secret ${name} has no serial ${serial}`);
      throw fromAwsError(err, `revoking ${name} serial ${serial}`);
    }
  }

  /** Every version of a name, oldest first, without the encrypted fields. */
  async history(name: string): Promise<VersionInfo[]> {
    const versions: VersionInfo[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.query(
        name,
        {
          ScanIndexForward: true,
          ProjectionExpression: '#n, #s, Active, CreatedAt, #src, SourceAuthor, SourceCreatedAt',
          ExclusiveStartKey: startKey,
        },
        `reading the history of ${name}`,
      );
      for (const i of page.items) {
        const { serial, active, createdAt, source, sourceAuthor, sourceCreatedAt } = checkItem(this.table, i, [
          'Serial',
          'Active',
          'CreatedAt',
          ...SOURCE_ATTRIBUTES,
        ]);
        versions.push({ serial, active, createdAt: createdAt ?? null, source, sourceAuthor, sourceCreatedAt });
      }
      startKey = page.lastKey;
    } while (startKey);
    return versions;
  }

  /** The `Source` of every imported version of a name: what an import has already written. */
  async sources(name: string): Promise<Set<string>> {
    const found = new Set<string>();
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.query(
        name,
        { ProjectionExpression: '#n, #s, #src', ExclusiveStartKey: startKey },
        `reading the imported versions of ${name}`,
      );
      for (const i of page.items) {
        const { source } = checkItem(this.table, i, ['Serial', 'Source']);
        if (source !== undefined) found.add(source);
      }
      startKey = page.lastKey;
    } while (startKey);
    return found;
  }

  /** All names with their highest serial, by a paginated scan of the keys only. */
  async listNames(): Promise<Array<{ name: string; latestSerial: number }>> {
    const latest = new Map<string, number>();
    let startKey: Record<string, unknown> | undefined;
    try {
      do {
        const page = await this.doc.send(
          new ScanCommand({
            TableName: this.table,
            ProjectionExpression: '#n, #s',
            ExpressionAttributeNames: { '#n': 'Name', '#s': 'Serial' },
            ExclusiveStartKey: startKey,
          }),
        );
        for (const i of (page.Items ?? []) as RawItem[])
          latest.set(i.Name, Math.max(latest.get(i.Name) ?? 0, checkSerial(this.table, i)));
        startKey = page.LastEvaluatedKey;
      } while (startKey);
    } catch (err) {
      throw fromAwsError(err, 'listing secrets');
    }
    return [...latest.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, latestSerial]) => ({ name, latestSerial }));
  }

  /** Confirms the table exists and is reachable (health checks). */
  async describe(): Promise<void> {
    try {
      await this.doc.send(new DescribeTableCommand({ TableName: this.table }));
    } catch (err) {
      throw fromAwsError(err, `describing table ${this.table}`);
    }
  }

  /** Create the table if it is missing (embedded backend only: on AWS, setup's stack owns it). */
  async ensureTable(): Promise<void> {
    try {
      const out = await this.doc.send(new DescribeTableCommand({ TableName: this.table }));
      if (out.Table?.TableStatus === 'ACTIVE') return;
    } catch (err) {
      if ((err as Error).name !== 'ResourceNotFoundException')
        throw fromAwsError(err, `describing table ${this.table}`);
      try {
        await this.doc.send(
          new CreateTableCommand({
            TableName: this.table,
            ...TABLE_KEYS,
            BillingMode: 'PAY_PER_REQUEST',
          }),
        );
      } catch (createErr) {
        // Another process created it first: fine, wait for it below.
        if ((createErr as Error).name !== 'ResourceInUseException')
          throw fromAwsError(createErr, `creating table ${this.table}`);
      }
    }
    for (let i = 0; i < 100; i++) {
      const out = await this.doc.send(new DescribeTableCommand({ TableName: this.table }));
      if (out.Table?.TableStatus === 'ACTIVE') return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new AppError('unavailable', `table ${this.table} did not become ACTIVE`);
  }

  private async query(
    name: string,
    extra: Partial<QueryCommandInput>,
    what: string,
  ): Promise<{ items: RawItem[]; lastKey?: Record<string, unknown> }> {
    try {
      const out = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: '#n = :n',
          ExpressionAttributeNames: {
            '#n': 'Name',
            ...(extra.ProjectionExpression?.includes('#s') ? { '#s': 'Serial' } : {}),
            // `Source` is a DynamoDB reserved word.
            ...(extra.ProjectionExpression?.includes('#src') ? { '#src': 'Source' } : {}),
          },
          ExpressionAttributeValues: { ':n': name },
          ScanIndexForward: false,
          ConsistentRead: true,
          ...extra,
        }),
      );
      return { items: (out.Items ?? []) as RawItem[], lastKey: out.LastEvaluatedKey };
    } catch (err) {
      throw fromAwsError(err, what);
    }
  }
}

function toRaw(i: SecretItem): RawItem {
  return {
    Name: i.name,
    Serial: i.serial,
    EncryptedData: i.encryptedData || undefined,
    EncryptedDataKey: i.encryptedDataKey || undefined,
    Active: i.active,
    Format: i.format,
    CreatedAt: i.createdAt,
    RevokedAt: i.revokedAt,
    // Only on binary items: text items keep exactly the attributes they had before binary existed.
    Binary: i.binary === true ? true : undefined,
    Document: i.document,
    Source: i.source,
    SourceAuthor: i.sourceAuthor,
    SourceCreatedAt: i.sourceCreatedAt,
  };
}

/**
 * Items are read back as data someone else may have written (a migration script, a console edit,
 * another tool): a wrong type or a missing attribute is an integrity error naming the item and the
 * attribute, never a wrong serial, a revoked version taken for active, or an "internal" 500. Values
 * are never quoted but the key's: an attribute may hold ciphertext.
 */
type Checked =
  | 'Serial'
  | 'Active'
  | 'EncryptedData'
  | 'EncryptedDataKey'
  | 'Format'
  | 'CreatedAt'
  | 'RevokedAt'
  | 'Binary'
  | 'Document'
  | 'Source'
  | 'SourceAuthor'
  | 'SourceCreatedAt';
const SOURCE_ATTRIBUTES = ['Source', 'SourceAuthor', 'SourceCreatedAt'] as const;
const ALL_CHECKED: readonly Checked[] = [
  'Serial',
  'Active',
  'EncryptedData',
  'EncryptedDataKey',
  'Format',
  'CreatedAt',
  'RevokedAt',
  'Binary',
  'Document',
  ...SOURCE_ATTRIBUTES,
];
const EXPECTED: Record<Checked, { type: string; required: boolean }> = {
  Serial: { type: 'number', required: true },
  Active: { type: 'boolean', required: true },
  EncryptedData: { type: 'string', required: true },
  EncryptedDataKey: { type: 'string', required: true },
  Format: { type: 'number', required: false },
  CreatedAt: { type: 'string', required: false },
  RevokedAt: { type: 'string', required: false },
  Binary: { type: 'boolean', required: false },
  // Configuration documents (`config/` names) hold their SOPS text here instead of EncryptedData.
  Document: { type: 'string', required: false },
  Source: { type: 'string', required: false },
  SourceAuthor: { type: 'string', required: false },
  SourceCreatedAt: { type: 'string', required: false },
};
const DYNAMO_TYPE: Record<string, string> = { number: 'N', boolean: 'BOOL', string: 'S' };

function malformed(table: string, r: RawItem, why: string): AppError {
  const serial = typeof r.Serial === 'number' ? String(r.Serial) : '?';
  return new AppError(
    'integrity',
    `integrity check failed: malformed item in table ${table} (Name ${JSON.stringify(String(r.Name))}, Serial ${serial}): ${why}`,
  );
}

/** The DynamoDB type of an unmarshalled value, for messages ("S", "N", "BOOL", "L", "M", ...). */
function typeOf(v: unknown): string {
  if (Array.isArray(v)) return 'L';
  if (v instanceof Set) return 'a set';
  if (v instanceof Uint8Array) return 'B';
  if (v === null) return 'NULL';
  return DYNAMO_TYPE[typeof v] ?? 'M';
}

function checkSerial(table: string, r: RawItem): number {
  const serial = r.Serial as unknown;
  if (typeof serial !== 'number') throw malformed(table, r, `Serial is ${typeOf(serial)}, expected N`);
  if (!Number.isSafeInteger(serial) || serial < 1) throw malformed(table, r, 'Serial is not a whole number from 1 up');
  return serial;
}

function checkItem(table: string, r: RawItem, attrs: readonly Checked[] = ALL_CHECKED): SecretItem {
  const serial = checkSerial(table, r);
  for (const a of attrs) {
    if (a === 'Serial') continue;
    const v = (r as unknown as Record<string, unknown>)[a];
    const want = EXPECTED[a];
    if (v === undefined) {
      // A revoked version is never decrypted, and the original's revoke of an unknown serial left
      // phantom items with only Name, Serial and Active=false: the ciphertext may be missing there.
      const ciphertext = a === 'EncryptedData' || a === 'EncryptedDataKey';
      const document = typeof r.Name === 'string' && r.Name.startsWith('config/');
      const required = document
        ? a === 'Active' || (a === 'Document' && r.Active !== false)
        : want.required && !(r.Active === false && ciphertext);
      if (required) throw malformed(table, r, `attribute ${a} is missing`);
    } else if (typeof v !== want.type) {
      throw malformed(table, r, `attribute ${a} is ${typeOf(v)}, expected ${DYNAMO_TYPE[want.type]}`);
    }
  }
  if (r.Format !== undefined && !Number.isSafeInteger(r.Format))
    throw malformed(table, r, 'Format is not a whole number');
  return {
    name: r.Name,
    serial,
    encryptedData: r.EncryptedData ?? '',
    encryptedDataKey: r.EncryptedDataKey ?? '',
    active: r.Active === true,
    format: r.Format,
    createdAt: r.CreatedAt,
    revokedAt: r.RevokedAt,
    binary: r.Binary === true ? true : undefined,
    document: r.Document,
    source: r.Source,
    sourceAuthor: r.SourceAuthor,
    sourceCreatedAt: r.SourceCreatedAt,
  };
}

function fromRaw(table: string, r: RawItem): SecretItem {
  return checkItem(table, r);
}
