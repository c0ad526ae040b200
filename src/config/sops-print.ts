/** Printing a configuration document: YAML (sops' 4-space indentation), JSON (key order kept), dotenv. */
import type { Document } from 'yaml';
import { AppError } from '../core/errors';
import { VARIABLE_RULE, checkVariableValue, shellQuote, toVariableChars } from '../core/variables';
import {
  type ConfigDoc,
  type DocFormat,
  type Step,
  isCollection,
  isMap,
  isScalar,
  isSeq,
  isSopsBlock,
  keyOf,
  walk,
  Y,
} from './sops-tree';
import { resolvePlain } from './sops-cipher';

export function printConfig(cd: ConfigDoc, format: DocFormat | 'dotenv' = cd.format): string {
  if (format === 'yaml' && cd.format === 'json') return blockStyle(cd.doc).toString({ indent: 4, lineWidth: 0 });
  if (format === 'yaml') return quoteMisread(cd.doc).toString({ indent: 4, lineWidth: 0 });
  if (format === 'json') return `${jsonOf(cd.doc.contents)}\n`;
  return dotenvOf(cd.doc);
}

/** A JSON-born document as YAML: block style, strings unquoted where YAML allows (a copy; the original is untouched). */
function blockStyle(doc: Document): Document {
  const copy = doc.clone();
  walk(copy.contents, (s) => {
    if (isSopsBlock(s)) return false; // written as sops writes it
    if (isScalar(s.pair?.key)) s.pair.key.type = undefined;
    if (isCollection(s.node)) s.node.flow = false;
    else if (isScalar(s.node) && s.node.type === 'QUOTE_DOUBLE' && !misread(s.node.value)) s.node.type = undefined;
    return true;
  });
  return copy;
}

let yaml11Tags: RegExp[] | undefined;

/**
 * Whether a string printed unquoted would be read as something else by a YAML 1.1 reader (PyYAML,
 * older Go and Ruby readers: `yes`, `1:20`, `2024-01-01`, `0777`) or by sops' yaml.v3.
 */
function misread(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  yaml11Tags ??= new (Y().Document)(null, { version: '1.1' }).schema.tags
    .filter((t) => t.default && t.test && !t.tag.endsWith(':str'))
    .map((t) => t.test as RegExp);
  return yaml11Tags.some((re) => re.test(v)) || resolvePlain(v)?.kind !== 'str';
}

/**
 * A copy with each string quoted that was not written as it now reads (a decrypted secret: its
 * text was ENC[...]) and that another YAML reader would misread; strings as the author wrote them stay.
 */
function quoteMisread(doc: Document): Document {
  const copy = doc.clone();
  walk(copy.contents, (s) => {
    if (isSopsBlock(s)) return false;
    const n = s.node as { value?: unknown; source?: unknown; type?: string };
    if (isScalar(s.node) && n.source !== n.value && misread(n.value) && n.type !== 'QUOTE_SINGLE')
      s.node.type = 'QUOTE_DOUBLE';
    return true;
  });
  return copy;
}

/** JSON with 4-space indentation, built bottom-up: each collection's text goes into its parent's. */
function jsonOf(root: unknown): string {
  const open: string[][] = [];
  let out = 'null';
  const put = (s: Step, text: string): void => {
    const entry = s.pair ? `${JSON.stringify(keyOf(s.pair))}: ${text}` : text;
    if (open.length === 0) out = text;
    else open[open.length - 1].push(entry);
  };
  walk(
    root,
    (s) => {
      if (isCollection(s.node)) open.push([]);
      else put(s, scalarJson(s.node));
      return true;
    },
    (s) => {
      if (!isCollection(s.node)) return;
      const parts = open.pop() ?? [];
      const indent = '    '.repeat(s.depth);
      const [l, r] = isMap(s.node) ? ['{', '}'] : ['[', ']'];
      put(s, parts.length === 0 ? l + r : `${l}\n${parts.map((p) => `${indent}    ${p}`).join(',\n')}\n${indent}${r}`);
    },
  );
  return out;
}

function scalarJson(node: unknown): string {
  const v = isScalar(node) ? node.value : null;
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' && !Number.isFinite(v)) return JSON.stringify(String(v));
  return JSON.stringify(typeof v === 'bigint' ? Number(v) : v) ?? 'null';
}

/**
 * dotenv: one KEY=value line per leaf; nested keys joined with `_`, characters outside
 * [A-Za-z0-9_] become `_`; lists as JSON. Values single-quoted so `set -a; . file` round-trips.
 * A key that cannot be a variable (empty, or starting with a digit, e.g. `"10"`), two keys that
 * become one variable and a value holding NUL (as export refuses it) are usage errors naming the
 * key paths (never a value): a file that `set -a; . file` rejects, truncates or silently reads as
 * the wrong variable is worse than no file.
 */
function dotenvOf(doc: Document): string {
  const lines: string[] = [];
  const seen = new Map<string, string>();
  walk(doc.contents, (s) => {
    if (isMap(s.node)) return true;
    const keyPath = s.path.join('.');
    const name = toVariableChars(s.path.join('_'));
    if (!VARIABLE_RULE.test(name))
      throw new AppError(
        'usage',
        `cannot print the document as dotenv: key ${JSON.stringify(keyPath || '(the whole document)')} does not make a variable name (${JSON.stringify(name)}); use --format yaml or json`,
      );
    const other = seen.get(name);
    if (other !== undefined)
      throw new AppError(
        'usage',
        `cannot print the document as dotenv: keys ${JSON.stringify(other)} and ${JSON.stringify(keyPath)} both make the variable ${name}; use --format yaml or json`,
      );
    seen.set(name, keyPath);
    const value = isSeq(s.node)
      ? jsonOf(s.node).replace(/\s*\n\s*/g, '')
      : isScalar(s.node) && s.node.value !== null
        ? String(s.node.value)
        : '';
    lines.push(
      `${name}=${shellQuote(checkVariableValue(value, `cannot print the document as dotenv: key ${JSON.stringify(keyPath)}`))}`,
    );
    return false;
  });
  return lines.length ? `${lines.join('\n')}\n` : '';
}
