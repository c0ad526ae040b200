/** `ecs-secrets daemon`: the sidecar's flags; runs the daemon until SIGTERM or SIGINT, then stops it gracefully. */
import { createLogger } from '../../core/log';
import type { DaemonArgs } from '../../daemon/daemon';
import { DEFAULT_CACHE_MAX_BYTES, DEFAULT_MAX_CONNECTIONS } from '../../daemon/limits';
import { defineCommand } from '../context';

export const daemonCommand = defineCommand<DaemonArgs>({
  command: 'daemon',
  describe: 'Serve secrets over HTTP to the containers of this task (the sidecar)',
  builder: (c) =>
    c
      .option('port', { type: 'string', default: '8080', describe: 'TCP port' })
      .option('host', {
        type: 'string',
        default: '0.0.0.0',
        describe: 'Address to bind (127.0.0.1: this task only on awsvpc)',
      })
      .option('cache-ttl', {
        type: 'string',
        default: '30',
        describe: 'Seconds a read is served from memory; 0 turns the cache off',
      })
      .option('stale-if-error', {
        type: 'string',
        default: '300',
        describe: 'Seconds past the TTL a cached value may be served while the backend fails',
      })
      .option('cache-size', {
        type: 'string',
        default: '10000',
        describe: 'Maximum cached secret versions (and data keys)',
      })
      .option('cache-max-bytes', {
        type: 'string',
        default: `${DEFAULT_CACHE_MAX_BYTES / 1024 ** 2}MiB`,
        describe: 'Memory for cached secrets and data keys together, in bytes or KiB/MiB/GiB',
      })
      .option('token-file', {
        type: 'string',
        describe: 'File holding the token required in X-ECS-Secrets-Token (or ECS_SECRETS_TOKEN)',
      })
      .option('read-only', { type: 'boolean', default: false, describe: 'Refuse POST routes with 403' })
      .option('allowed-host', {
        type: 'string',
        array: true,
        describe:
          'Another Host name the daemon answers to (repeatable); loopback, IP addresses and single-label names always work',
      })
      .option('max-connections', {
        type: 'string',
        default: String(DEFAULT_MAX_CONNECTIONS),
        describe: 'Open connections at most; more are closed at once',
      })
      .option('prefetch', {
        type: 'string',
        array: true,
        describe: 'Read NAME[,NAME...] before /health turns 200, then refresh them ahead of the TTL (repeatable)',
      })
      .option('prefetch-prefix', {
        type: 'string',
        array: true,
        describe: 'Prefetch every secret whose name starts with PREFIX (repeatable)',
      })
      .option('render', {
        type: 'string',
        array: true,
        describe:
          'Write secrets to a file, atomically, rewritten when they change: FILE=NAME (raw payload), FILE=dotenv:SELECTOR or FILE=json:SELECTOR (SELECTOR: PREFIX* or NAME,NAME) (repeatable)',
      })
      .option('render-mode', { type: 'string', default: '0440', describe: 'Permissions of rendered files (octal)' }),
  run: async (args) => {
    // Loaded here, not at the top: express, prom-client and the server are the daemon's alone, and
    // every one-shot command (fetch, create, ...) would otherwise load them at start (issue 13).
    const { startDaemon } = require('../../daemon/daemon') as typeof import('../../daemon/daemon');
    const logger = createLogger({ debug: args.debug, daemon: true });
    const daemon = await startDaemon(args, logger);
    await new Promise<void>((resolve) => {
      const onSignal = (signal: NodeJS.Signals) => {
        daemon.stop(signal).then(resolve, resolve);
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    });
  },
});
