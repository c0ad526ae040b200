/**
 * What export and exec share: the selection flags (--name, --prefix), where to read from
 * (--daemon-url or the backend), and opening that source for the command's lifetime.
 */
import type { Argv } from 'yargs';
import { validateAppName } from '../core/names';
import { type Selection, parseSelection } from '../delivery/selection';
import { type SecretSource, daemonSource, parseDaemonUrl, serviceSource } from '../delivery/secret-reader';
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

/** Parse the selection and run `fn` with the source: the daemon when --daemon-url is given, else the backend. */
export async function withSource<R>(
  args: DeliveryArgs & GlobalArgs,
  ctx: CommandContext,
  fn: (source: SecretSource, selection: Selection) => Promise<R>,
): Promise<R> {
  const selection = parseSelection(args);
  const url = args['daemon-url'] ?? (process.env.ECS_SECRETS_DAEMON_URL || undefined);
  if (url !== undefined) return fn(daemonSource(parseDaemonUrl(url), process.env.ECS_SECRETS_TOKEN), selection);
  validateAppName(args['application-name']);
  return withService(args, ctx, 'existing', (service) => fn(serviceSource(service), selection));
}
