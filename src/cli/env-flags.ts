/**
 * Flags not given on the command line: every global flag, and every flag of a command that declares
 * `envFlags` (the daemon), may be set as ECS_SECRETS_<FLAG> (`--cache-ttl` is
 * ECS_SECRETS_CACHE_TTL), so a task definition can keep its settings in `environment` rather than
 * in a long `command`; a command that also declares `--config` takes them from a file too
 * (config-file.ts). The command line wins, then the variable, then the file; an empty value
 * counts as unset.
 *
 * Not yargs' .env(): it would read every ECS_SECRETS_* variable (the token, the daemon URL, test
 * settings) as a flag, and strict mode would refuse them as unknown.
 */
import { AppError } from '../core/errors';
import { type FileSetting, configFileLabel, readConfigFile } from './config-file';
import { type DeclaredOptions, flagsOnLine } from './repeated-flags';

/** The variable a flag is read from. */
export const envName = (flag: string): string => `ECS_SECRETS_${flag.toUpperCase().replace(/-/g, '_')}`;

/** A flag's help text with its variable named. */
export const withEnvNote = (flag: string, describe: string): string => `${describe} [env ${envName(flag)}]`;

/**
 * Set `args[flag]` for each of `flags` not given on `argv`: from its variable, else from the
 * config file named by `--config` or ECS_SECRETS_CONFIG (when `config` is among `flags`).
 * Booleans take true/false or 1/0; a repeatable flag takes one value per line of a variable, or a
 * list (or one value) in the file. Both sources go through the same coercion, and then through
 * yargs' checks (choices) and the command's own parsers, as a flag would.
 */
export function applyEnvFlags(
  argv: readonly string[],
  opts: DeclaredOptions,
  args: Record<string, unknown>,
  flags: ReadonlySet<string>,
  env: NodeJS.ProcessEnv = process.env,
): void {
  const onLine = new Set(flagsOnLine(argv, opts).map((u) => u.key));
  const booleans = new Set(opts.boolean ?? []);
  const arrays = new Set(opts.array ?? []);
  const fromEnv = (flag: string) => (env[envName(flag)] === '' ? undefined : env[envName(flag)]);
  const coerce = (flag: string, value: FileSetting, source: string): unknown => {
    if (booleans.has(flag)) return parseBoolean(source, String(value));
    if (arrays.has(flag)) return (typeof value === 'string' ? value.split(/\r?\n/) : value).filter((v) => v !== '');
    return value;
  };
  // The file is named like any flag (the command line, then its variable).
  const configPath = !flags.has('config')
    ? undefined
    : onLine.has('config')
      ? (args.config as string | undefined)
      : fromEnv('config');
  const file =
    configPath === undefined
      ? undefined
      : { label: configFileLabel(configPath), settings: readConfigFile(configPath, flags, arrays) };
  for (const flag of flags) {
    if (onLine.has(flag)) continue;
    const value = fromEnv(flag);
    if (value !== undefined) {
      args[flag] = coerce(flag, value, envName(flag));
      continue;
    }
    const inFile = file?.settings.get(flag);
    if (file && inFile !== undefined && inFile.length > 0)
      args[flag] = coerce(flag, inFile, `${flag} in ${file.label}`);
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
