import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import type { AppError } from '../../src/core/errors';
import { AWKWARD } from '../helpers/awkward';
import { parseFormat, propertiesEscape, renderVariables } from '../../src/delivery/formats';

const vars = {
  AWKWARD,
  EMPTY_LOOKING: "''",
  DOLLAR: '$',
  QUOTE: "'",
  TRUE: 'true',
  NUM: '0123',
  LEADING: '  spaced',
  NL: '\n',
};

let dir: string;
beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'formats-'))));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Source FILE in bash the way a user would and print the variables back as JSON (node reads the environment). */
function sourceInBash(text: string, how: 'set-a' | 'eval'): Record<string, string> {
  const file = path.join(dir, 'vars');
  fs.writeFileSync(file, text);
  const load = how === 'set-a' ? `set -a; . "$1"; set +a` : `eval "$(cat "$1")"; export ${Object.keys(vars).join(' ')}`;
  const r = spawnSync(
    'bash',
    [
      '--norc',
      '--noprofile',
      '-c',
      `${load}; exec "$2" -e 'process.stdout.write(JSON.stringify(process.env))'`,
      'bash',
      file,
      process.execPath,
    ],
    {
      env: { PATH: process.env.PATH },
      encoding: 'utf8',
    },
  );
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout);
}

test('dotenv and shell round-trip every awkward character through `set -a; . FILE` and eval', () => {
  for (const format of ['dotenv', 'shell'] as const)
    for (const how of ['set-a', 'eval'] as const) {
      const env = sourceInBash(renderVariables(vars, format), how);
      for (const [k, v] of Object.entries(vars)) expect([format, how, k, env[k]]).toEqual([format, how, k, v]);
    }
  expect(renderVariables({ A: "it's" }, 'dotenv')).toBe(`A='it'\\''s'\n`);
  expect(renderVariables({ A: 'x' }, 'shell')).toBe(`export A='x'\n`);
});

test('dotenv round-trips arbitrary unicode strings (property test through bash)', () => {
  fc.assert(
    fc.property(
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((s) => !s.includes('\0')),
      (s) => {
        expect(sourceInBash(renderVariables({ V: s }, 'dotenv'), 'set-a').V).toBe(s);
      },
    ),
    { numRuns: 25 },
  );
});

test('yaml values are strings to a YAML 1.1 reader too: yes, off, 0777, 1e3, ~, a tab, all quoted', () => {
  const vars = {
    A: 'yes',
    B: 'NO',
    C: 'off',
    D: '0777',
    E: '1e3',
    F: '~',
    G: 'a\tb',
    H: 'null',
    I: '2001-12-14',
    J: 'it\'s "x"',
    K: 'é\u0001',
  };
  const text = renderVariables(vars, 'yaml');
  expect(parseYaml(text, { version: '1.1' })).toEqual(vars);
  expect(parseYaml(text)).toEqual(vars);
  for (const line of text.trimEnd().split('\n')) expect(line).toMatch(/^[A-Z]: ".*"$/);
});

test('json and yaml parse back to the same strings', () => {
  expect(JSON.parse(renderVariables(vars, 'json'))).toEqual(vars);
  expect(renderVariables({ A: 'x' }, 'json')).toBe('{"A":"x"}\n');
  expect(parseYaml(renderVariables(vars, 'yaml'))).toEqual(vars);
  expect(parseYaml(renderVariables({ A: `${'x'.repeat(500)} ${'y'.repeat(500)}` }, 'yaml')).A).toHaveLength(1001);
});

test('properties escapes as Java Properties.store does', () => {
  expect(propertiesEscape(' a=b:c#d!e\\f\n\t', false)).toBe('\\ a\\=b\\:c\\#d\\!e\\\\f\\n\\t');
  expect(propertiesEscape('é😀', false)).toBe('\\u00e9\\ud83d\\ude00');
  expect(renderVariables({ K: 'v' }, 'properties')).toBe('K=v\n');
});

const javaVersion = spawnSync('java', ['-version'], { encoding: 'utf8' });
const haveJava = javaVersion.status === 0 && /version "(1[1-9]|[2-9]\d)/.test(javaVersion.stderr);
(haveJava ? test : test.skip)(
  'properties load back in Java exactly',
  () => {
    const file = path.join(dir, 'vars.properties');
    fs.writeFileSync(file, renderVariables(vars, 'properties'));
    const src = path.join(dir, 'Load.java');
    fs.writeFileSync(
      src,
      `import java.io.*; import java.util.*;
     public class Load { public static void main(String[] a) throws Exception {
       Properties p = new Properties(); try (InputStream in = new FileInputStream(a[0])) { p.load(in); }
       StringBuilder sb = new StringBuilder();
       for (String k : new TreeSet<>(p.stringPropertyNames())) { sb.append(k).append('\\u0000').append(p.getProperty(k)).append('\\u0000'); }
       System.out.write(sb.toString().getBytes("UTF-8")); System.out.flush(); } }`,
    );
    const r = spawnSync('java', [src, file], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const parts = r.stdout.split('\0');
    const got: Record<string, string> = {};
    for (let i = 0; i + 1 < parts.length; i += 2) got[parts[i]] = parts[i + 1];
    expect(got).toEqual(vars);
  },
  60_000,
);

test('unknown format: a usage error listing the formats', () => {
  try {
    parseFormat('toml');
    throw new Error('expected an error');
  } catch (err) {
    expect((err as AppError).kind).toBe('usage');
    expect((err as AppError).message).toBe('unknown format "toml": use one of json, dotenv, shell, properties, yaml');
  }
});

/** Every character YAML does not allow raw in a file, or folds: controls, DEL, C1, NEL, BOM, line separators. */
const UNPRINTABLE = {
  DEL: 'a\x7fb',
  C1: `x${Array.from({ length: 32 }, (_, i) => String.fromCharCode(0x80 + i)).join('')}y`,
  C0: Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join(''),
  BOM: '\ufeffstart',
  LINES: 'a\u2028b\u2029c\x85d',
  NONCHARS: '\ufffe\uffff',
  ASTRAL: '😀\u{10ffff}',
  WORDS: 'yes',
};

test('yaml escapes DEL, C1, every control and the BOM: no raw unprintable character in the file', () => {
  const text = renderVariables(UNPRINTABLE, 'yaml');
  const raw = [...text].filter((ch) => {
    const c = ch.codePointAt(0)!;
    return (
      (c < 0x20 && ch !== '\n') || (c >= 0x7f && c <= 0x9f) || [0xfeff, 0x2028, 0x2029, 0xfffe, 0xffff].includes(c)
    );
  });
  expect(raw).toEqual([]);
  expect(text).toContain('DEL: "a\\x7Fb"\n');
  expect(parseYaml(text, { version: '1.1' })).toEqual(UNPRINTABLE);
  expect(parseYaml(text)).toEqual(UNPRINTABLE);
});

test('yaml keys YAML 1.1 reads as booleans or null are quoted; the rest stay plain', () => {
  const vars = { Y: 'a', yes: 'b', ON: 'c', null: 'd', NAME: 'e', __proto__x: 'f' };
  const text = renderVariables(vars, 'yaml');
  expect(text).toBe('"Y": "a"\n"yes": "b"\n"ON": "c"\n"null": "d"\nNAME: "e"\n__proto__x: "f"\n');
  expect(parseYaml(text, { version: '1.1' })).toEqual(vars);
});

/** PyYAML, the strictest common reader (it refuses a whole file for one raw DEL or C1 character). */
const pyyaml = spawnSync('python3', ['-c', 'import yaml'], { encoding: 'utf8' }).status === 0;
(pyyaml ? test : test.skip)('PyYAML loads the yaml output back exactly, awkward and unprintable values alike', () => {
  const all = { ...vars, ...UNPRINTABLE };
  const r = spawnSync(
    'python3',
    ['-c', 'import sys, json, yaml; sys.stdout.write(json.dumps(yaml.safe_load(sys.stdin.buffer.read())))'],
    { input: renderVariables(all, 'yaml'), encoding: 'utf8' },
  );
  expect(r.stderr).toBe('');
  expect(JSON.parse(r.stdout)).toEqual(all);
});

test('property: any string round-trips through yaml, for both YAML versions', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
      const text = renderVariables({ V: s }, 'yaml');
      expect(parseYaml(text).V).toBe(s);
      expect(parseYaml(text, { version: '1.1' }).V).toBe(s);
    }),
    { numRuns: 300 },
  );
});

test('a variable named __proto__ is written like any other', () => {
  const env = Object.assign(Object.create(null), { ['__proto__']: 'p', A: 'a' }) as Record<string, string>;
  expect(renderVariables(env, 'json')).toBe('{"__proto__":"p","A":"a"}\n');
  expect(renderVariables(env, 'dotenv')).toBe("__proto__='p'\nA='a'\n");
  expect(renderVariables(env, 'yaml')).toBe('__proto__: "p"\nA: "a"\n');
});
