/**
 * The command line's parser: global flags, the commands (each a module in commands/, listed here
 * in help order), and main(), which turns every outcome into one stderr line and an exit code from
 * ERROR_TABLE: 0 success, 1 runtime error, 2 usage error. No stack trace unless --debug.
 */
import yargs, { type Argv, type MiddlewareFunction } from 'yargs';
import '../backends/aws'; // first: quiets the SDK's Node-version warning before any client exists
import { DEFAULT_DATA_DIR } from '../backends/open-backend';
import { AppError, oneLine } from '../core/errors';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel, createLogger, defaultLogFormat } from '../core/log';
import { VERSION } from '../core/version';
import { createCommand } from './commands/create';
import { daemonCommand } from './commands/daemon';
import { execCommand } from './commands/exec';
import { exportCommand } from './commands/export';
import { fetchCommand } from './commands/fetch';
import { historyCommand } from './commands/history';
import { importCommand } from './commands/import';
import { labelCommand } from './commands/label';
import { listCommand } from './commands/list';
import { revokeCommand } from './commands/revoke';
import { rollbackCommand } from './commands/rollback';
import { rotateCommand } from './commands/rotate';
import { setupCommand } from './commands/setup';
import { configCommand } from './commands/config';
import { versionCommand } from './commands/version';
import { type Command, type GlobalArgs, PARSER_CONFIGURATION } from './command';
import { nearest } from './did-you-mean';
import { applyEnvFlags, envSaysTrue, withEnvNote } from './env-flags';
import { mapStack } from './source-stack';
import { type DeclaredOptions, flagsOnLine, refuseRepeatedFlags, unknownFlags } from './repeated-flags';

/** Every command, in the order `--help` lists them. */
const COMMANDS: readonly Command[] = [
  createCommand,
  fetchCommand,
  revokeCommand,
  listCommand,
  historyCommand,
  labelCommand,
  rollbackCommand,
  rotateCommand,
  daemonCommand,
  setupCommand,
  exportCommand,
  execCommand,
  configCommand,
  importCommand,
  versionCommand,
];

export function buildParser(
  argv: string[],
  ctx: {
    onResult: (p: Promise<void | number>) => void;
    out: (s: string | Uint8Array) => void;
    setExitCode?: (code: number) => void;
  },
): Argv<GlobalArgs> {
  const run =
    (handler: Command['run']) =>
    (raw: unknown): Promise<void> => {
      const args = raw as GlobalArgs;
      const logger = createLogger({
        level: (args['log-level'] as LogLevel | undefined) ?? (args.debug ? 'debug' : 'warn'),
        format: (args['log-format'] as LogFormat | undefined) ?? defaultLogFormat(),
      });
      const p = handler(args, {
        logger,
        print: (r) => ctx.out(`${JSON.stringify(r)}\n`),
        write: (text) => ctx.out(text),
        setExitCode: (code) => ctx.setExitCode?.(code),
      });
      ctx.onResult(p);
      return p.then(
        () => undefined,
        () => undefined,
      ); // the error is reported once, by main()
    };
  let y = yargs(argv)
    .scriptName('ecs-secrets')
    .usage('Usage: $0 <command> [flags]\n\nVersioned, envelope-encrypted secrets for AWS ECS tasks.')
    .option('application-name', {
      type: 'string',
      describe: withEnvNote('application-name', 'Application name'),
      global: true,
    })
    .option('region', {
      type: 'string',
      describe: withEnvNote('region', 'AWS region (default: the SDK chain, e.g. AWS_REGION)'),
      global: true,
    })
    .option('local', {
      type: 'boolean',
      default: false,
      describe: withEnvNote('local', 'Use the embedded backend instead of AWS'),
      global: true,
    })
    .option('data-dir', {
      type: 'string',
      default: DEFAULT_DATA_DIR,
      describe: withEnvNote('data-dir', 'Embedded backend data directory'),
      global: true,
    })
    .option('debug', {
      type: 'boolean',
      default: false,
      describe: withEnvNote('debug', 'Debug logs and stack traces (never payloads)'),
      global: true,
    })
    .option('log-level', {
      type: 'string',
      choices: LOG_LEVELS,
      describe: withEnvNote(
        'log-level',
        'Least severe log line written (default: warn; the daemon: info; --debug: debug)',
      ),
      global: true,
    })
    .option('log-format', {
      type: 'string',
      choices: LOG_FORMATS,
      describe: withEnvNote(
        'log-format',
        'Log lines as json, or pretty for people (default: pretty on a terminal, else json)',
      ),
      global: true,
    })
    .group([...GLOBAL_FLAGS, 'help', 'version'], 'Global flags:')
    .version(VERSION)
    .alias('help', 'h')
    .completion(
      'completion',
      'Print a shell completion script: bash, or zsh when run from zsh (append it to ~/.bashrc or ~/.zshrc)',
    )
    .strict()
    .demandCommand(
      1,
      'name a command: setup, create, fetch, revoke, list, history, label, rollback, rotate, daemon, export, exec, config, import, version or completion',
    )
    .recommendCommands()
    .parserConfiguration(PARSER_CONFIGURATION)
    // Before validation, so `--name a --name b` is reported as what it is, and a flag set in the
    // environment counts as given. yargs passes itself here, with the options of the command being
    // run already declared.
    .middleware(flagsMiddleware(argv) as unknown as MiddlewareFunction, true)
    .exitProcess(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      throw err instanceof AppError
        ? err
        : new AppError('usage', hidePayloadFragments(msg ?? err?.message ?? 'invalid command line', argv));
    }) as unknown as Argv<GlobalArgs>;
  for (const c of COMMANDS) {
    const subs = c.subcommands ?? [];
    const builder =
      subs.length === 0
        ? helpLayout(c)
        : (yy: Argv<GlobalArgs>) =>
            subs.reduce(
              (b, s) => b.command(s.command as string | string[], s.describe, helpLayout(s), run(s.run)),
              helpLayout(c)(yy) as Argv<GlobalArgs>,
            );
    y = y.command(c.command as string | string[], c.describe, builder, run(c.run));
  }
  skipHelpCache(y);
  return y;
}

/**
 * yargs renders the whole help text each time it starts a command, to have it at hand should the
 * command fail later; a failure here is one line (main()), never help, so that is wasted work:
 * about 7 % of the CPU a one-shot command costs. `--help` still renders it.
 */
function skipHelpCache(y: Argv<GlobalArgs>): void {
  type Usage = { cacheHelpMessage(): void };
  const usage = (y as unknown as { getInternalMethods(): { getUsageInstance(): Usage } })
    .getInternalMethods()
    .getUsageInstance();
  usage.cacheHelpMessage = () => undefined;
}

/**
 * A command's help: its usage line, its own flags first (the global ones follow, grouped), then its
 * examples.
 */
const helpLayout =
  (c: Command) =>
  (yy: Argv<GlobalArgs>): Argv<unknown> => {
    const b = c.builder(yy) as Argv<GlobalArgs>;
    for (const [line, what] of c.examples ?? []) b.example(line, what);
    const usage = typeof c.command === 'string' ? c.command : c.command[0];
    const positionals = new Set([...usage.matchAll(/[<[]([\w-]+)[\]>]/g)].map((m) => m[1]));
    const shared = new Set([...GLOBAL_FLAGS, 'help', 'version']);
    const own = Object.keys((b as unknown as { getOptions(): DeclaredOptions }).getOptions().key).filter(
      (k) => !shared.has(k) && !positionals.has(k),
    );
    return own.length > 0 ? b.group(own, 'Flags:') : b;
  };

/** The flags every command takes, each also read from its ECS_SECRETS_* variable (env-flags.ts). */
const GLOBAL_FLAGS = ['application-name', 'region', 'local', 'data-dir', 'debug', 'log-level', 'log-format'];

/** Commands (by every name) whose own flags may all come from the environment too. */
const ENV_COMMANDS = new Set(
  COMMANDS.filter((c) => c.envFlags).flatMap((c) => (typeof c.command === 'string' ? [c.command] : [...c.command])),
);

/** yargs calls middleware with itself as a second argument (its types omit it). */
const flagsMiddleware =
  (argv: string[]) => (args: Record<string, unknown> & { _: unknown[] }, y: { getOptions(): DeclaredOptions }) => {
    // Shell completion asks with a partial command line: nothing to check in it.
    if (argv.includes('--get-yargs-completions')) return;
    const opts = y.getOptions();
    // Before yargs' own checks, which report a missing flag first: `--nmae x` is a typo of --name,
    // and saying so beats "Missing required argument: name".
    const [unknown] = unknownFlags(argv, opts);
    if (unknown !== undefined)
      throw new AppError(
        'usage',
        hidePayloadFragments(`Unknown argument: ${unknown}${didYouMean(unknown, Object.keys(opts.key))}`, argv),
      );
    refuseRepeatedFlags(argv, opts);
    // Help describes the flags; it should not fail on a setting it does not use (a missing config file).
    if (flagsOnLine(argv, opts).some((u) => u.key === 'help')) return;
    const own = ENV_COMMANDS.has(String(args._[0]))
      ? Object.keys(opts.key).filter((k) => k !== 'help' && k !== 'version')
      : [];
    applyEnvFlags(argv, opts, args, new Set([...GLOBAL_FLAGS, ...own]));
  };

/** ` (did you mean --name?)` when a declared flag is one or two edits away from `spelling`. */
function didYouMean(spelling: string, flags: readonly string[]): string {
  const best = nearest(spelling.replace(/^--?/, '').replace(/=.*$/, ''), flags);
  return best ? ` (did you mean --${best}?)` : '';
}

/**
 * yargs lists unknown arguments by value. With --payload on the line, those are most likely
 * pieces of the secret (an unquoted value split by the shell, or one starting with "-" read as
 * flags), and stderr ends up in logs: name the mistake, not the values.
 */
function hidePayloadFragments(message: string, argv: string[]): string {
  const hasPayload = argv.some((a) => a === '--payload' || a.startsWith('--payload='));
  if (!hasPayload || !/^Unknown arguments?:/.test(message)) return message;
  return 'unexpected extra arguments (not shown: with --payload they may be part of the secret); quote the value, or better use --payload-location FILE (- reads standard input)';
}

/**
 * `--payload VALUE` takes the next word as its value whatever it looks like, as getopt does for
 * an option with a required argument: a password may well start with "-", and yargs would read
 * `--payload -x` as two flags. Rewritten to `--payload=VALUE` before parsing; `--` still ends the
 * flags.
 */
function joinPayloadValue(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--') return [...out, ...argv.slice(i)];
    if (argv[i] === '--payload' && i + 1 < argv.length && argv[i + 1].startsWith('-'))
      out.push(`--payload=${argv[++i]}`);
    else out.push(argv[i]);
  }
  return out;
}

/** Runs the CLI; resolves to the exit code. Never throws. */
export async function main(
  rawArgv: string[],
  out: (s: string | Uint8Array) => void = (s) => process.stdout.write(s),
): Promise<number> {
  const argv = joinPayloadValue(rawArgv);
  const debug = argv.includes('--debug') || (envSaysTrue('debug') && !argv.includes('--no-debug'));
  let pending: Promise<void | number> | undefined;
  let exitCode = 0;
  try {
    await buildParser(argv, { onResult: (p) => (pending = p), out, setExitCode: (c) => (exitCode = c) }).parseAsync();
    const code = pending ? await pending : undefined;
    return typeof code === 'number' ? code : exitCode;
  } catch (err) {
    const e =
      err instanceof AppError
        ? err
        : new AppError('internal', `unexpected error: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    process.stderr.write(`ecs-secrets: ${oneLine(e.message)}\n`);
    if (debug) process.stderr.write(`${mapStack(stackChain(e))}\n`);
    return e.exitCode;
  }
}

function stackChain(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { stack?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e)
    parts.push(e.stack ?? String(e));
  return parts.join('\nCaused by: ');
}
