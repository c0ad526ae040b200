/**
 * Which secrets a delivery (export, exec, the daemon's prefetch and render) takes, and under which
 * environment variable names. One rule for all of them, so `export`, `exec` and a rendered dotenv
 * file of the same selection always agree:
 * - `--name NAME` (repeatable): that secret, variable derived from the whole name;
 * - `--name VAR=NAME`: that secret under an explicit variable name;
 * - `--prefix PREFIX` (repeatable): every secret whose name starts with PREFIX, variable derived
 *   from the name with the prefix stripped (`team-a.db-password` → `DB_PASSWORD`).
 * Derivation: every character outside [A-Za-z0-9_] becomes `_`, then uppercase. Two secrets that
 * land on one variable would silently shadow each other, so that is a usage error naming both.
 */
import { AppError } from '../core/errors';
import { parseSecretRef, validateSecretRef } from '../core/labels';
import { SECRET_NAME_RULE } from '../core/names';
import { VARIABLE_RULE, checkVariableValue, isLoaderVariable, toVariableChars } from '../core/variables';

/** One explicitly named secret; `variable` only when given as VAR=NAME. */
export interface NamedSelection {
  name: string;
  variable?: string;
}

/** A parsed selection, before it is matched against the names that exist. */
export interface Selection {
  names: NamedSelection[];
  prefixes: string[];
}

/** One selected secret and the variable it is delivered as. */
export interface SelectedSecret {
  variable: string;
  name: string;
}

/** A selected secret with its latest payload, ready to render (`encoding` as on SecretRecord). */
export interface SelectedValue extends SelectedSecret {
  payload: string;
  encoding?: 'base64';
  /** The version read, when known: what a watcher compares to notice a rotation. */
  serial?: number;
}

const asList = (v: string | readonly string[] | undefined): string[] =>
  v === undefined ? [] : typeof v === 'string' ? [v] : [...v];

/**
 * Parse the `--name` / `--prefix` flags (yargs gives a string or an array). Throws a usage error
 * on an invalid name, variable or prefix, or when nothing is selected at all.
 */
export function parseSelection(input: {
  name?: string | readonly string[];
  prefix?: string | readonly string[];
}): Selection {
  const names = asList(input.name).map(parseNameSpec);
  const prefixes = asList(input.prefix).map(validatePrefix);
  if (names.length === 0 && prefixes.length === 0)
    throw new AppError('usage', 'select secrets with --name NAME (repeatable), --name VAR=NAME or --prefix PREFIX');
  return { names, prefixes };
}

/**
 * Parse a render SELECTOR (the daemon's `--render FILE=dotenv:SELECTOR`): `PREFIX*` selects a
 * prefix, anything else is a comma-separated list of names, each NAME or VAR=NAME.
 */
export function parseSelector(selector: string): Selection {
  if (selector.endsWith('*') && !selector.includes(','))
    return { names: [], prefixes: [validatePrefix(selector.slice(0, -1))] };
  const parts = selector.split(',');
  if (parts.some((p) => p === ''))
    throw new AppError(
      'usage',
      `invalid selector ${JSON.stringify(selector)}: use PREFIX* or NAME[,NAME...] (each NAME or VAR=NAME)`,
    );
  return { names: parts.map(parseNameSpec), prefixes: [] };
}

/**
 * `NAME` or `VAR=NAME`. Secret names cannot hold `=`, so the first `=` is unambiguous. NAME may be
 * `NAME@LABEL` or `NAME@previous` (a pinned version): its variable is still the name's.
 */
export function parseNameSpec(spec: string): NamedSelection {
  const eq = spec.indexOf('=');
  if (eq < 0) return { name: validateSecretRef(spec) };
  const variable = spec.slice(0, eq);
  if (!VARIABLE_RULE.test(variable))
    throw new AppError(
      'usage',
      `invalid variable name ${JSON.stringify(variable)} in --name ${JSON.stringify(spec)}: it must match ${VARIABLE_RULE.source}`,
    );
  return { name: validateSecretRef(spec.slice(eq + 1)), variable };
}

function validatePrefix(prefix: string): string {
  if (typeof prefix !== 'string' || !SECRET_NAME_RULE.test(prefix))
    throw new AppError(
      'usage',
      `invalid prefix ${JSON.stringify(String(prefix))}: use 1 to 255 characters from A-Z a-z 0-9 . _ - (e.g. team-a.)`,
    );
  return prefix;
}

/**
 * The variable a secret is delivered as: strip the prefix, map every character outside
 * [A-Za-z0-9_] to `_`, uppercase. Throws a usage error when the result is not a valid variable
 * name (empty, or starting with a digit), suggesting VAR=NAME.
 */
export function variableName(name: string, prefix = ''): string {
  const rest = prefix !== '' && name.startsWith(prefix) ? name.slice(prefix.length) : name;
  const variable = toVariableChars(rest).toUpperCase();
  if (!VARIABLE_RULE.test(variable))
    throw new AppError(
      'usage',
      `secret ${JSON.stringify(name)} gives no valid variable name (${JSON.stringify(variable)} must match ${VARIABLE_RULE.source}): select it with --name VAR=${name}`,
    );
  return variable;
}

/** True when resolving needs the list of existing names (a prefix is selected). */
export const needsListing = (selection: Selection): boolean => selection.prefixes.length > 0;

/**
 * Match a selection against the names that exist (`available`: only consulted for prefixes;
 * explicit names are taken as given, a missing one fails when it is read). Returns the pairs
 * sorted by variable. Throws `not_found` when a prefix matches nothing, and a usage error when two
 * secrets map to one variable. The same secret under the same variable twice counts once.
 */
export function resolveSelection(selection: Selection, available: readonly string[] = []): SelectedSecret[] {
  const pairs: SelectedSecret[] = selection.names.map((n) => ({
    name: n.name,
    variable: n.variable ?? variableName(parseSecretRef(n.name).name),
  }));
  const fromPrefix: SelectedSecret[] = [];
  for (const prefix of selection.prefixes) {
    const matched = available.filter((name) => name.startsWith(prefix));
    if (matched.length === 0)
      throw new AppError('not_found', `no secret name starts with the prefix ${JSON.stringify(prefix)}`);
    for (const name of matched) fromPrefix.push({ name, variable: variableName(name, prefix) });
  }
  // A prefix never yields PATH, LD_PRELOAD, NODE_OPTIONS and the like (core/variables.ts): whoever
  // may create a secret under it could otherwise run code in the application. Named explicitly
  // (--name, or --name VAR=NAME) they are the operator's choice.
  const loaders = fromPrefix.filter(
    (p) => isLoaderVariable(p.variable) && !pairs.some((n) => n.name === p.name && n.variable === p.variable),
  );
  if (loaders.length > 0)
    throw new AppError(
      'usage',
      `${loaders.map((p) => `secret ${JSON.stringify(p.name)} would set ${p.variable}`).join(', ')}, which changes how programs load: a prefix never sets it; deliver it on purpose with --name ${loaders[0].variable}=${loaders[0].name}`,
    );
  pairs.push(...fromPrefix);
  const byVariable = new Map<string, SelectedSecret>();
  for (const p of pairs) {
    const seen = byVariable.get(p.variable);
    if (seen === undefined) byVariable.set(p.variable, p);
    else if (seen.name !== p.name)
      throw new AppError(
        'usage',
        `secrets ${JSON.stringify(seen.name)} and ${JSON.stringify(p.name)} both map to the variable ${p.variable}: name one explicitly with --name VAR=NAME`,
      );
  }
  return [...byVariable.values()].sort((a, b) => (a.variable < b.variable ? -1 : a.variable > b.variable ? 1 : 0));
}

/**
 * The environment of selected values: `{VAR: payload}`. A binary secret has no place in an
 * environment (its bytes may hold NUL, and base64 text would be silently wrong to an app expecting
 * the value), and a NUL character cannot be passed through execve: both are usage errors naming the
 * secret, never showing the value.
 */
export function toEnvironment(values: readonly SelectedValue[], renderedAs?: string): Record<string, string> {
  // No prototype: `__proto__` is a valid variable name, and on a plain object assigning it would
  // set the prototype instead of a variable.
  const env: Record<string, string> = Object.create(null);
  for (const v of values) {
    if (v.encoding !== undefined)
      throw new AppError(
        'usage',
        renderedAs === undefined
          ? `secret ${JSON.stringify(v.name)} is binary and cannot go into an environment variable: render it to a file instead`
          : `secret ${JSON.stringify(v.name)} is binary and cannot go into a ${renderedAs} file of variables: render it on its own (--render FILE=${v.name})`,
      );
    env[v.variable] = checkVariableValue(v.payload, `secret ${JSON.stringify(v.name)}`);
  }
  return env;
}
