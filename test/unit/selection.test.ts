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

test('a prefix never yields a variable that changes how programs load; --name VAR=NAME delivers it on purpose', () => {
  const available = ['shop.node_options', 'shop.path', 'shop.ld_preload', 'shop.db', 'shop.python_path'];
  const e = failure(() => resolveSelection({ names: [], prefixes: ['shop.'] }, available));
  expect(e.kind).toBe('usage');
  expect(e.message).toMatch(/secret "shop\.ld_preload" would set LD_PRELOAD/);
  expect(e.message).toMatch(/"shop\.node_options" would set NODE_OPTIONS/);
  expect(e.message).toMatch(/"shop\.path" would set PATH/);
  expect(e.message).toMatch(/"shop\.python_path" would set PYTHON_PATH/);
  expect(e.message).not.toMatch(/DB/);
  for (const variable of [
    'BASH_ENV',
    'ENV',
    'PERL5OPT',
    'RUBYOPT',
    'JAVA_TOOL_OPTIONS',
    'DYLD_INSERT_LIBRARIES',
    'GCONV_PATH',
    'IFS',
    'PS4',
    'SHELLOPTS',
  ])
    expect(
      failure(() => resolveSelection({ names: [], prefixes: ['p.'] }, [`p.${variable.toLowerCase()}`])).message,
    ).toContain(variable);
  // Named explicitly, alone or beside the prefix that also matches it: delivered.
  const explicit = resolveSelection(
    {
      names: [
        { name: 'shop.node_options', variable: 'NODE_OPTIONS' },
        { name: 'shop.path', variable: 'PATH' },
        { name: 'shop.ld_preload', variable: 'LD_PRELOAD' },
        { name: 'shop.python_path', variable: 'PYTHON_PATH' },
      ],
      prefixes: ['shop.'],
    },
    available,
  );
  expect(explicit.map((p) => p.variable)).toEqual(['DB', 'LD_PRELOAD', 'NODE_OPTIONS', 'PATH', 'PYTHON_PATH']);
  expect(resolveSelection({ names: [{ name: 'path' }], prefixes: [] })).toEqual([{ name: 'path', variable: 'PATH' }]);
  // Not a loader variable: near names are fine.
  expect(
    resolveSelection({ names: [], prefixes: ['s.'] }, ['s.pathname', 's.node_env', 's.xpath']).map((p) => p.variable),
  ).toEqual(['NODE_ENV', 'PATHNAME', 'XPATH']);
});

test('a variable named __proto__ is a variable of the environment, not the prototype', () => {
  const env = toEnvironment([{ name: 'app.x', variable: '__proto__', payload: 'p' }]);
  expect(Object.keys(env)).toEqual(['__proto__']);
  expect(Object.getOwnPropertyDescriptor(env, '__proto__')?.value).toBe('p');
});
