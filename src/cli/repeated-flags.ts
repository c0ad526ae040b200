/**
 * The command line refuses ambiguity: a flag given twice is a usage error naming it, not "last one
 * wins" (yargs' default). `--name a --name b` in a script usually means a mistake (a copied line, a
 * variable expanded twice), and silently acting on one of the two may store or revoke the wrong
 * secret. Flags declared as arrays (`array: true`, e.g. a repeatable `--name` on a selecting
 * command) may repeat: the rule is "a flag not declared as an array may appear once".
 *
 * yargs cannot tell on its own: with 'duplicate-arguments-array' it turns a repeated string flag
 * into an array, but it folds a repeated boolean (`--local --no-local`) into one value. So the
 * tokens are counted here, against the options yargs knows for the command being run.
 */
import { AppError } from '../core/errors';

/** What we read of yargs' getOptions() (its type is not exported in a usable form). */
export interface DeclaredOptions {
  array: string[];
  boolean: string[];
  alias: Record<string, string[]>;
  narg: Record<string, number>;
  key: Record<string, unknown>;
}

/** One flag on the command line: the option it sets, as declared (undefined: not declared), and how it was spelled. */
export interface FlagUse {
  key: string;
  spelling: string;
}

/** The declared flags given on the command line, in order (values, positionals and unknown flags left out). */
export function flagsOnLine(argv: readonly string[], opts: DeclaredOptions): FlagUse[] {
  return scanFlags(argv, opts).filter((u): u is FlagUse => u.key !== undefined);
}

/** The flags on the command line that the command does not declare, as spelled. */
export function unknownFlags(argv: readonly string[], opts: DeclaredOptions): string[] {
  return scanFlags(argv, opts)
    .filter((u) => u.key === undefined)
    .map((u) => u.spelling);
}

function scanFlags(argv: readonly string[], opts: DeclaredOptions): Array<{ key?: string; spelling: string }> {
  // An alias (e.g. -h) counts as its flag.
  const canonical = new Map<string, string>();
  for (const [key, aliases] of Object.entries(opts.alias ?? {})) for (const a of aliases) canonical.set(a, key);
  const known = (k: string) => canonical.get(k) ?? (k in (opts.key ?? {}) ? k : undefined);
  const booleans = new Set(opts.boolean ?? []);
  const uses: Array<{ key?: string; spelling: string }> = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (token === '--') break; // the rest is positional
    const m = /^--?([^=]+)(=.*)?$/.exec(token);
    if (!m || /^-\d/.test(token)) continue; // a value, or a negative number
    let key = known(m[1]);
    // --no-local is the boolean --local, set to false.
    if (key === undefined && m[1].startsWith('no-') && booleans.has(known(m[1].slice(3)) ?? ''))
      key = known(m[1].slice(3));
    if (key === undefined) {
      uses.push({ spelling: `${m[1].length === 1 ? '-' : '--'}${m[1]}` });
      continue;
    }
    // A flag taking a fixed number of values (nargs) consumes them even if they start with "-".
    if (m[2] === undefined) i += opts.narg?.[key] ?? 0;
    uses.push({ key, spelling: `${m[1].length === 1 ? '-' : '--'}${m[1]}` });
  }
  return uses;
}

/** Throws a usage error naming the first flag (not declared as an array) that appears more than once. */
export function refuseRepeatedFlags(argv: readonly string[], opts: DeclaredOptions): void {
  const arrays = new Set(opts.array ?? []);
  const seen = new Map<string, string>();
  for (const { key, spelling } of flagsOnLine(argv, opts)) {
    if (arrays.has(key) || key === 'help' || key === 'version') continue; // these print and stop anyway
    const first = seen.get(key);
    if (first !== undefined)
      throw new AppError(
        'usage',
        `--${key} was given more than once${first === spelling ? '' : ` (as ${first} and ${spelling})`}: a flag may appear only once`,
      );
    seen.set(key, spelling);
  }
}
