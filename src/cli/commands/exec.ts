/** `ecs-secrets exec [selection] -- CMD [ARG...]`: run CMD with the selected secrets in its environment, supervised. */
import { AppError } from '../../core/errors';
import { createLogger } from '../../core/log';
import { parseOnChange, runExec } from '../../delivery/exec';
import { currentUmask } from '../../delivery/supervisor';
import { defineCommand } from '../command';
import { type DeliveryArgs, deliveryOptions, withSelectionReader } from '../delivery-options';

interface ExecArgs extends DeliveryArgs {
  pristine: boolean;
  watch?: string;
  'on-change': string;
  'stop-timeout': string;
  '--'?: Array<string | number>;
  _: Array<string | number>;
}

/** Whole seconds or decimals, > 0 (watch) or >= 0 (stop timeout). */
function parseSeconds(flag: string, value: string, min: number): number {
  const n = /^[0-9]+(\.[0-9]+)?$/.test(value) ? Number(value) : NaN;
  if (!(n >= min) || n > 86_400)
    throw new AppError(
      'usage',
      `invalid --${flag} ${JSON.stringify(value)}: give seconds, ${min > 0 ? 'more than 0' : '0 or more'} (at most 86400)`,
    );
  return n;
}

export const execCommand = defineCommand<ExecArgs>({
  command: 'exec',
  describe:
    'Run a command with the selected secrets in its environment; with --watch, restart or signal it when they change',
  builder: (c) =>
    deliveryOptions(c)
      .usage('Usage: $0 exec (--name [VAR=]NAME | --prefix PREFIX)... [flags] -- CMD [ARG...]')
      .option('pristine', {
        type: 'boolean',
        default: false,
        describe: 'Give CMD only the secrets and PATH, not this environment',
      })
      .option('watch', {
        type: 'string',
        requiresArg: true,
        describe: 'Re-read the secrets every SECONDS and apply --on-change when one has a new version',
      })
      .option('on-change', {
        type: 'string',
        default: 'restart',
        describe:
          'With --watch: restart (stop CMD, start it with the new values), signal:SIG (e.g. signal:SIGHUP) or exit (stop CMD, exit 0)',
      })
      .option('stop-timeout', {
        type: 'string',
        default: '10',
        describe: 'Seconds CMD gets to end after SIGTERM before SIGKILL',
      })
      .example('$0 exec --prefix shop. -- node server.js', 'shop.db-password → DB_PASSWORD in the environment of node')
      .example(
        '$0 exec --daemon-url http://localhost:8080 --prefix shop. --watch 30 -- ./app',
        'through the sidecar, restarted on rotation',
      ),
  run: async (args, ctx) => {
    // Before anything sets ours (a --local store makes it 077 for its own files): CMD gets this one.
    const umask = currentUmask();
    // Everything after "--" is CMD and its arguments, passed as they are (never parsed as our flags).
    const rest = (args['--'] ?? args._.slice(1)).map(String);
    const onChange = parseOnChange(args['on-change']);
    const watchSeconds = args.watch === undefined ? undefined : parseSeconds('watch', args.watch, 0.001);
    const stopTimeoutMs = parseSeconds('stop-timeout', args['stop-timeout'], 0) * 1000;
    if (rest.length === 0 || rest[0] === '')
      throw new AppError(
        'usage',
        'name the command to run after --, e.g. ecs-secrets exec --prefix shop. -- node server.js',
      );
    // Warnings (a failed re-read) and rotations are logged at info level and up, even without --debug.
    const logger = createLogger({ debug: args.debug, level: args.debug ? 'debug' : 'info' });
    return withSelectionReader(args, { ...ctx, logger }, (read, waitForChange) =>
      runExec({
        read,
        waitForChange,
        command: rest[0],
        args: rest.slice(1),
        pristine: args.pristine,
        watchSeconds,
        onChange,
        stopTimeoutMs,
        umask,
        logger,
      }),
    );
  },
});
