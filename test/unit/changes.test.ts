import { AppError } from '../../src/core/errors';
import {
  CHANGES_NAME,
  type ChangeLog,
  MAX_CHANGES,
  appendChange,
  appendChanges,
  changesSince,
  parseChangeItem,
  seqOf,
} from '../../src/core/changes';
import { isMetaName, isSecretItemName, validateSecretName } from '../../src/core/names';

const log = (seq: number, from = 1): ChangeLog => ({
  seq,
  changes: Array.from({ length: seq - from + 1 }, (_, i) => ({ seq: from + i, name: `n${from + i}`, kind: 'version' })),
});

test('the record is a meta/ name: never a secret name, never listed as one', () => {
  expect(isMetaName(CHANGES_NAME)).toBe(true);
  expect(isSecretItemName(CHANGES_NAME)).toBe(false);
  expect(isSecretItemName('config/team/app')).toBe(false);
  expect(isSecretItemName('com.foo.db')).toBe(true);
  expect(() => validateSecretName(CHANGES_NAME)).toThrow(AppError);
});

test('append: one more sequence number, the entry last, at most MAX_CHANGES kept', () => {
  expect(appendChange({ seq: 0, changes: [] }, { name: 'db', kind: 'version' })).toEqual({
    ChangeSeq: 1,
    Changes: [{ seq: 1, name: 'db', kind: 'version' }],
  });
  expect(appendChange(log(3), { name: 'db', kind: 'revoke', serial: 2 }).Changes.at(-1)).toEqual({
    seq: 4,
    name: 'db',
    kind: 'revoke',
    serial: 2,
  });
  const full = appendChange(log(MAX_CHANGES), { name: 'x', kind: 'label', id: 'w1' });
  expect(full.ChangeSeq).toBe(MAX_CHANGES + 1);
  expect(full.Changes).toHaveLength(MAX_CHANGES);
  expect(full.Changes[0].seq).toBe(2);
  expect(full.Changes.at(-1)).toEqual({ seq: MAX_CHANGES + 1, name: 'x', kind: 'label', id: 'w1' });
  // A writer whose answer was lost finds its own entry by id, and appends nothing more.
  expect(seqOf({ seq: full.ChangeSeq, changes: full.Changes }, 'w1')).toBe(MAX_CHANGES + 1);
  expect(seqOf({ seq: full.ChangeSeq, changes: full.Changes }, 'w2')).toBeUndefined();
});

test('since: nothing when current, the newer entries, all when the record no longer reaches back', () => {
  expect(changesSince(log(5), 5)).toEqual([]);
  expect(changesSince(log(5), 3)).toEqual([
    { seq: 4, name: 'n4', kind: 'version' },
    { seq: 5, name: 'n5', kind: 'version' },
  ]);
  // Entries 3..10 kept: a reader at 2 missed nothing the record lost, a reader at 1 missed entry 2.
  expect(changesSince(log(10, 3), 2)).toHaveLength(8);
  expect(changesSince(log(10, 3), 1)).toBe('all');
  // A record behind the reader was reset: nothing it says can be trusted.
  expect(changesSince(log(2), 7)).toBe('all');
});

test('parse: no item is sequence 0; a malformed one is an integrity error; unknown entries are skipped', () => {
  expect(parseChangeItem(undefined)).toEqual({ seq: 0, changes: [] });
  expect(() => parseChangeItem({ ChangeSeq: 'x', Changes: [] })).toThrow(/change record .* is malformed/);
  expect(() => parseChangeItem({ ChangeSeq: 3 })).toThrow(/malformed/);
  expect(
    parseChangeItem({
      ChangeSeq: 2,
      Changes: [{ seq: 1, name: 'a', kind: 'version' }, { seq: 2, name: 'b', kind: 'weird' }, null],
    }),
  ).toEqual({ seq: 2, changes: [{ seq: 1, name: 'a', kind: 'version' }] });
});

test('a batch of changes: one sequence number each, in order, bounded like single ones', () => {
  const batch = appendChanges(log(2), [
    { name: 'a', kind: 'version', id: 'x.0' },
    { name: 'b', kind: 'revoke', serial: 1, id: 'x.1' },
  ]);
  expect(batch.ChangeSeq).toBe(4);
  expect(batch.Changes.slice(-2)).toEqual([
    { seq: 3, name: 'a', kind: 'version', id: 'x.0' },
    { seq: 4, name: 'b', kind: 'revoke', serial: 1, id: 'x.1' },
  ]);
  const many = appendChanges(
    log(1),
    Array.from({ length: MAX_CHANGES + 5 }, (_, i) => ({ name: `n${i}`, kind: 'version' as const })),
  );
  expect([many.ChangeSeq, many.Changes.length]).toEqual([MAX_CHANGES + 6, MAX_CHANGES]);
});
