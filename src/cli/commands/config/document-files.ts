/** What the config subcommands share: read a document (file or stdin, capped), write one atomically. */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openConfigKeys } from '../../../backends/open-backend';
import type { ConfigKeySource } from '../../../config/keysource';
import { MAX_INPUT_BYTES } from '../../../config/documents-service';
import { AppError } from '../../../core/errors';
import { validateAppName } from '../../../core/names';
import type { GlobalArgs } from '../../command';

export const pathOption = {
  type: 'string',
  describe: 'Configuration path (e.g. team-a/api)',
  demandOption: true,
} as const;

/**
 * The document argument: a flag or positional value. yargs reads a bare `-` as an empty string
 * (or `true`, or leaves it in `_`): all of those mean standard input, as the contract's `(--file FILE | -)` says.
 */
export function sourceOf(args: object, ...given: Array<string | boolean | undefined>): string | undefined {
  const named = given.find((g) => typeof g === 'string' && g !== '');
  if (named !== undefined) return named as string;
  if (given.some((g) => g === '' || g === true) || (args as { _?: unknown[] })._?.map(String).includes('-')) return '-';
  return undefined;
}

/** Read FILE (or - for standard input) as UTF-8 text, refusing anything over the input limit. */
export async function readDocument(location: string | undefined): Promise<string> {
  if (location === undefined || location === '')
    throw new AppError('usage', 'name the document: a FILE, or - for standard input');
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    const stream = location === '-' ? process.stdin : fs.createReadStream(location);
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      total += (chunk as Buffer).length;
      if (total > MAX_INPUT_BYTES) {
        if (location !== '-') (stream as fs.ReadStream).destroy();
        throw new AppError('too_large', `the document is over ${MAX_INPUT_BYTES} bytes (1 MiB), the input limit`);
      }
    }
  } catch (err) {
    if (err instanceof AppError) throw err;
    const e = err as NodeJS.ErrnoException;
    const why =
      e.code === 'ENOENT'
        ? 'no such file'
        : e.code === 'EACCES'
          ? 'permission denied'
          : e.code === 'EISDIR'
            ? 'it is a directory'
            : (e.code ?? 'unreadable');
    throw new AppError('usage', `cannot read document ${JSON.stringify(location)}: ${why}`);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new AppError('usage', 'the document is not valid UTF-8 text');
  }
}

/** Write atomically (temp file in the same directory, then rename), with `mode`. */
export function writeDocument(file: string, text: string, mode: number): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    fs.writeFileSync(tmp, text, { mode, flag: 'wx' });
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new AppError(
      'usage',
      `cannot write ${JSON.stringify(file)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

/** The key source alone (local files need no table); the application name only on AWS (the key alias). */
export async function withConfigKeys<T>(
  args: GlobalArgs,
  fn: (keys: ConfigKeySource, app: string) => Promise<T>,
): Promise<T> {
  const app = args.local ? (args['application-name'] ?? 'local') : validateAppName(args['application-name']);
  const opened = openConfigKeys({ app, local: args.local, dataDir: args['data-dir'], region: args.region });
  try {
    return await fn(opened.keys, app);
  } finally {
    opened.close();
  }
}
