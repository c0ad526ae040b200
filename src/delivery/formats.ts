/**
 * Render `{VAR: payload}` in the formats applications and shells read. Quoting is exact: any
 * payload (quotes, `$`, backticks, backslashes, newlines, unicode) reads back byte for byte, so a
 * secret is never mangled or, worse, executed by the shell that loads it.
 * - json: `{"VAR":"payload"}` (one line, like the other commands' output);
 * - dotenv: `VAR='payload'` lines, and shell: `export VAR='payload'`. POSIX single quotes are
 *   the one quoting with no special characters inside; a `'` is written `'\''`. Both load with
 *   `set -a; . FILE` and `eval`;
 * - properties: Java `.properties` escapes (ISO-8859-1 safe: everything else as \uXXXX);
 * - yaml: `VAR: "payload"` lines, every value a double-quoted scalar with YAML's escapes for
 *   anything not printable (yamlQuote), so YAML 1.1 and 1.2 readers load the same strings.
 */
import { AppError } from '../core/errors';
import { shellQuote } from '../core/variables';

export const FORMATS = ['json', 'dotenv', 'shell', 'properties', 'yaml'] as const;
export type Format = (typeof FORMATS)[number];

export function parseFormat(value: unknown): Format {
  if (typeof value === 'string' && (FORMATS as readonly string[]).includes(value)) return value as Format;
  throw new AppError('usage', `unknown format ${JSON.stringify(String(value))}: use one of ${FORMATS.join(', ')}`);
}

/** Render the variables in the given format, in the order given; the text ends with a newline. */
export function renderVariables(vars: Readonly<Record<string, string>>, format: Format): string {
  const entries = Object.entries(vars);
  switch (format) {
    case 'json':
      return `${JSON.stringify(vars)}\n`;
    case 'dotenv':
      return entries.map(([k, v]) => `${k}=${shellQuote(v)}\n`).join('');
    case 'shell':
      return entries.map(([k, v]) => `export ${k}=${shellQuote(v)}\n`).join('');
    case 'properties':
      return entries.map(([k, v]) => `${propertiesEscape(k, true)}=${propertiesEscape(v, false)}\n`).join('');
    case 'yaml':
      if (entries.length === 0) return '{}\n';
      return entries.map(([k, v]) => `${yamlKey(k)}: ${yamlQuote(v)}\n`).join('');
  }
}

/**
 * Where YAML 1.1 and 1.2 allow a character in a file unescaped: tab, LF, CR, printable ASCII,
 * NEL, and the printable rest of Unicode. Anything else (NUL, the other C0 controls, DEL, C1,
 * lone surrogates, U+FFFE/U+FFFF) makes PyYAML and others refuse the whole file.
 */
const YAML_UNPRINTABLE = /[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u;
const YAML_SHORT_ESCAPES: Readonly<Record<string, string>> = {
  '\0': '\\0',
  '\x07': '\\a',
  '\b': '\\b',
  '\t': '\\t',
  '\n': '\\n',
  '\v': '\\v',
  '\f': '\\f',
  '\r': '\\r',
  '\x1b': '\\e',
  '"': '\\"',
  '\\': '\\\\',
  '\x85': '\\N',
  '\u2028': '\\L',
  '\u2029': '\\P',
};

/**
 * A YAML double-quoted scalar that every reader loads back as exactly `value`, and always as a
 * string (a plain `yes`, `off` or `0777` is a boolean or a number to a YAML 1.1 reader). Escaped:
 * `"` and `\\`, every line break (tab, CR, LF, NEL, U+2028/2029: unescaped, a reader folds them),
 * the byte-order mark, and every character YAML does not allow raw (YAML_UNPRINTABLE). The rest,
 * non-ASCII included, is written as it is. Never folded, so a long secret stays one line.
 */
export function yamlQuote(value: string): string {
  let out = '"';
  for (const ch of value) {
    const short = YAML_SHORT_ESCAPES[ch];
    if (short !== undefined) out += short;
    else if (ch === '\ufeff' || YAML_UNPRINTABLE.test(ch)) {
      const code = ch.codePointAt(0)!;
      out += code <= 0xff ? `\\x${hex(code, 2)}` : code <= 0xffff ? `\\u${hex(code, 4)}` : `\\U${hex(code, 8)}`;
    } else out += ch;
  }
  return `${out}"`;
}

const hex = (code: number, width: number): string => code.toString(16).toUpperCase().padStart(width, '0');

/** YAML 1.1 reads these plain keys as booleans or null: quote them, so every key is the variable's name. */
const YAML_11_WORDS = /^(y|n|yes|no|true|false|on|off|null|~)$/i;

/** A variable name as a mapping key: plain (VARIABLE_RULE has no YAML syntax), quoted where YAML 1.1 reads a word. */
export function yamlKey(variable: string): string {
  return YAML_11_WORDS.test(variable) ? yamlQuote(variable) : variable;
}

/**
 * Java Properties.load escapes. Keys also escape `=`, `:` and spaces; a value escapes only a
 * leading space (trailing ones are kept by load). `#` and `!` matter only at line start, escaped
 * everywhere for simplicity. Characters outside printable ASCII become \uXXXX (UTF-16 units), as
 * Properties.store writes them, so the file is valid whatever encoding the reader assumes.
 */
export function propertiesEscape(s: string, isKey: boolean): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    const code = s.charCodeAt(i);
    if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\f') out += '\\f';
    else if (ch === '=' || ch === ':' || ch === '#' || ch === '!') out += `\\${ch}`;
    else if (ch === ' ' && (isKey || i === 0)) out += '\\ ';
    else if (code < 0x20 || code > 0x7e) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out;
}
