/**
 * `daemon --render FILE=SOURCE`, parsed: which file gets what. Pure parsing, no file system and no
 * backend, so that a bad value is a usage error before anything starts (render.ts renders, and
 * render-files.ts writes, what is parsed here).
 *
 * SOURCE is `NAME` (the payload's raw bytes) or `KIND:ARG`. Secret names cannot hold `:`, so the two
 * never clash. The kinds: `dotenv:SELECTOR` and `json:SELECTOR` (SELECTOR: `PREFIX*` or
 * `NAME,NAME`, each NAME or VAR=NAME, as src/delivery selects), and `config:PATH` (a configuration
 * document, in the format the file's extension names).
 */
import * as path from 'node:path';
import { AppError } from '../core/errors';
import { validateSecretRef } from '../core/labels';
import { type OutputFormat, validateConfigPath } from '../config/documents-service';
import { type Selection, parseSelector, resolveSelection } from '../delivery/selection';
import type { PrefetchSelection } from './prefetch';

/** What a rendered file holds. */
export type RenderContent =
  /** The payload's raw bytes (a binary secret's decoded bytes). */
  | { kind: 'raw'; name: string }
  /** A dotenv or JSON file of a selection, with the same variable names and quoting as `export`. */
  | { kind: 'dotenv' | 'json'; selection: Selection }
  /** The decrypted configuration document at `path`. */
  | { kind: 'config'; path: string; format: OutputFormat };

export interface RenderTarget {
  /** Absolute path of the file. */
  file: string;
  /** The flag's value, for messages. */
  spec: string;
  content: RenderContent;
  /** Secrets to prefetch for it (kept fresh with the --prefetch ones). */
  needs: PrefetchSelection;
}

/** The kinds written `KIND:ARG`: each parses ARG (a usage error if it is malformed); `file` is the target's path. */
const KINDS: Readonly<Record<string, (arg: string, file: string) => RenderContent>> = {
  dotenv: (arg) => selectionContent('dotenv', arg),
  json: (arg) => selectionContent('json', arg),
  config: (arg, file) => ({ kind: 'config', path: validateConfigPath(arg), format: configFormat(file) }),
};

function selectionContent(kind: 'dotenv' | 'json', selector: string): RenderContent {
  const selection = parseSelector(selector);
  // Without a prefix the variables are known now: a collision is a usage error at start.
  if (selection.prefixes.length === 0) resolveSelection(selection);
  return { kind, selection };
}

/** `.json` → JSON, `.env` → dotenv, anything else → YAML (the form most documents are written in). */
function configFormat(file: string): OutputFormat {
  const ext = path.extname(file).toLowerCase();
  return ext === '.json' ? 'json' : ext === '.env' ? 'dotenv' : 'yaml';
}

/** The secrets a content reads (a configuration document is read from the table at each check, not prefetched). */
function needsOf(content: RenderContent): PrefetchSelection {
  switch (content.kind) {
    case 'raw':
      return { names: [content.name], prefixes: [] };
    case 'dotenv':
    case 'json':
      return { names: content.selection.names.map((n) => n.name), prefixes: content.selection.prefixes };
    case 'config':
      return { names: [], prefixes: [] };
  }
}

/** Parse `--render` values; every mistake is a usage error naming the value. */
export function parseRenderTargets(values: readonly string[]): RenderTarget[] {
  const seen = new Set<string>();
  return values.map((spec) => {
    const eq = spec.indexOf('=');
    if (eq <= 0 || eq === spec.length - 1)
      throw new AppError(
        'usage',
        `invalid --render ${JSON.stringify(spec)}: expected FILE=NAME or FILE=KIND:ARG (kinds: ${Object.keys(KINDS).join(', ')})`,
      );
    const file = path.resolve(spec.slice(0, eq));
    const what = spec.slice(eq + 1);
    if (seen.has(file)) throw new AppError('usage', `--render names ${JSON.stringify(file)} twice`);
    seen.add(file);
    const colon = what.indexOf(':');
    let content: RenderContent;
    if (colon < 0) content = { kind: 'raw', name: validateSecretRef(what) };
    else {
      const kind = Object.hasOwn(KINDS, what.slice(0, colon)) ? KINDS[what.slice(0, colon)] : undefined;
      if (!kind)
        throw new AppError(
          'usage',
          `invalid --render ${JSON.stringify(spec)}: unknown kind ${JSON.stringify(what.slice(0, colon))} (use NAME or one of: ${Object.keys(
            KINDS,
          )
            .map((k) => `${k}:`)
            .join(', ')})`,
        );
      content = kind(what.slice(colon + 1), file);
    }
    return { file, spec, content, needs: needsOf(content) };
  });
}
