/**
 * Render `{VAR: payload}` in the formats applications and shells read. Quoting is exact: any
 * payload (quotes, `$`, backticks, backslashes, newlines, unicode) reads back byte for byte, so a
 * secret is never mangled or, worse, executed by the shell that loads it.
 * - json: `{"VAR":"payload"}` (one line, like the other commands' output);
 * - dotenv: `VAR='payload'` lines, and shell: `export VAR='payload'`. POSIX single quotes are
 *   the one quoting with no special characters inside; a `'` is written `'\''`. Both load with
 *   `set -a; . FILE` and `eval`;
 * - properties: Java `.properties` escapes (ISO-8859-1 safe: everything else as \uXXXX);
 * - yaml: by the `yaml` package, every value a double-quoted string scalar (YAML 1.1 readers too).
 */
import { Document } from 'yaml';
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
    case 'yaml': {
      if (entries.length === 0) return '{}\n';
      // lineWidth 0: never fold long values (folding round-trips, but a folded secret is hard to read).
      // Values double-quoted: a plain `yes`, `off` or `0777` is a boolean or a number to a YAML 1.1
      // reader (PyYAML, SnakeYAML, go-yaml v2), and a tab breaks some; quoted, every one is a string.
      return new Document(vars).toString({ lineWidth: 0, defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN' });
    }
  }
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
