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
  UpdateCommand,
  paginateQuery,
  paginateScan,
} from '@aws-sdk/lib-dynamodb';
import { randomBytes, randomInt } from 'node:crypto';
import {
  CHANGES_NAME,
  type ChangeKind,
  type ChangeLog,
  type NewChange,
  appendChanges,
  parseChangeItem,
  seqOf,
} from './changes';
import { AppError, fromAwsError } from './errors';
import { isMetaName } from './names';

/** The `Format` of every item this project writes (absent: written by the original). */
export const RECORD_FORMAT = 2;

/** How many times a new version retries when another writer took its serial. */
const MAX_CLAIM_ATTEMPTS = 100;
/** How many times a change-record update retries when another writer went first. */
const MAX_CHANGE_ATTEMPTS = 200;
/** How many failed change-record updates in a row (timeouts, throttling) end the attempt. */
const MAX_CHANGE_FAILURES = 3;

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
  /** Document items (see StoreOptions.isDocument): the encrypted document text; encryptedData is then empty. */
  document?: string;
  /** Document items: the table's MAC of the document (config/document-mac.ts); absent on older items. */
  documentMac?: string;
  /** Who wrote the version (an ARN, or `local:<user>`); set by putNew from the store's principal. */
  createdBy?: string;
  revokedBy?: string;
  /** A rollback's copy: the serial whose payload this version repeats. */
  restoredFrom?: number;
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
  // Optional: absent on the original's records, and then absent from `history` too.
  createdBy?: string;
  revokedAt?: string;
  revokedBy?: string;
  source?: string;
  sourceAuthor?: string;
  sourceCreatedAt?: string;
  restoredFrom?: number;
  labels?: string[];
}

/** The per-name item that holds labels (core/labels.ts): never a version, since serials start at 1. */
export const LABEL_SERIAL = 0;

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
  DocumentMac?: string;
  CreatedBy?: string;
  RevokedBy?: string;
  RestoredFrom?: number;
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

export interface StoreOptions {
  /**
   * Which names hold a document (attribute Document) rather than a sealed payload: their items
   * need Active, and Document while active, instead of the ciphertext attributes. The kinds of
   * item other than secrets are their owners' business (config/documents-service.ts).
   */
  isDocument?: (name: string) => boolean;
}

/** How claimNextSerial claims. */
export interface ClaimOptions {
  /** The serial expected to be next (the caller wrote the one before): tried without reading first. */
  expected?: number;
  /** false: the caller notes the change itself, once for several versions (an import). */
  noteChange?: boolean;
}

export class SecretStore {
  readonly doc: DynamoDBDocumentClient;
  readonly isDocument: (name: string) => boolean;
  /** Who is writing (core/identity.ts), recorded as CreatedBy and RevokedBy; undefined: not recorded. */
  principal: () => Promise<string | undefined> = async () => undefined;
  /**
   * Told when a write succeeded but the change record could not follow: the write stands (failing
   * it would invite a retry that stores the value twice); watching daemons see it within their TTL.
   */
  onChangeNotRecorded: (message: string) => void = (message) => process.stderr.write(`warning: ${message}\n`);

  constructor(
    client: DynamoDBClient,
    readonly table: string,
    opts: StoreOptions = {},
  ) {
    this.doc = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
    this.isDocument = opts.isDocument ?? (() => false);
  }

  /** Write a new version; false if (Name, Serial) already exists (another writer won it). */
  async putNew(item: SecretItem): Promise<boolean> {
    const createdBy = item.createdBy ?? (await this.principal());
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: toRaw({ ...item, createdBy }),
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

  /**
   * Store a new version of `name` under the next serial: the latest + 1, claimed by a conditional
   * put. When another writer claims it first we re-read the latest and try again, so concurrent
   * writers never overwrite each other. `build` makes the item for a serial (a secret's payload is
   * sealed again for each serial tried, since the serial is in its AAD). `what` names the thing in
   * the error ("db.password", "configuration team-a/api").
   */
  async claimNextSerial(
    name: string,
    build: (serial: number) => SecretItem,
    what: string,
    opts: ClaimOptions = {},
  ): Promise<number> {
    // A writer that knows what comes next (it just wrote the serial before) tries it first and
    // saves a read; the put is conditional all the same, so a wrong guess only costs the retry.
    let serial = opts.expected ?? (await this.latestSerial(name)) + 1;
    for (let attempt = 1; attempt <= MAX_CLAIM_ATTEMPTS; attempt++) {
      if (await this.putNew(build(serial))) {
        if (opts.noteChange !== false) await this.noteChange(name, 'version');
        return serial;
      }
      // Lost the race: jitter a little so a crowd of writers spreads out, then re-read the end.
      await new Promise((r) => setTimeout(r, randomInt(0, Math.min(50, 2 * attempt) + 1)));
      serial = Math.max(serial + 1, (await this.latestSerial(name)) + 1);
    }
    throw new AppError('conflict', `could not store a new version of ${what}: too many concurrent writers, try again`);
  }

  /** The highest serial of a name, active or not; 0 when there is none. */
  async latestSerial(name: string): Promise<number> {
    const out = await this.query(name, { Limit: 1, ProjectionExpression: '#n, #s' }, `reading ${name}`);
    return out.items[0] ? checkSerial(this.table, out.items[0]) : 0;
  }

  /**
   * The newest active version, skipping revoked ones (the original returned a revoked latest).
   * `skip` active versions are passed over first: 1 gives `previous`.
   */
  async latestActive(name: string, skip = 0): Promise<SecretItem | undefined> {
    let startKey: Record<string, unknown> | undefined;
    let toSkip = skip;
    do {
      // Small pages: the newest version is almost always active, so one round trip reads one item.
      const page = await this.query(name, { Limit: 4, ExclusiveStartKey: startKey }, `reading ${name}`);
      // Each item is checked before its Active is believed: an Active of the wrong type must not
      // make a revoked version look active, or the other way round.
      const hit = page.items.find((i) => checkItem(this, i).active && toSkip-- === 0);
      if (hit) return checkItem(this, hit);
      startKey = page.lastKey;
    } while (startKey);
    return undefined;
  }

  async get(name: string, serial: number): Promise<SecretItem | undefined> {
    try {
      const out = await this.doc.send(
        new GetCommand({ TableName: this.table, Key: { Name: name, Serial: serial }, ConsistentRead: true }),
      );
      return out.Item ? checkItem(this, out.Item as RawItem) : undefined;
    } catch (err) {
      throw fromAwsError(err, `reading ${name} serial ${serial}`);
    }
  }

  /**
   * Mark a version revoked. Conditional on the item existing, so revoking an unknown serial writes
   * nothing (the original's unconditional update created a phantom item). Idempotent.
   */
  async revoke(name: string, serial: number): Promise<void> {
    const by = await this.principal();
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { Name: name, Serial: serial },
          // The first revoke's time and author stay: a repeated revoke changes nothing.
          UpdateExpression: `SET #a = :f, #r = if_not_exists(#r, :now)${by === undefined ? '' : ', #b = if_not_exists(#b, :by)'}`,
          ConditionExpression: 'attribute_exists(#n)',
          ExpressionAttributeNames: {
            '#a': 'Active',
            '#r': 'RevokedAt',
            '#n': 'Name',
            ...(by === undefined ? {} : { '#b': 'RevokedBy' }),
          },
          ExpressionAttributeValues: {
            ':f': false,
            ':now': new Date().toISOString(),
            ...(by === undefined ? {} : { ':by': by }),
          },
        }),
      );
    } catch (err) {
      if ((err as Error).name === 'ConditionalCheckFailedException')
        throw new AppError('not_found', `secret ${name} has no serial ${serial}`);
      throw fromAwsError(err, `revoking ${name} serial ${serial}`);
    }
    await this.noteChange(name, 'revoke', serial);
  }

  /**
   * Every write path ends here once its write succeeded (new versions, revokes, label moves, and
   * through them rollback, rotate, import and configuration documents): the change record
   * (core/changes.ts) gets the name and the kind of change. Documents (isDocument) are kind
   * `config` whatever the write. A failure is reported once and never fails the write: it is
   * stored, and failing it would invite a retry that stores the value twice; watching daemons then
   * see it when their TTL runs out.
   */
  async noteChange(name: string, kind: ChangeKind, serial?: number): Promise<void> {
    try {
      const change: NewChange = { name, kind: this.isDocument(name) ? 'config' : kind };
      await this.queueChange(serial === undefined ? change : { ...change, serial });
    } catch (err) {
      this.onChangeNotRecorded(
        `${name} was written, but the change record could not be updated (${(err as Error).message}): watching daemons will see the change within their cache TTL`,
      );
    }
  }

  /** The change record, with one strongly consistent GetItem (what a watching daemon reads per interval). */
  async readChanges(): Promise<ChangeLog> {
    try {
      const out = await this.doc.send(
        new GetCommand({ TableName: this.table, Key: { Name: CHANGES_NAME, Serial: 0 }, ConsistentRead: true }),
      );
      return parseChangeItem(out.Item);
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw fromAwsError(err, 'reading the change record');
    }
  }

  /** The record as this process last wrote it. */
  private lastChanges: ChangeLog | undefined;

  /**
   * Changes noted while an update of the record is under way wait for it, then go together in the
   * next one: a process writing many versions at once (an import) updates the record once per
   * round trip instead of racing itself for every version.
   */
  private readonly pendingChanges: Array<{ change: NewChange; settle: (err?: unknown) => void }> = [];
  private appending = false;

  private queueChange(change: NewChange): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pendingChanges.push({ change, settle: (err) => (err === undefined ? resolve() : reject(err)) });
      if (!this.appending) void this.drainChanges();
    });
  }

  private async drainChanges(): Promise<void> {
    this.appending = true;
    while (this.pendingChanges.length > 0) {
      const batch = this.pendingChanges.splice(0);
      let failure: unknown;
      try {
        await this.appendChanges(batch.map((b) => b.change));
      } catch (err) {
        failure = err ?? new Error('change record update failed');
      }
      for (const b of batch) b.settle(failure);
    }
    this.appending = false;
  }

  /**
   * Append changes with one put conditional on the sequence read, like label moves: two
   * concurrent writers never lose one another's entries; the loser re-reads and tries again. A
   * put whose answer is lost (a timeout, or the SDK retrying a put that had landed) is checked by
   * the first entry's random id before trying again, so no write is ever counted twice.
   */
  private async appendChanges(changes: readonly NewChange[]): Promise<void> {
    const id = randomBytes(9).toString('base64url');
    const mine = changes.map((c, i) => ({ ...c, id: `${id}.${i}` }));
    let failures = 0;
    for (let attempt = 1; attempt <= MAX_CHANGE_ATTEMPTS; attempt++) {
      // First try on top of what this process last wrote (no read while it is the only writer);
      // a conditional failure means someone else wrote since: read, and check our own put did not land.
      const remembered = attempt === 1 ? this.lastChanges : undefined;
      const log = remembered ?? (await this.readChanges());
      if (!remembered && seqOf(log, mine[mine.length - 1].id as string) !== undefined) return;
      const next = appendChanges(log, mine);
      const first = log.seq === 0;
      try {
        await this.doc.send(
          new PutCommand({
            TableName: this.table,
            Item: { Name: CHANGES_NAME, Serial: 0, ...next },
            ConditionExpression: first ? 'attribute_not_exists(#n)' : 'ChangeSeq = :seq',
            ExpressionAttributeNames: first ? { '#n': 'Name' } : undefined,
            ExpressionAttributeValues: first ? undefined : { ':seq': log.seq },
          }),
        );
        this.lastChanges = { seq: next.ChangeSeq, changes: next.Changes };
        return;
      } catch (err) {
        if ((err as Error).name !== 'ConditionalCheckFailedException' && ++failures >= MAX_CHANGE_FAILURES)
          throw fromAwsError(err, 'updating the change record');
      }
      // Another writer went first (or the answer was lost): spread out a little, then look again.
      await new Promise((r) => setTimeout(r, randomInt(0, Math.min(50, 2 * attempt) + 1)));
    }
    throw new AppError('conflict', 'could not update the change record: too many concurrent writers');
  }

  /** Every version of a name, oldest first, without the encrypted fields. */
  async history(name: string): Promise<VersionInfo[]> {
    const versions: VersionInfo[] = [];
    const pages = this.queryAll(
      name,
      {
        ScanIndexForward: true,
        ProjectionExpression:
          '#n, #s, Active, CreatedAt, CreatedBy, RevokedAt, RevokedBy, RestoredFrom, #src, SourceAuthor, SourceCreatedAt',
      },
      `reading the history of ${name}`,
    );
    for await (const items of pages) {
      for (const i of items) {
        const c = checkItem(this, i, [
          'Serial',
          'Active',
          'CreatedAt',
          'CreatedBy',
          'RevokedAt',
          'RevokedBy',
          'RestoredFrom',
          ...SOURCE_ATTRIBUTES,
        ]);
        // The original's records have only serial, active and createdAt (null): printed as before.
        versions.push({
          serial: c.serial,
          active: c.active,
          createdAt: c.createdAt ?? null,
          createdBy: c.createdBy,
          revokedAt: c.revokedAt,
          revokedBy: c.revokedBy,
          source: c.source,
          sourceAuthor: c.sourceAuthor,
          sourceCreatedAt: c.sourceCreatedAt,
          restoredFrom: c.restoredFrom,
        });
      }
    }
    return versions;
  }

  /** The `Source` of every imported version of a name: what an import has already written. */
  async sources(name: string): Promise<{ recorded: Set<string>; latestSerial: number }> {
    const found = new Set<string>();
    let latestSerial = 0;
    const pages = this.queryAll(
      name,
      { ProjectionExpression: '#n, #s, #src' },
      `reading the imported versions of ${name}`,
    );
    for await (const items of pages)
      for (const i of items) {
        const { serial, source } = checkItem(this, i, ['Serial', 'Source']);
        if (source !== undefined) found.add(source);
        latestSerial = Math.max(latestSerial, serial);
      }
    return { recorded: found, latestSerial };
  }

  /**
   * All names with their highest serial, by a paginated scan of the keys only. `consistent`: a
   * strongly consistent scan, for a caller that acts on a name's absence (an import writes serial 1
   * of a name the scan did not find without reading it again).
   */
  async listNames(opts: { consistent?: boolean } = {}): Promise<Array<{ name: string; latestSerial: number }>> {
    const latest = new Map<string, number>();
    try {
      const pages = paginateScan(
        { client: this.doc },
        {
          TableName: this.table,
          ProjectionExpression: '#n, #s',
          ExpressionAttributeNames: { '#n': 'Name', '#s': 'Serial' },
          ...(opts.consistent ? { ConsistentRead: true } : {}),
        },
      );
      // Label items are no versions, and the application's own records (the change record) no secrets.
      for await (const page of pages)
        for (const i of (page.Items ?? []) as RawItem[])
          if (i.Serial !== LABEL_SERIAL && !isMetaName(i.Name))
            latest.set(i.Name, Math.max(latest.get(i.Name) ?? 0, checkSerial(this.table, i)));
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

  /** The versions of one name, newest first unless `extra` says otherwise. */
  private queryInput(name: string, extra: Partial<QueryCommandInput>): QueryCommandInput {
    return {
      TableName: this.table,
      // Versions only: the label item (Serial 0) is no version, in any order or page.
      KeyConditionExpression: '#n = :n AND #s >= :first',
      ExpressionAttributeNames: {
        '#n': 'Name',
        '#s': 'Serial',
        // `Source` is a DynamoDB reserved word.
        ...(extra.ProjectionExpression?.includes('#src') ? { '#src': 'Source' } : {}),
      },
      ExpressionAttributeValues: { ':n': name, ':first': 1 },
      ScanIndexForward: false,
      ConsistentRead: true,
      ...extra,
    };
  }

  /** One page: for reads that stop early by their own Limit (the latest version, the next active one). */
  private async query(
    name: string,
    extra: Partial<QueryCommandInput>,
    what: string,
  ): Promise<{ items: RawItem[]; lastKey?: Record<string, unknown> }> {
    try {
      const out = await this.doc.send(new QueryCommand(this.queryInput(name, extra)));
      return { items: (out.Items ?? []) as RawItem[], lastKey: out.LastEvaluatedKey };
    } catch (err) {
      throw fromAwsError(err, what);
    }
  }

  /** Every page, each page's items as they come. */
  private async *queryAll(name: string, extra: Partial<QueryCommandInput>, what: string): AsyncGenerator<RawItem[]> {
    try {
      for await (const page of paginateQuery({ client: this.doc }, this.queryInput(name, extra)))
        yield (page.Items ?? []) as RawItem[];
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
    DocumentMac: i.documentMac,
    CreatedBy: i.createdBy,
    RevokedBy: i.revokedBy,
    RestoredFrom: i.restoredFrom,
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
  | 'DocumentMac'
  | 'CreatedBy'
  | 'RevokedBy'
  | 'RestoredFrom'
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
  'DocumentMac',
  'CreatedBy',
  'RevokedBy',
  'RestoredFrom',
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
  // Document items hold their text here instead of EncryptedData.
  Document: { type: 'string', required: false },
  DocumentMac: { type: 'string', required: false },
  CreatedBy: { type: 'string', required: false },
  RevokedBy: { type: 'string', required: false },
  RestoredFrom: { type: 'number', required: false },
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

function checkItem(
  store: Pick<SecretStore, 'table' | 'isDocument'>,
  r: RawItem,
  attrs: readonly Checked[] = ALL_CHECKED,
): SecretItem {
  const table = store.table;
  const serial = checkSerial(table, r);
  for (const a of attrs) {
    if (a === 'Serial') continue;
    const v = (r as unknown as Record<string, unknown>)[a];
    const want = EXPECTED[a];
    if (v === undefined) {
      // A revoked version is never decrypted, and the original's revoke of an unknown serial left
      // phantom items with only Name, Serial and Active=false: the ciphertext may be missing there.
      const ciphertext = a === 'EncryptedData' || a === 'EncryptedDataKey';
      const document = typeof r.Name === 'string' && store.isDocument(r.Name);
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
    documentMac: r.DocumentMac,
    createdBy: r.CreatedBy,
    revokedBy: r.RevokedBy,
    restoredFrom: r.RestoredFrom,
    source: r.Source,
    sourceAuthor: r.SourceAuthor,
    sourceCreatedAt: r.SourceCreatedAt,
  };
}
