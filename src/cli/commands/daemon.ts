/**
 * `ecs-secrets daemon`: the sidecar's flags, turned into its typed configuration (daemon/config.ts
 * holds the defaults and the parsers); runs the daemon until SIGTERM or SIGINT, then stops it
 * gracefully.
 */
import { validateAppName } from '../../core/names';
import {
  DAEMON_DEFAULTS,
  type DaemonConfig,
  UNWATCHED_CACHE_TTL_MS,
  daemonConfig,
  formatRenderMode,
  parseAllowedHosts,
  parseCacheMaxBytes,
  parsePrefetchNames,
  parsePrefetchPrefixes,
  parseRenderMode,
  parseWholeNumber,
  readToken,
} from '../../daemon/config';
import { parseRenderTargets } from '../../daemon/render-targets';
import { type GlobalArgs, defineCommand } from '../command';

/** The daemon's flags as yargs gives them (strings: each is parsed into the configuration, refused naming its flag). */
export interface DaemonFlags extends GlobalArgs {
  port: string;
  host: string;
  'cache-ttl'?: string;
  'watch-interval': string;
  'stale-if-error': string;
  'cache-size': string;
  'cache-max-bytes': string;
  'token-file'?: string;
  'read-only': boolean;
  'allowed-host'?: string[];
  'max-connections': string;
  prefetch?: string[];
  'prefetch-prefix'?: string[];
  render?: string[];
  'render-mode': string;
}

/** The configuration the flags describe; the token is read from --token-file, or else from `env`. */
export function daemonConfigFromFlags(f: DaemonFlags, env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  return daemonConfig({
    app: validateAppName(f['application-name']),
    local: f.local,
    dataDir: f['data-dir'],
    region: f.region,
    debug: f.debug,
    port: parseWholeNumber('port', f.port),
    host: f.host,
    cacheTtlMs: f['cache-ttl'] === undefined ? undefined : parseWholeNumber('cacheTtlMs', f['cache-ttl']),
    watchIntervalMs: parseWholeNumber('watchIntervalMs', f['watch-interval']),
    staleIfErrorMs: parseWholeNumber('staleIfErrorMs', f['stale-if-error']),
    cacheSize: parseWholeNumber('cacheSize', f['cache-size']),
    cacheMaxBytes: parseCacheMaxBytes(f['cache-max-bytes']),
    maxConnections: parseWholeNumber('maxConnections', f['max-connections']),
    allowedHosts: parseAllowedHosts(f['allowed-host'] ?? []),
    token: readToken(f['token-file'], env.ECS_SECRETS_TOKEN),
    readOnly: f['read-only'],
    render: parseRenderTargets(f.render ?? []),
    renderMode: parseRenderMode(f['render-mode']),
    prefetch: {
      names: parsePrefetchNames(f.prefetch ?? []),
      prefixes: parsePrefetchPrefixes(f['prefetch-prefix'] ?? []),
    },
  });
}

const D = DAEMON_DEFAULTS;

export const daemonCommand = defineCommand<DaemonFlags>({
  command: 'daemon',
  describe: 'Serve secrets over HTTP to the containers of this task (the sidecar)',
  builder: (c) =>
    c
      .option('port', { type: 'string', default: String(D.port), describe: 'TCP port' })
      .option('host', {
        type: 'string',
        default: D.host,
        describe: 'Address to bind (127.0.0.1: this task only on awsvpc)',
      })
      .option('cache-ttl', {
        type: 'string',
        describe: `Seconds a read is served from memory; 0 turns the cache off [default: ${D.cacheTtlMs / 1000} while watching, else ${UNWATCHED_CACHE_TTL_MS / 1000}]`,
      })
      .option('watch-interval', {
        type: 'string',
        default: String(D.watchIntervalMs / 1000),
        describe:
          'Seconds between reads of the change record, which drop changed secrets at once; 0 turns watching off',
      })
      .option('stale-if-error', {
        type: 'string',
        default: String(D.staleIfErrorMs / 1000),
        describe: 'Seconds past the TTL a cached value may be served while the backend fails',
      })
      .option('cache-size', {
        type: 'string',
        default: String(D.cacheSize),
        describe: 'Maximum cached secret versions (and data keys)',
      })
      .option('cache-max-bytes', {
        type: 'string',
        default: `${D.cacheMaxBytes / 1024 ** 2}MiB`,
        describe: 'Memory for cached secrets and data keys together, in bytes or KiB/MiB/GiB',
      })
      .option('token-file', {
        type: 'string',
        describe: 'File holding the token required in X-ECS-Secrets-Token (or ECS_SECRETS_TOKEN)',
      })
      .option('read-only', { type: 'boolean', default: D.readOnly, describe: 'Refuse POST routes with 403' })
      .option('allowed-host', {
        type: 'string',
        array: true,
        describe:
          'Another Host name the daemon answers to (repeatable); loopback, IP addresses and single-label names always work',
      })
      .option('max-connections', {
        type: 'string',
        default: String(D.maxConnections),
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
      .option('render-mode', {
        type: 'string',
        default: formatRenderMode(D.renderMode),
        describe: 'Permissions of rendered files (octal)',
      }),
  run: async (args) => {
    const config = daemonConfigFromFlags(args);
    // Loaded here, not at the top: express, prom-client and the server are the daemon's alone, and
    // every one-shot command (fetch, create, ...) would otherwise load them at start.
    const { startDaemon } = require('../../daemon/daemon') as typeof import('../../daemon/daemon');
    const daemon = await startDaemon(config);
    await new Promise<void>((resolve) => {
      const onSignal = (signal: NodeJS.Signals) => {
        daemon.stop(signal).then(resolve, resolve);
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    });
  },
});
