/**
 * What export and exec share: the selection flags (--name, --prefix), where to read from
 * (--daemon-url or the backend), and reading the selection with the backend open only during a read.
 */
import type { Argv } from 'yargs';
import { validateAppName } from '../core/names';
import { type SelectedValue, parseSelection } from '../delivery/selection';
import {
  type SecretSource,
  daemonSource,
  parseDaemonUrl,
  readSelection,
  serviceSource,
} from '../delivery/secret-reader';
import type { CommandContext, GlobalArgs } from './command';
import { withService } from './backend-scope';

export interface DeliveryArgs {
  name?: string | string[];
  prefix?: string | string[];
  'daemon-url'?: string;
}

export function deliveryOptions<T>(y: Argv<T>): Argv<T> {
  return (
    y
      // --name and --prefix repeat (declared as arrays: repeated-flags.ts lets them).
      .option('name', {
        type: 'string',
        array: true,
        requiresArg: true,
        describe: 'A secret to deliver: NAME (variable from the name) or VAR=NAME; repeatable',
      })
      .option('prefix', {
        type: 'string',
        array: true,
        requiresArg: true,
        describe: 'Every secret whose name starts with PREFIX (variable: the rest of the name); repeatable',
      })
      .option('daemon-url', {
        type: 'string',
        requiresArg: true,
        describe:
          'Read through a running daemon, e.g. http://localhost:8080 (or ECS_SECRETS_DAEMON_URL; token from ECS_SECRETS_TOKEN)',
      }) as Argv<T>
  );
}

/**
 * Parse the selection and run `fn` with a reader of it: from the daemon when --daemon-url is given,
 * else from the backend, opened for each read and closed before the read returns. So nothing of
 * the backend is open between reads: exec starts CMD only then, and a descriptor open at that
 * moment (the embedded store's write-ahead log, for one) would be inherited by CMD.
 */
export async function withSelectionReader<R>(
  args: DeliveryArgs & GlobalArgs,
  ctx: CommandContext,
  fn: (read: () => Promise<SelectedValue[]>, waitForChange?: SecretSource['waitForChange']) => Promise<R>,
): Promise<R> {
  const selection = parseSelection(args);
  const url = args['daemon-url'] ?? (process.env.ECS_SECRETS_DAEMON_URL || undefined);
  if (url !== undefined) {
    const source = daemonSource(parseDaemonUrl(url), process.env.ECS_SECRETS_TOKEN);
    return fn(() => readSelection(source, selection), source.waitForChange);
  }
  validateAppName(args['application-name']);
  return fn(() => withService(args, ctx, 'existing', (service) => readSelection(serviceSource(service), selection)));
}
