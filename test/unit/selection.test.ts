import { AppError } from '../../src/core/errors';
import {
  parseSelection,
  parseSelector,
  resolveSelection,
  toEnvironment,
  variableName,
} from '../../src/delivery/selection';

function failure(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected an error');
}

test('variable names: strip the prefix, map other characters to _, uppercase', () => {
  expect(variableName('team-a.db-password', 'team-a.')).toBe('DB_PASSWORD');
  expect(variableName('db.password')).toBe('DB_PASSWORD');
  expect(variableName('Api_Key')).toBe('API_KEY');
  expect(variableName('_x')).toBe('_X');
  const e = failure(() => variableName('1password'));
  expect(e.kind).toBe('usage');
  expect(e.message).toMatch(/"1password".*--name VAR=1password/);
  expect(failure(() => variableName('team-a.', 'team-a.')).kind).toBe('usage');
});

test('selection flags: NAME, VAR=NAME, PREFIX, repeatable, validated', () => {
  expect(parseSelection({ name: 'db.password' })).toEqual({ names: [{ name: 'db.password' }], prefixes: [] });
  expect(parseSelection({ name: ['a', 'PG_PASS=db.pg'], prefix: 'team-a.' })).toEqual({
    names: [{ name: 'a' }, { name: 'db.pg', variable: 'PG_PASS' }],
    prefixes: ['team-a.'],
  });
  expect(failure(() => parseSelection({})).message).toMatch(/--name NAME.*--prefix PREFIX/);
  expect(failure(() => parseSelection({ name: '1X=a' })).message).toMatch(/invalid variable name "1X"/);
  expect(failure(() => parseSelection({ name: 'a b' })).message).toMatch(/invalid secret name/);
  expect(failure(() => parseSelection({ prefix: '' })).message).toMatch(/invalid prefix/);
  expect(failure(() => parseSelection({ prefix: 'a/b' })).kind).toBe('usage');
});

test('render selectors: PREFIX* or NAME,NAME', () => {
  expect(parseSelector('team-a.*')).toEqual({ names: [], prefixes: ['team-a.'] });
  expect(parseSelector('a,DB=b')).toEqual({ names: [{ name: 'a' }, { name: 'b', variable: 'DB' }], prefixes: [] });
  expect(failure(() => parseSelector('a,,b')).kind).toBe('usage');
  expect(failure(() => parseSelector('*')).kind).toBe('usage');
});

test('resolve: prefixes against the names that exist, sorted by variable, duplicates once', () => {
  const names = ['team-a.db', 'team-a.api-key', 'team-b.db', 'other'];
  expect(resolveSelection(parseSelection({ prefix: 'team-a.', name: ['other', 'team-a.db'] }), names)).toEqual([
    { name: 'team-a.api-key', variable: 'API_KEY' },
    { name: 'team-a.db', variable: 'DB' },
    { name: 'other', variable: 'OTHER' },
    { name: 'team-a.db', variable: 'TEAM_A_DB' },
  ]);
  // explicit names need no listing: a missing one fails when it is read
  expect(resolveSelection(parseSelection({ name: 'X=nope' }))).toEqual([{ name: 'nope', variable: 'X' }]);
  const none = failure(() => resolveSelection(parseSelection({ prefix: 'team-c.' }), names));
  expect(none.kind).toBe('not_found');
  expect(none.message).toMatch(/"team-c\."/);
});

test('two secrets mapping to one variable: a usage error naming both', () => {
  const e = failure(() => resolveSelection(parseSelection({ name: ['db.password', 'db-password'] })));
  expect(e.kind).toBe('usage');
  expect(e.message).toMatch(/"db\.password" and "db-password" both map to the variable DB_PASSWORD/);
  const p = failure(() => resolveSelection(parseSelection({ prefix: ['a.', 'b.'] }), ['a.x', 'b.x']));
  expect(p.message).toMatch(/"a\.x" and "b\.x"/);
});

test('environment: a binary secret or a NUL is refused by name, never by value', () => {
  expect(toEnvironment([{ name: 'a', variable: 'A', payload: 'v' }])).toEqual({ A: 'v' });
  const bin = failure(() =>
    toEnvironment([{ name: 'cert.p12', variable: 'P12', payload: 'c2VjcmV0', encoding: 'base64' }]),
  );
  expect(bin.kind).toBe('usage');
  expect(bin.message).toMatch(/"cert\.p12" is binary/);
  expect(bin.message).not.toMatch(/c2VjcmV0/);
  // In a rendered file of variables the advice is the raw render, not "a file instead".
  const rendered = failure(() =>
    toEnvironment([{ name: 'cert.p12', variable: 'P12', payload: 'c2VjcmV0', encoding: 'base64' }], 'json'),
  );
  expect(rendered.message).toBe(
    'secret "cert.p12" is binary and cannot go into a json file of variables: render it on its own (--render FILE=cert.p12)',
  );
  const nul = failure(() => toEnvironment([{ name: 'n', variable: 'N', payload: 'zq\0xv' }]));
  expect(nul.message).toMatch(/"n" holds a NUL/);
  expect(nul.message).not.toMatch(/zq|xv/);
});
