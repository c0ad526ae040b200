/**
 * The change record: one item per application (Name `meta/changes`, Serial 0) that every write
 * updates, so a daemon learns of every change by reading this one item instead of re-reading
 * every cached secret. It holds a sequence number (`ChangeSeq`, +1 per write) and the last
 * MAX_CHANGES changes (`Changes`: sequence, name, kind, and the serial a revoke made inactive),
 * never a value. Updates are conditional on the sequence read, like label moves: two concurrent
 * writers never lose one another's entry; the loser re-reads and tries again.
 */
import { randomInt } from 'node:crypto';
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { AppError, fromAwsError } from './errors';

/** The item's Name: `/` is no secret-name character, and `meta/` is no configuration prefix. */
export const CHANGES_NAME = 'meta/changes';
/**
 * Changes kept: a daemon that misses more than this between two reads drops its whole cache.
 * 200 entries of at most ~300 bytes stay far below DynamoDB's 400 KB item limit.
 */
export const MAX_CHANGES = 200;
const MAX_ATTEMPTS = 200;

/** version: a new version; revoke: `serial` made inactive; label: a label moved; config: a document pushed or revoked. */
export type ChangeKind = 'version' | 'revoke' | 'label' | 'config';

export interface Change {
  seq: number;
  name: string;
  kind: ChangeKind;
  /** The revoked serial (kind revoke, or config revokes). */
  serial?: number;
}

export interface ChangeLog {
  /** 0 when nothing has been recorded yet. */
  seq: number;
  changes: Change[];
}

/** Where the record lives: the table of a SecretStore. */
interface Table {
  doc: DynamoDBDocumentClient;
  table: string;
}

/** Read the record with one strongly consistent GetItem. */
export async function readChanges(t: Table): Promise<ChangeLog> {
  let item: Record<string, unknown> | undefined;
  try {
    item = (
      await t.doc.send(
        new GetCommand({ TableName: t.table, Key: { Name: CHANGES_NAME, Serial: 0 }, ConsistentRead: true }),
      )
    ).Item;
  } catch (err) {
    throw fromAwsError(err, 'reading the change record');
  }
  if (!item) return { seq: 0, changes: [] };
  const { ChangeSeq: seq, Changes: changes } = item;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1 || !Array.isArray(changes))
    throw new AppError('integrity', `integrity check failed: the change record (${CHANGES_NAME}) is malformed`);
  return { seq, changes: changes.filter(isChange) };
}

function isChange(c: unknown): c is Change {
  const x = c as Change;
  return typeof x === 'object' && x !== null && typeof x.seq === 'number' && typeof x.name === 'string';
}

/** Append one change: the one function every write path calls, after its own write succeeded. */
export async function recordChange(t: Table, name: string, kind: ChangeKind, serial?: number): Promise<number> {
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const { seq, changes } = await readChanges(t);
    const next = seq + 1;
    const entry: Change = serial === undefined ? { seq: next, name, kind } : { seq: next, name, kind, serial };
    try {
      await t.doc.send(
        new PutCommand({
          TableName: t.table,
          Item: { Name: CHANGES_NAME, Serial: 0, ChangeSeq: next, Changes: [...changes, entry].slice(-MAX_CHANGES) },
          ConditionExpression: seq === 0 ? 'attribute_not_exists(#n)' : 'ChangeSeq = :seq',
          ExpressionAttributeNames: seq === 0 ? { '#n': 'Name' } : undefined,
          ExpressionAttributeValues: seq === 0 ? undefined : { ':seq': seq },
        }),
      );
      return next;
    } catch (err) {
      if ((err as Error).name !== 'ConditionalCheckFailedException')
        throw fromAwsError(err, 'updating the change record');
    }
    // Another writer went first: spread out a little, then append to its result.
    await new Promise((r) => setTimeout(r, randomInt(0, Math.min(50, 2 * attempt) + 1)));
  }
  throw new AppError('conflict', 'could not update the change record: too many concurrent writers');
}

/**
 * What a reader at `since` must drop: the names changed after it, or 'all' when the record no
 * longer reaches back that far (more than MAX_CHANGES changes were missed).
 */
export function changesSince(log: ChangeLog, since: number): Change[] | 'all' {
  if (log.seq === since) return [];
  // A record behind the reader was reset (the table recreated): nothing it says can be trusted.
  if (log.seq < since) return 'all';
  const newer = log.changes.filter((c) => c.seq > since);
  return newer.length < log.seq - since ? 'all' : newer;
}
