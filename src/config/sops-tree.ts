/**
 * The SOPS document model: YAML or JSON held as a `yaml` Document (JSON is YAML 1.2), so comments
 * and key order survive, including integer-like keys that a JS object would move to the front.
 * One walker visits it, as sops' walkBranch does with its onLeaves callback; every pass over a
 * document (cipher, MAC, printing, diff) is a callback to it.
 */
import type { Document, Pair, Scalar, YAMLMap, YAMLSeq } from 'yaml';
import { AppError } from '../core/errors';

// The yaml package is loaded on first use: only config commands and routes need it, and every
// secret command and sidecar would otherwise pay its start-up time.
let yamlModule: typeof import('yaml') | undefined;
export const Y = (): typeof import('yaml') => (yamlModule ??= require('yaml') as typeof import('yaml'));
export const isMap = (n: unknown): n is YAMLMap => Y().isMap(n);
export const isSeq = (n: unknown): n is YAMLSeq => Y().isSeq(n);
export const isScalar = (n: unknown): n is Scalar => Y().isScalar(n);
export const isPair = (n: unknown): n is Pair => Y().isPair(n);
export const isCollection = (n: unknown): n is YAMLMap | YAMLSeq => isMap(n) || isSeq(n);

export type DocFormat = 'yaml' | 'json';

export interface ConfigDoc {
  doc: Document;
  format: DocFormat;
}

/** One node as the walker meets it. */
export interface Step {
  node: unknown;
  /** Key path, list indices not included (sops' AAD and its encryption rules). */
  path: string[];
  /** Key path for people: keys joined with `.`, list indices in brackets. */
  label: string;
  /** The map entry holding this node (absent for the root and list elements). */
  pair?: Pair;
  depth: number;
}

/**
 * Visit every node in document order, parents before children; `visit` returning false skips a
 * node's children, and `leave` (optional) runs after them.
 */
export function walk(root: unknown, visit: (s: Step) => boolean | undefined, leave?: (s: Step) => void): void {
  const go = (s: Step): void => {
    if (visit(s) === false) return;
    if (isMap(s.node))
      for (const pair of s.node.items) {
        const k = keyOf(pair);
        go({
          node: pair.value,
          path: [...s.path, k],
          label: s.label ? `${s.label}.${k}` : k,
          pair,
          depth: s.depth + 1,
        });
      }
    else if (isSeq(s.node))
      for (const [i, node] of s.node.items.entries())
        go({ node, path: s.path, label: `${s.label}[${i}]`, depth: s.depth + 1 });
    leave?.(s);
  };
  go({ node: root, path: [], label: '', depth: 0 });
}

/** The top-level `sops` entry: metadata, never part of the document's values. */
export const isSopsBlock = (s: Step): boolean => s.depth === 1 && s.pair !== undefined && s.path[0] === 'sops';

export function keyOf(p: Pair): string {
  return String(isScalar(p.key) ? p.key.value : p.key);
}

/**
 * Parse YAML or JSON (JSON when `format` says so, or the text starts with `{`). Errors name the
 * line and column, never the text: a malformed line may be a secret.
 */
export function parseConfig(text: string, format?: DocFormat): ConfigDoc {
  const fmt: DocFormat = format ?? (/^\s*\{/.test(text) ? 'json' : 'yaml');
  if (fmt === 'json') {
    try {
      JSON.parse(text);
    } catch (err) {
      const pos = /position (\d+)/.exec(String((err as Error).message));
      const where = pos ? ` at line ${lineOf(text, Number(pos[1]))}` : '';
      throw new AppError('usage', `malformed JSON document${where}`);
    }
  }
  const doc = Y().parseDocument(text, {
    uniqueKeys: true,
    prettyErrors: true,
    version: '1.2',
    customTags: keepNumberText,
  });
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0];
    throw new AppError(
      'usage',
      `malformed ${fmt === 'json' ? 'JSON' : 'YAML'} document${line ? ` at line ${line.line}, column ${line.col}` : ''} (${err.code})`,
    );
  }
  // Aliases would let one value stand for another (an encrypted one among them), and the yaml
  // package reports a bad one only later, in an error that quotes the alias text, which may be a
  // secret. Explicit tags (!!binary, !custom) have no place in sops' value types, would stay on
  // the ENC[...] text, and a bad one fails later the same way. Both are refused here, quoting nothing.
  let refused: string | undefined;
  Y().visit(doc, {
    Alias: () => {
      refused = 'YAML aliases (*name) are';
      return Y().visit.BREAK;
    },
    Node: (_key, node) => {
      if (!(node as { tag?: string }).tag) return undefined;
      refused = 'YAML tags (!tag) are';
      return Y().visit.BREAK;
    },
  });
  if (refused) throw new AppError('usage', `${refused} not supported in a configuration document`);
  if (doc.contents !== null && !isMap(doc.contents))
    throw new AppError('usage', 'a configuration document must be a mapping (key: value pairs) at the top level');
  if (doc.contents === null) doc.contents = new (Y().YAMLMap)() as never;
  return { doc, format: fmt };
}

type Tag = import('yaml').ScalarTag;

/**
 * The number tags, printing a number as it was written (`1e3`, `.5`, `+5`, `0755`) while its value
 * is unchanged: re-serialising it would change what other readers (sops among them) take it for.
 */
function keepNumberText(tags: import('yaml').Tags): import('yaml').Tags {
  const isNumberTag = (t: unknown): t is Tag =>
    typeof t === 'object' && /:(int|float)$/.test((t as Tag).tag ?? '') && !!(t as Tag).test && !!(t as Tag).resolve;
  const numberTags = tags.filter(isNumberTag);
  // The tag that prints a number is not always the one that read it (any float tag identifies a float).
  const writtenAs = (src: string, value: unknown): boolean =>
    numberTags.some((t) => {
      if (!t.test?.test(src)) return false;
      const again = t.resolve(src, () => undefined, {} as never);
      return (isScalar(again) ? again.value : again) === value;
    });
  return tags.map((t) => {
    if (!isNumberTag(t) || !t.stringify) return t;
    const stringify = t.stringify;
    const wrapped: Tag = {
      ...t,
      stringify(item, ctx, onComment, onChompKeep) {
        const src = (item as { source?: unknown }).source;
        if (typeof src === 'string' && writtenAs(src, item.value)) return src;
        return stringify(item, ctx, onComment, onChompKeep);
      },
    };
    return wrapped;
  });
}

function lineOf(text: string, pos: number): number {
  return text.slice(0, pos).split('\n').length;
}

export function hasSopsBlock(cd: ConfigDoc): boolean {
  return isMap(cd.doc.contents) && cd.doc.contents.has('sops');
}

/** Drop the sops block, leaving values as stored (build without --show-secrets). */
export function stripMetadata(cd: ConfigDoc): void {
  (cd.doc.contents as YAMLMap).delete('sops');
}

/** Apply `fn` to the comments attached to a collection's entries (the yaml package's comment slots). */
export function transformComments(node: YAMLMap | YAMLSeq, fn: (c: string) => string): void {
  const one = (n: unknown): void => {
    const x = n as { commentBefore?: string | null; comment?: string | null } | null;
    if (!x || typeof x !== 'object') return;
    if (x.commentBefore) x.commentBefore = fn(x.commentBefore);
    if (x.comment) x.comment = fn(x.comment);
  };
  one(node); // a comment before the first entry hangs on the collection itself
  for (const item of node.items as unknown[]) {
    if (isPair(item)) {
      one(item.key);
      if (isScalar(item.value)) one(item.value);
    } else if (isScalar(item)) one(item);
  }
}
