/**
 * Flags from the environment: every global flag, and every flag of a command that declares
 * `envFlags` (the daemon), may be set as ECS_SECRETS_<FLAG> (`--cache-ttl` is
 * ECS_SECRETS_CACHE_TTL), so a task definition can keep its settings in `environment` rather than
 * in a long `command`. A flag on the command line wins; an empty variable counts as unset.
 *
 * Not yargs' .env(): it would read every ECS_SECRETS_* variable (the token, the daemon URL, test
 * settings) as a flag, and strict mode would refuse them as unknown.
 */
import { AppError } from '../core/errors';
import { type DeclaredOptions, flagsOnLine } from './repeated-flags';

/** The variable a flag is read from. */
export const envName = (flag: string): string => `ECS_SECRETS_${flag.toUpperCase().replace(/-/g, '_')}`;

/** A flag's help text with its variable named. */
export const withEnvNote = (flag: string, describe: string): string => `${describe} [env ${envName(flag)}]`;

/**
 * Set `args[flag]` from its variable for each of `flags` not given on `argv`. Booleans take
 * true/false or 1/0; a repeatable flag takes one value per line.
 */
export function applyEnvFlags(
  argv: readonly string[],
  opts: DeclaredOptions,
  args: Record<string, unknown>,
  flags: Iterable<string>,
  env: NodeJS.ProcessEnv = process.env,
): void {
  const onLine = new Set(flagsOnLine(argv, opts).map((u) => u.key));
  const booleans = new Set(opts.boolean ?? []);
  const arrays = new Set(opts.array ?? []);
  for (const flag of flags) {
    const name = envName(flag);
    const value = env[name];
    if (onLine.has(flag) || value === undefined || value === '') continue;
    if (booleans.has(flag)) args[flag] = parseBoolean(name, value);
    else if (arrays.has(flag)) args[flag] = value.split(/\r?\n/).filter((v) => v !== '');
    else args[flag] = value;
  }
}

/**
 * Whether a boolean flag's variable says true, for decisions made before the command line is
 * parsed (main's --debug stack traces); a bad value counts as false here and is reported by the parse.
 */
export function envSaysTrue(flag: string, env: NodeJS.ProcessEnv = process.env): boolean {
  try {
    return parseBoolean(envName(flag), env[envName(flag)] ?? '');
  } catch {
    return false;
  }
}

function parseBoolean(name: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new AppError('usage', `${name} must be true or false (or 1 or 0), not ${JSON.stringify(value)}`);
}
