/**
 * `ecs-secrets daemon`: the sidecar's flags, turned into its typed configuration (daemon/config.ts
 * holds the defaults and the parsers); runs the daemon until SIGTERM or SIGINT, then stops it
 * gracefully.
 */
import { type LogFormat, type LogLevel, defaultLogFormat } from '../../core/log';
import { validateAppName } from '../../core/names';
import {
  DAEMON_DEFAULTS,
  type DaemonConfig,
  UNWATCHED_CACHE_TTL_MS,
  daemonConfig,
  formatRenderMode,
  parseAccessLog,
  parseAllowedHosts,
  parseCacheMaxBytes,
  parsePrefetchNames,
  parsePrefetchPrefixes,
  parseRenderMode,
  MAX_DRAIN_SECONDS,
  parseWholeNumber,
  readToken,
} from '../../daemon/config';
import { parseRenderTargets } from '../../daemon/render-targets';
import { type GlobalArgs, defineCommand } from '../command';
import { withEnvNote } from '../env-flags';

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
  'drain-seconds': string;
  prefetch?: string[];
  'prefetch-prefix'?: string[];
  render?: string[];
  'render-mode': string;
  'access-log': string;
  /** Read by the parser, which takes the other flags from it (cli/config-file.ts). */
  config?: string;
}

/** The configuration the flags describe; the token is read from --token-file, or else from `env`. */
export function daemonConfigFromFlags(f: DaemonFlags, env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  return daemonConfig({
    app: validateAppName(f['application-name']),
    local: f.local,
    dataDir: f['data-dir'],
    region: f.region,
    debug: f.debug,
    logLevel: (f['log-level'] as LogLevel | undefined) ?? (f.debug ? 'debug' : DAEMON_DEFAULTS.logLevel),
    logFormat: (f['log-format'] as LogFormat | undefined) ?? defaultLogFormat(),
    port: parseWholeNumber('port', f.port),
    host: f.host,
    cacheTtlMs: f['cache-ttl'] === undefined ? undefined : parseWholeNumber('cacheTtlMs', f['cache-ttl']),
    watchIntervalMs: parseWholeNumber('watchIntervalMs', f['watch-interval']),
    staleIfErrorMs: parseWholeNumber('staleIfErrorMs', f['stale-if-error']),
    cacheSize: parseWholeNumber('cacheSize', f['cache-size']),
    cacheMaxBytes: parseCacheMaxBytes(f['cache-max-bytes']),
    maxConnections: parseWholeNumber('maxConnections', f['max-connections']),
    drainMs: parseWholeNumber('drainMs', f['drain-seconds']),
    allowedHosts: parseAllowedHosts(f['allowed-host'] ?? []),
    token: readToken(f['token-file'], env.ECS_SECRETS_TOKEN),
    readOnly: f['read-only'],
    render: parseRenderTargets(f.render ?? []),
    renderMode: parseRenderMode(f['render-mode']),
    accessLog: parseAccessLog(f['access-log']),
    prefetch: {
      names: parsePrefetchNames(f.prefetch ?? []),
      prefixes: parsePrefetchPrefixes(f['prefetch-prefix'] ?? []),
    },
  });
}

const D = DAEMON_DEFAULTS;

export const daemonCommand = defineCommand<DaemonFlags>({
  command: 'daemon',
  examples: [
    ['$0 daemon --application-name shop --token-file /run/token', 'the sidecar on 127.0.0.1:8080'],
    ['ECS_SECRETS_HOST=0.0.0.0 $0 daemon --local --application-name demo', 'every interface, the embedded store'],
    ['$0 daemon --config /etc/ecs-secrets/daemon.yaml --port 9090', 'settings from a file, the port from the line'],
  ],
  describe: 'Serve secrets over HTTP to the containers of this task (the sidecar)',
  envFlags: true,
  builder: (c) =>
    c
      .option('config', {
        type: 'string',
        describe: withEnvNote(
          'config',
          'Settings from a YAML or JSON file, keys as these flags without dashes (cache-ttl: 60; a list for a repeatable flag); flags and ECS_SECRETS_* variables win over it',
        ),
      })
      .option('port', { type: 'string', default: String(D.port), describe: withEnvNote('port', 'TCP port') })
      .option('host', {
        type: 'string',
        default: D.host,
        describe: withEnvNote(
          'host',
          'Address to bind: loopback serves the containers of an awsvpc task; 0.0.0.0 (every interface) is for bridge mode and links',
        ),
      })
      .option('cache-ttl', {
        type: 'string',
        describe: withEnvNote(
          'cache-ttl',
          `Seconds a read is served from memory; 0 turns the cache off [default: ${D.cacheTtlMs / 1000} while watching, else ${UNWATCHED_CACHE_TTL_MS / 1000}]`,
        ),
      })
      .option('watch-interval', {
        type: 'string',
        default: String(D.watchIntervalMs / 1000),
        describe: withEnvNote(
          'watch-interval',
          'Seconds between reads of the change record, which drop changed secrets at once; 0 turns watching off',
        ),
      })
      .option('stale-if-error', {
        type: 'string',
        default: String(D.staleIfErrorMs / 1000),
        describe: withEnvNote(
          'stale-if-error',
          'Seconds past the TTL a cached value may be served while the backend fails',
        ),
      })
      .option('cache-size', {
        type: 'string',
        default: String(D.cacheSize),
        describe: withEnvNote('cache-size', 'Maximum cached secret versions (and data keys)'),
      })
      .option('cache-max-bytes', {
        type: 'string',
        default: `${D.cacheMaxBytes / 1024 ** 2}MiB`,
        describe: withEnvNote(
          'cache-max-bytes',
          'Memory for cached secrets and data keys together, in bytes or KiB/MiB/GiB',
        ),
      })
      .option('token-file', {
        type: 'string',
        describe: withEnvNote(
          'token-file',
          'File holding the token required in X-ECS-Secrets-Token (or ECS_SECRETS_TOKEN)',
        ),
      })
      .option('read-only', {
        type: 'boolean',
        default: D.readOnly,
        describe: withEnvNote('read-only', 'Refuse POST routes with 403'),
      })
      .option('allowed-host', {
        type: 'string',
        array: true,
        describe: withEnvNote(
          'allowed-host',
          'Another Host name the daemon answers to (repeatable); loopback, IP addresses and single-label names always work',
        ),
      })
      .option('max-connections', {
        type: 'string',
        default: String(D.maxConnections),
        describe: withEnvNote('max-connections', 'Open connections at most; more are closed at once'),
      })
      .option('drain-seconds', {
        type: 'string',
        default: String(D.drainMs / 1000),
        describe: withEnvNote(
          'drain-seconds',
          `After SIGTERM, answer requests on open connections (with Connection: close) this long, then close them (0 to ${MAX_DRAIN_SECONDS})`,
        ),
      })
      .option('prefetch', {
        type: 'string',
        array: true,
        describe: withEnvNote(
          'prefetch',
          'Read NAME[,NAME...] before /health turns 200, then refresh them ahead of the TTL (repeatable)',
        ),
      })
      .option('prefetch-prefix', {
        type: 'string',
        array: true,
        describe: withEnvNote('prefetch-prefix', 'Prefetch every secret whose name starts with PREFIX (repeatable)'),
      })
      .option('render', {
        type: 'string',
        array: true,
        describe: withEnvNote(
          'render',
          'Write secrets to a file, atomically, rewritten when they change: FILE=NAME (raw payload), FILE=dotenv:SELECTOR, FILE=json:SELECTOR (SELECTOR: PREFIX* or NAME,NAME) or FILE=config:PATH (a configuration document, decrypted) (repeatable)',
        ),
      })
      .option('render-mode', {
        type: 'string',
        default: formatRenderMode(D.renderMode),
        describe: withEnvNote('render-mode', 'Permissions of rendered files (octal)'),
      })
      .option('access-log', {
        type: 'string',
        default: D.accessLog,
        describe: withEnvNote(
          'access-log',
          'Request lines: errors (writes, revokes, misses, refusals, errors; hits only at debug), all, or off',
        ),
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
