/**
 * What every command shares: the global flags, the context a handler gets (logger, result
 * printer), the command module shape the parser reads, the flags several commands declare, and
 * the parser's settings.
 */
import type { Argv } from 'yargs';
import { AppError } from '../core/errors';
import type { Logger } from '../core/log';
import { validateSecretName } from '../core/names';

export interface GlobalArgs {
  'application-name'?: string;
  region?: string;
  local: boolean;
  'data-dir': string;
  debug: boolean;
  'log-level'?: string;
  'log-format'?: string;
}

/** What a command handler gets: parsed flags, a logger, and a way to print its result. */
export interface CommandContext {
  logger: Logger;
  print(result: unknown): void;
  /** Write text to stdout as it is (export's formats, `config build`'s documents); print() is for JSON results. */
  write(text: string | Uint8Array): void;
  /** A successful outcome with another exit code than 0 (`config diff`: 3 on drift). */
  setExitCode(code: number): void;
}

/**
 * One CLI command, as a plain value the parser imports (cli/main.ts lists them in help order).
 * `builder` declares the flags; `run` does the work and reports errors by throwing AppError.
 */
export interface Command<A = object> {
  command: string | readonly string[];
  describe: string;
  builder: (y: Argv<GlobalArgs>) => Argv<unknown>;
  /** Resolves to nothing (exit 0) or, for a command that ends with another's code (exec), the exit code. */
  run: (args: A & GlobalArgs, ctx: CommandContext) => Promise<void | number>;
  /** Shown under Examples in the command's help: [command line, what it does]. */
  examples?: ReadonlyArray<readonly [string, string]>;
  /** Every flag of this command may also be set as ECS_SECRETS_<FLAG> (cli/env-flags.ts). */
  envFlags?: boolean;
  /** Subcommands (`config push`, ...): the parser registers them under this command. */
  subcommands?: readonly Command[];
}

/** Declare a command with its own flag type; the parser sees them all as Command<object>. */
export const defineCommand = <A>(c: Command<A>): Command => c as unknown as Command;

export const nameOption = {
  type: 'string',
  describe:
    'Name of the secret (A-Z a-z 0-9 . _ -, dots for namespaces), or as the first argument where the usage shows [secret]',
} as const;

/**
 * A command that acts on one secret takes its name as a positional argument too
 * (`fetch db.password`, the chamber and credstash habit) or as --name (the original's flag).
 */
export const withSecretArg = (command: string): string => `${command} [secret]`;

export interface SecretArgs {
  name?: string;
  secret?: string;
}

/** The one secret named by `[secret]` or --name: both may be given only if they agree. */
export function secretName(args: SecretArgs): string {
  if (args.secret !== undefined && args.name !== undefined && args.secret !== args.name)
    throw new AppError('usage', 'the secret is named twice, differently (as an argument and as --name): give one');
  const name = args.secret ?? args.name;
  if (name === undefined)
    throw new AppError('usage', 'Missing required argument: name (give it as NAME or --name NAME)');
  return validateSecretName(name);
}

/** `--generate [--length N] [--charset C]`: create and rotate (core/generate.ts checks the values). */
export const GENERATE_OPTIONS = {
  generate: { type: 'boolean', default: false, describe: 'Store a crypto-random value (never printed: fetch it)' },
  length: { type: 'string', describe: 'With --generate: characters, 8 to 4096 (default 32)' },
  charset: { type: 'string', describe: 'With --generate: alnum (default), hex, base64url or printable' },
} as const;

/**
 * yargs' parser settings (main.ts). Repeats collect into arrays so flags declared `array: true`
 * (--name on export/exec, --render, --prefetch...) keep every value; a repeat of any other flag is
 * refused before that matters (repeated-flags.ts).
 */
export const PARSER_CONFIGURATION = {
  'duplicate-arguments-array': true,
  'parse-numbers': false,
  'parse-positional-numbers': false,
  // Flags are read by their kebab-case names only; camelCase copies would double every error ("Unknown arguments: fetch-roles, fetchRoles").
  'camel-case-expansion': false,
} as const;
