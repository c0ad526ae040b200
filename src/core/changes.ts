/**
 * The change record, as data: one item per application (Name `meta/changes`, Serial 0) that every
 * write updates, so a daemon learns of every change by reading this one item instead of re-reading
 * every cached secret. It holds a sequence number (`ChangeSeq`, +1 per write) and the last
 * MAX_CHANGES changes (`Changes`: sequence, name, kind, and the serial a revoke made inactive),
 * never a value. Pure: reading and the conditional write live with the other items, in
 * SecretStore (core/storage.ts).
 */
import { AppError } from './errors';
import { META_NAME_PREFIX } from './names';

/** The item's Name: `meta/` names are never secrets (core/names.ts), so listings skip it. */
export const CHANGES_NAME = `${META_NAME_PREFIX}changes`;
/**
 * Changes kept: a daemon that misses more than this between two reads drops its whole cache (a
 * burst such as an import). Every watching daemon reads the item once per interval, and a strongly
 * consistent read costs one read unit per 4 KB: 50 entries of typical names (~60 bytes each) keep
 * it to one unit. Long names make it a few units, far below DynamoDB's 400 KB item limit.
 */
export const MAX_CHANGES = 50;

/** The longest a reader may wait for a change (`GET /secrets/:name?wait=SECONDS&after=SERIAL`). */
export const MAX_WAIT_SECONDS = 60;

/** version: a new version; revoke: `serial` made inactive; label: a label moved; config: a document pushed or revoked. */
export type ChangeKind = 'version' | 'revoke' | 'label' | 'config';
const KINDS: readonly string[] = ['version', 'revoke', 'label', 'config'] satisfies ChangeKind[];

export interface Change {
  seq: number;
  name: string;
  kind: ChangeKind;
  /** The revoked serial (kind revoke, or config revokes). */
  serial?: number;
  /**
   * Random, one per write: lets a writer whose answer was lost see whether its own put landed
   * (then it must not append the change a second time).
   */
  id?: string;
}

export interface ChangeLog {
  /** 0 when nothing has been recorded yet. */
  seq: number;
  changes: Change[];
}

/** The attributes of the item besides its key. */
export interface ChangeAttributes {
  ChangeSeq: number;
  Changes: Change[];
}

/** The record from its item (undefined: none written yet); a malformed one is an integrity error. */
export function parseChangeItem(item: Record<string, unknown> | undefined): ChangeLog {
  if (!item) return { seq: 0, changes: [] };
  const { ChangeSeq: seq, Changes: changes } = item;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1 || !Array.isArray(changes))
    throw new AppError('integrity', `integrity check failed: the change record (${CHANGES_NAME}) is malformed`);
  return { seq, changes: changes.filter(isChange) };
}

function isChange(c: unknown): c is Change {
  const x = c as Change;
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof x.seq === 'number' &&
    typeof x.name === 'string' &&
    KINDS.includes(x.kind)
  );
}

/** What one write appends: everything but the sequence number, which the merge gives it. */
export type NewChange = Omit<Change, 'seq'>;

/** The merge rule: one more sequence number, the new entry last, the oldest dropped past MAX_CHANGES. */
export function appendChange(log: ChangeLog, change: NewChange): ChangeAttributes {
  const seq = log.seq + 1;
  return { ChangeSeq: seq, Changes: [...log.changes, { seq, ...change }].slice(-MAX_CHANGES) };
}

/** Several changes in order, each with the next sequence number (one put for a batch of writes). */
export function appendChanges(log: ChangeLog, changes: readonly NewChange[]): ChangeAttributes {
  let next: ChangeLog = log;
  for (const c of changes) {
    const a = appendChange(next, c);
    next = { seq: a.ChangeSeq, changes: a.Changes };
  }
  return { ChangeSeq: next.seq, Changes: next.changes };
}

/** The sequence number the write `id` got, if the record holds it. */
export function seqOf(log: ChangeLog, id: string): number | undefined {
  return log.changes.find((c) => c.id === id)?.seq;
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
