/**
 * What every command shares: the global flags, the context a handler gets (logger, result
 * printer), the command module shape the parser reads, and the two helpers most commands use
 * (open the backend for one operation; read a payload from a flag, file or stdin).
 */
import * as fs from 'node:fs';
import type { Argv } from 'yargs';
import { type Backend, openBackend } from '../backends/open-backend';
import { AppError } from '../core/errors';
import type { Logger } from '../core/log';
import {
  MAX_PAYLOAD_BYTES,
  decodeBase64Payload,
  validateAppName,
  validateBinaryPayload,
  validatePayload,
} from '../core/names';
import type { SecretsService } from '../core/secrets-service';

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
  /** Write text to stdout as it is (export's formats, `config build`'s documents); print() is for JSON results. */
  write(text: string): void;
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
  /** Subcommands (`config push`, ...): the parser registers them under this command. */
  subcommands?: readonly Command[];
}

/** Declare a command with its own flag type; the parser sees them all as Command<object>. */
export const defineCommand = <A>(c: Command<A>): Command => c as unknown as Command;

export const nameOption = {
  type: 'string',
  describe: 'Name of the secret (A-Z a-z 0-9 . _ -, dots for namespaces)',
  demandOption: true,
} as const;

/** `--generate [--length N] [--charset C]`: create and rotate (core/generate.ts checks the values). */
export const GENERATE_OPTIONS = {
  generate: { type: 'boolean', default: false, describe: 'Store a crypto-random value (never printed: fetch it)' },
  length: { type: 'string', describe: 'With --generate: characters, 8 to 4096 (default 32)' },
  charset: { type: 'string', describe: 'With --generate: alnum (default), hex, base64url or printable' },
} as const;

/** Open the backend for the application, run `fn` with the service, always close. */
export async function withService<T>(
  args: GlobalArgs,
  ctx: CommandContext,
  fn: (s: SecretsService) => Promise<T>,
): Promise<T> {
  return withBackend(args, ctx, (b) => fn(b.service));
}

/** Open the backend for the application, run `fn` with it (secrets and config), always close. */
export async function withBackend<T>(
  args: GlobalArgs,
  ctx: CommandContext,
  fn: (b: Backend) => Promise<T>,
): Promise<T> {
  const app = validateAppName(args['application-name']);
  const backend = await openBackend({
    app,
    local: args.local,
    dataDir: args['data-dir'],
    region: args.region,
    logger: ctx.logger,
  });
  ctx.logger.debug({ backend: backend.description }, 'backend opened');
  try {
    return await fn(backend);
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

/**
 * The payload of a binary secret: `--binary` takes the bytes of --payload-location (file or stdin)
 * as they are; `--payload-encoding base64` decodes base64 text from --payload or the file.
 */
export async function readBinaryPayload(args: {
  payload?: string;
  'payload-location'?: string;
  binary?: boolean;
  'payload-encoding'?: string;
}): Promise<Buffer> {
  const { payload, 'payload-location': location } = args;
  if (payload !== undefined && location !== undefined)
    throw new AppError('usage', 'pass only one of --payload or --payload-location');
  if (args['payload-encoding'] === 'base64') {
    if (payload !== undefined) return decodeBase64Payload(payload);
    if (location === undefined || location === '')
      throw new AppError('usage', 'pass one of --payload or --payload-location FILE (- reads standard input)');
    // base64 is 4/3 of the bytes, plus line breaks: read enough to decode a payload at the limit.
    return decodeBase64Payload((await readCapped(location, 2 * MAX_PAYLOAD_BYTES)).toString('latin1'));
  }
  if (payload !== undefined)
    throw new AppError(
      'usage',
      '--binary reads the bytes of --payload-location FILE (- reads standard input), not --payload',
    );
  if (location === undefined || location === '')
    throw new AppError('usage', '--binary needs --payload-location FILE (- reads standard input)');
  return validateBinaryPayload(await readCapped(location, MAX_PAYLOAD_BYTES + 1));
}

/** How far past the cap standard input is still counted (not kept), to say how large it was. */
const STDIN_COUNT_LIMIT = 16 * 1024 * 1024;

/**
 * Read a payload file or stdin, keeping at most `cap` bytes. Past the cap only the size is of
 * use, for the error: a file's comes from fstat, stdin's from counting (up to 16 MiB) what
 * follows, so "the payload is N bytes" names the input's real size, not how much was read.
 */
async function readCapped(location: string, cap: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let kept = 0;
  let total = 0;
  const stream = location === '-' ? process.stdin : fs.createReadStream(location, { highWaterMark: 16 * 1024 });
  try {
    for await (const chunk of stream) {
      const buf = chunk as Buffer;
      total += buf.length;
      if (kept < cap) {
        chunks.push(buf);
        kept += buf.length;
      }
      if (total < cap) continue;
      if (location !== '-') {
        total = (await fs.promises.stat(location)).size; // the file's size, not the bytes read so far
        break;
      }
      if (total > STDIN_COUNT_LIMIT) break;
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'ENOENT'
        ? 'no such file'
        : e.code === 'EACCES'
          ? 'permission denied'
          : e.code === 'EISDIR'
            ? 'it is a directory'
            : (e.code ?? e.message);
    throw new AppError('usage', `cannot read payload file ${JSON.stringify(location)}: ${why}`);
  } finally {
    if (location !== '-') (stream as fs.ReadStream).destroy();
  }
  if (total > MAX_PAYLOAD_BYTES && total >= cap) {
    const size = total > STDIN_COUNT_LIMIT && location === '-' ? `over ${STDIN_COUNT_LIMIT}` : `${total}`;
    throw new AppError('too_large', `the payload is ${size} bytes; the limit is ${MAX_PAYLOAD_BYTES} bytes (256 KiB)`);
  }
  return Buffer.concat(chunks);
}

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
