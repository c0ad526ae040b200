/** What the config subcommands share: read a document (file or stdin, capped), write one atomically. */
import { openConfigKeys } from '../../../backends/open-backend';
import type { ConfigKeySource } from '../../../config/keysource';
import { MAX_INPUT_BYTES } from '../../../config/documents-service';
import { writeFileAtomic } from '../../../core/atomic-file';
import { readCapped } from '../../../core/capped-input';
import { AppError } from '../../../core/errors';
import { validateAppName } from '../../../core/names';
import { decodeUtf8 } from '../../../core/payload';
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
  const { data, size } = await readCapped(location, MAX_INPUT_BYTES + 1, 'document');
  if (size > MAX_INPUT_BYTES)
    throw new AppError('too_large', `the document is over ${MAX_INPUT_BYTES} bytes (1 MiB), the input limit`);
  // A document is parsed, not stored as given: a leading byte-order mark is the file's encoding
  // label, which JSON.parse would refuse, so it goes (a payload keeps it: core/payload.ts).
  return decodeUtf8(data, 'document').replace(/^\ufeff/, '');
}

/** Write atomically (core/atomic-file.ts), with `mode`. */
export async function writeDocument(file: string, text: string, mode: number): Promise<void> {
  try {
    await writeFileAtomic(file, text, mode);
  } catch (err) {
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
