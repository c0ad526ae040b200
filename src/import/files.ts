/**
 * File sources: `import dotenv|json|yaml FILE` (`-` = standard input). A file has no versions:
 * each entry is one version whose `Source` is `<format>:<file>`, written when it differs from the
 * name's latest active payload.
 */
import * as fs from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { AppError } from '../core/errors';
import type { ImportSource, SourceSecret, SourceValue, SourceVersion } from './import-source';

export type FileFormat = 'dotenv' | 'json' | 'yaml';

/** Far above any real secrets file; keeps a mistaken `import json /dev/zero` from eating memory. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

export class FileSource implements ImportSource {
  readonly versioned = false;
  private entries?: Map<string, string>;

  constructor(
    private readonly format: FileFormat,
    private readonly file: string,
  ) {}

  async list(): Promise<SourceSecret[]> {
    this.entries = parseEntries(this.format, await readInput(this.file), this.file);
    const source = `${this.format}:${this.file}`;
    return [...this.entries.keys()].map((key) => ({
      source: `${source}#${key}`,
      relativeName: key,
      versions: [{ source }],
    }));
  }

  async read(secret: SourceSecret, _versions: SourceVersion[]): Promise<SourceValue[]> {
    const value = this.entries?.get(secret.relativeName) ?? '';
    return [{ bytes: Buffer.from(value, 'utf8'), binary: false }];
  }

  close(): void {}
}

async function readInput(file: string): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    const stream = file === '-' ? process.stdin : fs.createReadStream(file);
    try {
      for await (const chunk of stream) {
        total += (chunk as Buffer).length;
        if (total > MAX_FILE_BYTES)
          throw new AppError('too_large', `${file === '-' ? 'standard input' : file} is over ${MAX_FILE_BYTES} bytes`);
        chunks.push(chunk as Buffer);
      }
    } finally {
      if (file !== '-') (stream as fs.ReadStream).destroy();
    }
  } catch (err) {
    if (err instanceof AppError) throw err;
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'ENOENT'
        ? 'no such file'
        : e.code === 'EACCES'
          ? 'permission denied'
          : e.code === 'EISDIR'
            ? 'it is a directory'
            : (e.code ?? e.message);
    throw new AppError('usage', `cannot read ${JSON.stringify(file)}: ${why}`);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The entries of a file, in file order. Errors name the line or key, never a value. */
function parseEntries(format: FileFormat, text: string, file: string): Map<string, string> {
  if (format === 'dotenv') return parseDotenv(text, file);
  let doc: unknown;
  try {
    doc = format === 'json' ? JSON.parse(text) : parseYaml(text);
  } catch {
    throw new AppError('usage', `${file} is not valid ${format.toUpperCase()}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new AppError('usage', `${file}: expected a flat ${format.toUpperCase()} object of name to string`);
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(doc)) {
    if (typeof v !== 'string')
      throw new AppError(
        'usage',
        `${file}: the value of ${JSON.stringify(k)} is not a string (only flat name: string)`,
      );
    out.set(k, v);
  }
  return out;
}

const DOTENV_KEY = /^(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*=/;

/**
 * dotenv as shells and the common loaders read it, and exactly what `export --format dotenv`
 * writes (`VAR='value'`, a `'` as `'\''`):
 * - `#` comments and blank lines; an optional `export ` before the name;
 * - single quotes: literal, may span lines; adjacent quoted or bare parts join, as in a shell;
 * - double quotes: may span lines, with `\n`, `\"`, `\\`, `\$` and `` \` `` escapes;
 * - bare values end at whitespace before a `#`, and are trimmed.
 * `$` is never expanded: a secret holding `$HOME` is imported as those five characters.
 */
function parseDotenv(text: string, file: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  let line = 1;
  const fail = (why: string): never => {
    throw new AppError('usage', `${file} line ${line}: ${why}`);
  };
  while (i < text.length) {
    // Skip blank lines, indentation and comments.
    const rest = text.slice(i);
    const blank = /^[ \t\r]*(?:#[^\n]*)?(?:\n|$)/.exec(rest);
    if (blank && blank[0].length > 0) {
      i += blank[0].length;
      if (blank[0].endsWith('\n')) line++;
      continue;
    }
    const lead = /^[ \t]*/.exec(rest)?.[0].length ?? 0;
    const m = DOTENV_KEY.exec(rest.slice(lead));
    if (!m) fail('expected NAME=value');
    const key = (m as RegExpExecArray)[1];
    const startLine = line;
    i += lead + (m as RegExpExecArray)[0].length;
    while (text[i] === ' ' || text[i] === '\t') i++;
    let value = '';
    for (;;) {
      const c = text[i];
      if (c === undefined || c === '\n' || c === '\r') break;
      if (c === "'") {
        const end = text.indexOf("'", i + 1);
        if (end < 0) fail(`unterminated ' quote in the value of ${key} (opened on line ${startLine})`);
        const part = text.slice(i + 1, end);
        line += part.split('\n').length - 1;
        value += part;
        i = end + 1;
      } else if (c === '"') {
        i++;
        for (;;) {
          const d = text[i];
          if (d === undefined) fail(`unterminated " quote in the value of ${key} (opened on line ${startLine})`);
          if (d === '"') break;
          if (d === '\\' && i + 1 < text.length) {
            const e = text[i + 1];
            value += e === 'n' ? '\n' : e === 'r' ? '\r' : e === 't' ? '\t' : '"\\$`'.includes(e) ? e : `\\${e}`;
            i += 2;
            continue;
          }
          if (d === '\n') line++;
          value += d;
          i++;
        }
        i++;
      } else if (c === ' ' || c === '\t') {
        // Whitespace ends the value; only a comment may follow.
        const tail = /^[ \t]*(?:#[^\n]*)?/.exec(text.slice(i))?.[0] ?? '';
        i += tail.length;
        if (text[i] !== undefined && text[i] !== '\n' && text[i] !== '\r')
          fail(`unexpected text after the value of ${key} (quote a value with spaces)`);
        break;
      } else if (c === '\\' && i + 1 < text.length && text[i + 1] !== '\n') {
        value += text[i + 1];
        i += 2;
      } else {
        value += c;
        i++;
      }
    }
    if (text[i] === '\r') i++;
    if (text[i] === '\n') {
      i++;
      line++;
    }
    if (out.has(key)) fail(`${key} is set twice (also on an earlier line)`);
    out.set(key, value);
  }
  return out;
}
