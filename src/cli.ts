#!/usr/bin/env node
/**
 * The command line: `ecs-secrets <command> [flags]`, with the original's commands and flags.
 * Results go to stdout as JSON; logs and errors to stderr. Exit codes come from ERROR_TABLE:
 * 0 success, 1 runtime error, 2 usage error. No stack trace unless --debug.
 */
import * as fs from 'node:fs';
import yargs, { Argv } from 'yargs';
import './aws'; // first: quiets the SDK's Node-version warning before any client exists
import { openBackend, DEFAULT_DATA_DIR } from './backend';
import { AppError, oneLine } from './errors';
import { createLogger, Logger } from './log';
import { MAX_PAYLOAD_BYTES, parseSerial, validateAppName, validatePayload, validateSecretName } from './names';
import { SecretsService } from './service';
import { VERSION } from './version';

export interface GlobalArgs {
  'application-name'?: string;
  region?: string;
  local: boolean;
  'data-dir': string;
  debug: boolean;
}

/** What a command handler gets: parsed flags, a logger, and a way to print its result. */
export interface CommandContext {
  logger: Logger;
  print(result: unknown): void;
}

type Handler<A> = (args: A & GlobalArgs, ctx: CommandContext) => Promise<void>;

/** Open the backend for the application, run `fn` with the service, always close. */
export async function withService<T>(args: GlobalArgs, ctx: CommandContext, fn: (s: SecretsService) => Promise<T>): Promise<T> {
  const app = validateAppName(args['application-name']);
  const backend = await openBackend({ app, local: args.local, dataDir: args['data-dir'], region: args.region });
  ctx.logger.debug({ backend: backend.description }, 'backend opened');
  try {
    return await fn(backend.service);
  } finally {
    await backend.close();
  }
}

/** Read the payload from --payload or --payload-location (a file, or - for stdin), capped at the limit. */
export async function readPayload(args: { payload?: string; 'payload-location'?: string }): Promise<string> {
  const { payload, 'payload-location': location } = args;
  if (payload !== undefined && location !== undefined)
    throw new AppError('usage', 'pass only one of --payload or --payload-location');
  if (payload !== undefined) return validatePayload(payload);
  if (location === undefined || location === '')
    throw new AppError('usage', 'pass one of --payload or --payload-location FILE (- reads standard input)');
  return validatePayload(await readCapped(location, MAX_PAYLOAD_BYTES + 1));
}

async function readCapped(location: string, cap: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  const stream = location === '-' ? process.stdin : fs.createReadStream(location, { highWaterMark: 16 * 1024 });
  try {
    for await (const chunk of stream) {
      const buf = chunk as Buffer;
      chunks.push(buf);
      total += buf.length;
      if (total >= cap) break; // enough to know it is too large
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'it is a directory' : e.code ?? e.message;
    throw new AppError('usage', `cannot read payload file ${JSON.stringify(location)}: ${why}`);
  } finally {
    if (location !== '-') (stream as fs.ReadStream).destroy();
  }
  return Buffer.concat(chunks);
}

const nameOption = { type: 'string', describe: 'Name of the secret (A-Z a-z 0-9 . _ -, dots for namespaces)', demandOption: true } as const;

/** The one-shot secret commands. Other modules register `daemon` and `setup` the same way. */
function secretCommands(y: Argv<GlobalArgs>, run: <A>(h: Handler<A>) => (a: unknown) => Promise<void>): Argv<GlobalArgs> {
  return y
    .command(
      ['create', 'store'],
      'Store a new version of a secret; prints {"name","serial"}',
      (c) =>
        c.option('name', nameOption)
          .option('payload', { type: 'string', describe: 'The secret value (prefer --payload-location: argv is visible to ps)' })
          .option('payload-location', { type: 'string', nargs: 1, describe: 'File holding the secret value; - reads standard input' }),
      run<{ name: string; payload?: string; 'payload-location'?: string }>(async (args, ctx) => {
        validateAppName(args['application-name']);
        const name = validateSecretName(args.name);
        const payload = await readPayload(args);
        const created = await withService(args, ctx, (s) => s.create(name, payload));
        ctx.logger.debug({ name: created.name, serial: created.serial }, 'secret created');
        ctx.print(created);
      }),
    )
    .command(
      ['fetch', 'get'],
      'Print a secret: the latest active version, or --serial N; prints {"name","serial","payload","active"}',
      (c) => c.option('name', nameOption).option('serial', { type: 'string', describe: 'Version to fetch (default: latest active)' }),
      run<{ name: string; serial?: string }>(async (args, ctx) => {
        validateAppName(args['application-name']);
        const name = validateSecretName(args.name);
        const serial = args.serial === undefined ? undefined : parseSerial(args.serial);
        const record = await withService(args, ctx, (s) => s.fetch(name, serial));
        ctx.logger.debug({ name: record.name, serial: record.serial, active: record.active }, 'secret fetched');
        ctx.print(record);
      }),
    )
    .command(
      'revoke',
      'Revoke one version of a secret; prints {"name","serial","active":false}',
      (c) => c.option('name', nameOption).option('serial', { type: 'string', describe: 'Version to revoke', demandOption: true }),
      run<{ name: string; serial: string }>(async (args, ctx) => {
        validateAppName(args['application-name']);
        const name = validateSecretName(args.name);
        const serial = parseSerial(args.serial);
        ctx.print(await withService(args, ctx, (s) => s.revoke(name, serial)));
      }),
    )
    .command(
      'list',
      'List secret names with their latest serial; prints [{"name","latestSerial"}]',
      (c) => c,
      run(async (args, ctx) => ctx.print(await withService(args, ctx, (s) => s.list()))),
    )
    .command(
      'history',
      'List the versions of a secret, never payloads; prints [{"serial","active","createdAt"}]',
      (c) => c.option('name', nameOption),
      run<{ name: string }>(async (args, ctx) => {
        validateAppName(args['application-name']);
        const name = validateSecretName(args.name);
        ctx.print(await withService(args, ctx, (s) => s.history(name)));
      }),
    );
}

export type CommandRegistrar = (y: Argv<GlobalArgs>, run: <A>(h: Handler<A>) => (a: unknown) => Promise<void>) => Argv<GlobalArgs>;

/** Extra commands (daemon, setup) register here; kept as a list so cli.ts stays the only parser. */
export const extraCommands: CommandRegistrar[] = [];

export function buildParser(argv: string[], ctx: { onResult: (p: Promise<void>) => void; out: (s: string) => void }): Argv<GlobalArgs> {
  const run =
    <A>(handler: Handler<A>) =>
    (raw: unknown): Promise<void> => {
      const args = raw as A & GlobalArgs;
      // The original's flag, or the environment (handy in task definitions). Not yargs' .env():
      // that would turn every ECS_SECRETS_* variable, e.g. the token, into an unknown flag.
      args['application-name'] ??= process.env.ECS_SECRETS_APPLICATION_NAME || undefined;
      const logger = createLogger({ debug: args.debug, level: args.debug ? 'debug' : 'warn' });
      const p = handler(args, { logger, print: (r) => ctx.out(`${JSON.stringify(r)}\n`) });
      ctx.onResult(p);
      return p.catch(() => undefined); // the error is reported once, by main()
    };
  let y = yargs(argv)
    .scriptName('ecs-secrets')
    .usage('Usage: $0 <command> [flags]\n\nVersioned, envelope-encrypted secrets for AWS ECS tasks.')
    .option('application-name', { type: 'string', describe: 'Application name (or ECS_SECRETS_APPLICATION_NAME)', global: true })
    .option('region', { type: 'string', describe: 'AWS region (default: the SDK chain, e.g. AWS_REGION)', global: true })
    .option('local', { type: 'boolean', default: false, describe: 'Use the embedded backend instead of AWS', global: true })
    .option('data-dir', { type: 'string', default: DEFAULT_DATA_DIR, describe: 'Embedded backend data directory', global: true })
    .option('debug', { type: 'boolean', default: false, describe: 'Debug logs and stack traces (never payloads)', global: true })
    .version(VERSION)
    .alias('help', 'h')
    .strict()
    .demandCommand(1, 'name a command: setup, create, fetch, revoke, list, history or daemon')
    .recommendCommands()
    .parserConfiguration({
      'duplicate-arguments-array': false,
      'parse-numbers': false,
      'parse-positional-numbers': false,
      // Flags are read by their kebab-case names only; camelCase copies would double every error ("Unknown arguments: fetch-roles, fetchRoles").
      'camel-case-expansion': false,
    })
    .exitProcess(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      throw err instanceof AppError ? err : new AppError('usage', hidePayloadFragments(msg ?? err?.message ?? 'invalid command line', argv));
    }) as unknown as Argv<GlobalArgs>;
  y = secretCommands(y, run);
  for (const register of extraCommands) y = register(y, run);
  return y;
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

/** Runs the CLI; resolves to the exit code. Never throws. */
export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const debug = argv.includes('--debug');
  let pending: Promise<void> | undefined;
  try {
    await buildParser(argv, { onResult: (p) => (pending = p), out }).parseAsync();
    if (pending) await pending;
    return 0;
  } catch (err) {
    const e = err instanceof AppError ? err : new AppError('internal', `unexpected error: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    process.stderr.write(`ecs-secrets: ${oneLine(e.message)}\n`);
    if (e.kind === 'usage') process.stderr.write(`Run 'ecs-secrets --help' for usage.\n`);
    if (debug) process.stderr.write(`${stackChain(e)}\n`);
    return e.exitCode;
  }
}

function stackChain(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { stack?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) parts.push(e.stack ?? String(e));
  return parts.join('\nCaused by: ');
}

if (require.main === module) {
  // Command modules register themselves on import; importing them here keeps that in one place.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('./commands');
  main(process.argv.slice(2)).then((code) => {
    // Let stdout drain before exiting: a piped `fetch` result must not be cut short.
    process.stdout.write('', () => process.exit(code));
  });
}
