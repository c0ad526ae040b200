/**
 * `daemon --config FILE`: the daemon's settings in a file, YAML or JSON (JSON is YAML, so one
 * parser reads both, whatever the file is called). Keys are flag names as on the command line,
 * without the dashes; each value is read as the text a flag would be given: the YAML failsafe
 * schema, so `port: 8080` and `render-mode: 0440` reach the flag's own parser as "8080" and "0440"
 * (no YAML number or octal rules in between), and a repeatable flag takes a list. Which file is
 * read, and what wins over it, is env-flags.ts's: the command line, then ECS_SECRETS_*, then this.
 *
 * The file is not secret (it may not hold the token) but it decides where the daemon listens and
 * writes, so it must be as trusted as the token file (core/trusted-file.ts). No error quotes the
 * file's text: --config pointed at the wrong file may well point at secrets.
 */
import type { Document, Node } from 'yaml';
import { AppError } from '../core/errors';
import { readTrustedFile } from '../core/trusted-file';
import { nearest } from './did-you-mean';

/** The parser, loaded when a file is read: every command's start-up goes through this module. */
const yaml = (): typeof import('yaml') => require('yaml') as typeof import('yaml');

/** A setting as the file gives it: a scalar's text, or a list's for a repeatable flag. */
export type FileSetting = string | readonly string[];

/** How errors name the file. */
export const configFileLabel = (file: string): string => `config file ${JSON.stringify(file)}`;

/** Keys named in errors only when they look like a setting name, not like a line of someone's data. */
const PRINTABLE_KEY = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * The settings `file` holds, by flag name. `settings` are the keys it may set (the command's and
 * the global flags), `repeatable` those that take a list. Every refusal is a usage error naming
 * the file and the line.
 */
export function readConfigFile(
  file: string,
  settings: ReadonlySet<string>,
  repeatable: ReadonlySet<string>,
): Map<string, FileSetting> {
  const label = configFileLabel(file);
  const text = readTrustedFile(file, label);
  const { LineCounter, isMap, isScalar, parseDocument } = yaml();
  const lines = new LineCounter();
  const doc = parseDocument(text, { schema: 'failsafe', lineCounter: lines, prettyErrors: false });
  const lineOf = (offset: number) => lines.linePos(offset).line;
  const [bad] = doc.errors;
  if (bad !== undefined) {
    const at = lines.linePos(bad.pos[0]);
    // The parser's own message quotes the offending line: only its code is kept.
    throw new AppError(
      'usage',
      `${label} is not valid YAML or JSON: ${bad.code.toLowerCase().replace(/_/g, ' ')} at line ${at.line}, column ${at.col}`,
    );
  }
  const out = new Map<string, FileSetting>();
  if (doc.contents === null) return out; // empty, or comments only: nothing set
  if (!isMap(doc.contents))
    throw new AppError('usage', `${label} must be a mapping of setting to value (e.g. cache-ttl: 60)`);
  for (const pair of doc.contents.items) {
    const keyNode = pair.key as Node | null;
    const line = lineOf(keyNode?.range?.[0] ?? 0);
    const where = `${label} line ${line}`;
    if (!isScalar(keyNode) || typeof keyNode.value !== 'string')
      throw new AppError('usage', `${where}: a key must be a setting name`);
    const key = keyNode.value;
    if (key === 'config')
      throw new AppError(
        'usage',
        `${where}: config cannot be set in a config file (give --config or ECS_SECRETS_CONFIG)`,
      );
    if (key === 'token')
      throw new AppError(
        'usage',
        `${where}: the token cannot be set in a config file, which is not kept secret; give token-file (a file only the daemon's user can read) or ECS_SECRETS_TOKEN`,
      );
    if (!settings.has(key)) throw new AppError('usage', `${where}: ${unknownKey(key, settings)}`);
    out.set(key, settingOf(key, repeatable.has(key), pair.value as Node | null, doc, where));
  }
  return out;
}

function unknownKey(key: string, settings: ReadonlySet<string>): string {
  if (!PRINTABLE_KEY.test(key)) return 'a key that is not a daemon or global setting';
  const candidates = [...settings].filter((s) => s !== 'config');
  // Keys are spelt as flags are; cacheTtl is one rule away from cache-ttl, not two edits.
  const kebab = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const best = candidates.includes(kebab) ? kebab : nearest(key, candidates);
  return `unknown key ${key}: not a daemon or global setting${best ? ` (did you mean ${best}?)` : ''}`;
}

function settingOf(key: string, isList: boolean, node: Node | null, doc: Document, where: string): FileSetting {
  const { isAlias, isMap, isScalar, isSeq } = yaml();
  const value = isAlias(node) ? node.resolve(doc) : node;
  if (value === null) return ''; // `? key` with no value: as empty, which counts as unset
  if (isScalar(value) && typeof value.value === 'string') return value.value;
  if (isList && isSeq(value)) {
    return value.items.map((item) => {
      const v = isAlias(item) ? item.resolve(doc) : item;
      if (isScalar(v) && typeof v.value === 'string') return v.value;
      throw new AppError('usage', `${where}: ${key} takes a list of values, each a string or number`);
    });
  }
  throw new AppError(
    'usage',
    `${where}: ${key} takes ${isList ? 'a value or a list of values' : 'one value (a string, number or true/false)'}, not ${
      isSeq(value) ? 'a list' : isMap(value) ? 'a mapping' : 'this'
    }`,
  );
}
