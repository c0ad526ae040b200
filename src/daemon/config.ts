/**
 * The daemon's configuration, typed once: what `startDaemon` runs from, its defaults, and every
 * parser and check for its settings. The CLI turns its flags into a DaemonConfig with these
 * parsers (cli/commands/daemon.ts); in-process callers (tests, the bench) build one with
 * daemonConfig(). Nothing past this module sees a flag: durations are milliseconds, sizes bytes,
 * the token is read, selections and render targets are parsed.
 *
 * A bad value is a usage error that names the flag an operator would fix (FLAG below), checked
 * before anything starts, so a typo never becomes a sidecar that never turns healthy.
 * (Loaded by the CLI at start, for the defaults in `daemon --help`: it must not load the server.)
 */
import { AppError } from '../core/errors';
import type { LogFormat, LogLevel } from '../core/log';
import { validateSecretRef } from '../core/labels';
import { SECRET_NAME_RULE } from '../core/names';
import { readTrustedFile } from '../core/trusted-file';
import { MAX_PAYLOAD_BYTES } from '../core/payload';
import type { PrefetchSelection } from './prefetch';
import type { RenderTarget } from './render-targets';

export interface DaemonConfig {
  /** The application whose table and key are served (validated). */
  app: string;
  /** The embedded backend in `dataDir` instead of AWS. */
  local: boolean;
  dataDir?: string;
  region?: string;
  /** Debug logs and stack traces (never payloads). */
  debug: boolean;
  /** The least severe level logged. */
  logLevel: LogLevel;
  /** JSON lines, or pino-pretty's lines for a terminal. */
  logFormat: LogFormat;
  /** TCP port; 0 picks a free one (tests). */
  port: number;
  /** Address to bind; also a Host name the daemon answers to. */
  host: string;
  /** More Host names and addresses the daemon answers to (loopback, IP literals and single labels always work). */
  allowedHosts: readonly string[];
  /** How long a read is served from memory; 0 turns the cache off. */
  cacheTtlMs: number;
  /**
   * How often the change record is read (daemon/watch.ts); 0 turns watching off, leaving the TTL
   * alone to bound staleness.
   */
  watchIntervalMs: number;
  /** How long past the TTL a cached value may be served while the backend fails. */
  staleIfErrorMs: number;
  /** Cached secret versions (and data keys) at most. */
  cacheSize: number;
  /** Memory for every cache together (secrets, data keys, configuration documents). */
  cacheMaxBytes: number;
  /** Open connections at most; more are closed at once. */
  maxConnections: number;
  /**
   * After SIGTERM: how long requests arriving on open keep-alive connections are still answered
   * (with `Connection: close`) before the remaining connections are closed.
   */
  drainMs: number;
  /** Required in X-ECS-Secrets-Token on every route but /health; undefined: no token. */
  token?: string;
  /** Refuse POST routes with 403. */
  readOnly: boolean;
  /** Secrets read before /health turns 200, then refreshed ahead of the TTL. */
  prefetch: Readonly<PrefetchSelection>;
  /** Files written with secrets, rewritten when they change. */
  render: readonly RenderTarget[];
  /** Permission bits of rendered files. */
  renderMode: number;
  /**
   * Which requests get a log line: `errors` (writes, revokes, misses, listings, refusals and
   * errors; cache hits and health checks only at debug level), `all`, or `off` (metrics only).
   */
  accessLog: AccessLog;
  /**
   * Cached reads answered before express. A switch no flag exposes: a test turns it off to check
   * that the hot path and express answer every path alike.
   */
  hotPath: boolean;
}

/** The `--access-log` modes. */
export const ACCESS_LOG_MODES = ['all', 'errors', 'off'] as const;
export type AccessLog = (typeof ACCESS_LOG_MODES)[number];

type Defaulted = Omit<DaemonConfig, 'app' | 'dataDir' | 'region' | 'token'>;

/**
 * 32 MiB for the caches, 27/32 for secrets, 1/16 for data keys, 1/16 for decrypted configuration
 * documents (GET /config), 1/32 for the name listing (GET /secrets). A 512 MiB Fargate task keeps over 350 MiB for its application: the
 * daemon idles at about 75 MiB RSS, and V8 needs room about the size of the live data on top of it
 * to collect garbage. 28 MiB hold thousands of typical secrets (about 1 KiB each with their JSON),
 * or a dozen at the worst case (MAX_ENTRY_BYTES below).
 */
const DEFAULT_CACHE_MAX_BYTES = 32 * 1024 * 1024;
/** Far above what one task's containers open, far below a container's file limit. */
const DEFAULT_MAX_CONNECTIONS = 512;

/**
 * A few seconds: a client busy on a keep-alive connection sends within milliseconds, learns of the
 * stop from its answer's `Connection: close`, and reconnects elsewhere; one idle for longer is
 * closed at the end of the window. Kept small because ECS kills the task 30 s (its default
 * stopTimeout) after SIGTERM, and in-flight requests get their own grace after the window.
 */
const DEFAULT_DRAIN_MS = 5_000;
/** The window and the in-flight grace after it (SHUTDOWN_GRACE_MS, 9 s) stay under ECS's 30 s. */
export const MAX_DRAIN_SECONDS = 20;

/** Every default, once: the `daemon` command's flags show these in their help. */
export const DAEMON_DEFAULTS: Readonly<Defaulted> = Object.freeze({
  local: false,
  debug: false,
  logLevel: 'info',
  logFormat: 'json',
  port: 8080,
  host: '127.0.0.1',
  allowedHosts: [],
  cacheTtlMs: 600_000,
  watchIntervalMs: 5_000,
  staleIfErrorMs: 300_000,
  cacheSize: 10_000,
  cacheMaxBytes: DEFAULT_CACHE_MAX_BYTES,
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  drainMs: DEFAULT_DRAIN_MS,
  readOnly: false,
  prefetch: { names: [], prefixes: [] },
  render: [],
  renderMode: 0o440,
  // A line per cache hit is most of a hot read's CPU and, in CloudWatch Logs, of the bill: the
  // default keeps the lines an operator acts on (docs/daemon.md, Logs).
  accessLog: 'errors',
  hotPath: true,
});

/**
 * The TTL's default without watching (--watch-interval 0). While watching (the default) the change
 * record bounds staleness and the TTL, 600 s, is only a safety net for writers that do not update
 * it (the original daemon).
 */
export const UNWATCHED_CACHE_TTL_MS = 30_000;

/**
 * The most one cached secret can cost: a maximum payload of control characters is six times its
 * size as JSON ("\u0001"), plus the payload itself held as a string (two bytes per character), plus
 * room for the name and bookkeeping (cache.ts entryBytes).
 */
export const MAX_ENTRY_BYTES = 8 * MAX_PAYLOAD_BYTES + 4096;
/** Below this a maximum-size secret might not fit in the read cache's share at all. */
export const MIN_CACHE_MAX_BYTES = 4 * MAX_ENTRY_BYTES;

/** The flag behind each setting, for messages. */
const FLAG = {
  port: '--port',
  cacheTtlMs: '--cache-ttl',
  watchIntervalMs: '--watch-interval',
  staleIfErrorMs: '--stale-if-error',
  cacheSize: '--cache-size',
  cacheMaxBytes: '--cache-max-bytes',
  maxConnections: '--max-connections',
  drainMs: '--drain-seconds',
  allowedHosts: '--allowed-host',
  token: '--token-file',
  prefetchNames: '--prefetch',
  prefetchPrefixes: '--prefetch-prefix',
  render: '--render',
  renderMode: '--render-mode',
  accessLog: '--access-log',
} as const;

/**
 * The whole-number settings: the largest value each flag takes, the unit it is written in (seconds
 * for durations), and the least value used (a cache or connection limit of 0 would serve nothing).
 */
const WHOLE_NUMBERS = {
  port: { max: 65_535, unitMs: 1, least: 0 },
  cacheTtlMs: { max: 86_400, unitMs: 1000, least: 0 },
  watchIntervalMs: { max: 3_600, unitMs: 1000, least: 0 },
  staleIfErrorMs: { max: 86_400, unitMs: 1000, least: 0 },
  cacheSize: { max: 10_000_000, unitMs: 1, least: 1 },
  maxConnections: { max: 1_000_000, unitMs: 1, least: 1 },
  drainMs: { max: MAX_DRAIN_SECONDS, unitMs: 1000, least: 0 },
} as const;

/** A whole number as its flag writes it (durations in seconds), as the setting holds it (milliseconds). */
export function parseWholeNumber(field: keyof typeof WHOLE_NUMBERS, text: string): number {
  const { max, unitMs, least } = WHOLE_NUMBERS[field];
  if (!/^[0-9]{1,9}$/.test(text) || Number(text) > max)
    throw new AppError(
      'usage',
      `invalid ${FLAG[field]} ${JSON.stringify(text)}: expected a whole number from 0 to ${max}`,
    );
  return Math.max(least, Number(text)) * unitMs;
}

const SIZE_UNITS: Readonly<Record<string, number>> = { kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** `--cache-max-bytes`: bytes, or a number with KiB, MiB or GiB, from MIN_CACHE_MAX_BYTES to 1 TiB. */
export function parseCacheMaxBytes(text: string): number {
  const min = MIN_CACHE_MAX_BYTES;
  const m = /^([0-9]{1,13})(KiB|MiB|GiB)?$/i.exec(text);
  const bytes = m ? Number(m[1]) * (m[2] ? SIZE_UNITS[m[2].toLowerCase()] : 1) : Number.NaN;
  if (!(bytes >= min && bytes <= 2 ** 40))
    throw new AppError(
      'usage',
      `invalid ${FLAG.cacheMaxBytes} ${JSON.stringify(text)}: expected a size from ${min} bytes (${(min / 1024 ** 2).toFixed(1)} MiB) to 1 TiB, in bytes or with KiB, MiB or GiB (e.g. 32MiB)`,
    );
  return bytes;
}

/** `--allowed-host`: host names and addresses, without scheme, port or path (brackets around IPv6 dropped). */
export function parseAllowedHosts(values: readonly string[]): string[] {
  return values.map((v) => {
    if (!/^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})|\[?[0-9A-Fa-f:.]{2,45}\]?)$/.test(v))
      throw new AppError(
        'usage',
        `invalid ${FLAG.allowedHosts} ${JSON.stringify(v.slice(0, 80))}: expected a host name or IP address, without scheme, port or path`,
      );
    return v.replace(/^\[(.*)\]$/, '$1');
  });
}

/**
 * A token goes into an HTTP header, which carries visible ASCII and spaces only: a token with any
 * other character could never be sent, and every client would be refused without a clue why.
 */
function checkTokenText(token: string, source: string): string {
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c < 0x20 || c > 0x7e)
      throw new AppError(
        'usage',
        `the token from ${source} has a ${c > 0x7e ? 'non-ASCII' : 'control'} character at position ${i + 1}: an HTTP header cannot carry it, so no client could send it; use printable ASCII (e.g. openssl rand -hex 32)`,
      );
  }
  return token;
}

/**
 * The token: read from `file` (`--token-file`) if given, else `fromEnv` (ECS_SECRETS_TOKEN, blank
 * meaning none); surrounding white space is dropped.
 */
export function readToken(file: string | undefined, fromEnv: string | undefined): string | undefined {
  if (file === undefined)
    return fromEnv === undefined || fromEnv.trim() === ''
      ? undefined
      : checkTokenText(fromEnv.trim(), 'ECS_SECRETS_TOKEN');
  const source = `${FLAG.token} ${JSON.stringify(file)}`;
  const text = readTrustedFile(file, source);
  const token = text.trim();
  if (token === '') throw new AppError('usage', `${source} is empty`);
  return checkTokenText(token, source);
}

/** `--prefetch` values: each a NAME or a comma-separated list of names; duplicates collapse. */
export function parsePrefetchNames(values: readonly string[]): string[] {
  const names = new Set<string>();
  for (const v of values)
    for (const part of v.split(',')) {
      if (part.trim() === '')
        throw new AppError('usage', `invalid ${FLAG.prefetchNames} ${JSON.stringify(v)}: expected NAME[,NAME...]`);
      names.add(validateSecretRef(part.trim()));
    }
  return [...names];
}

/** `--prefetch-prefix` values: a prefix is the start of a secret name, so it follows the secret-name rule. */
export function parsePrefetchPrefixes(values: readonly string[]): string[] {
  for (const prefix of values)
    if (!SECRET_NAME_RULE.test(prefix))
      throw new AppError(
        'usage',
        `invalid ${FLAG.prefetchPrefixes} ${JSON.stringify(prefix)}: a prefix is 1 to 255 characters from A-Z a-z 0-9 . _ -`,
      );
  return [...new Set(values)];
}

/** `--render-mode`: octal permission bits, e.g. 0440 or 440. */
export function parseRenderMode(text: string): number {
  if (!/^0?[0-7]{3}$/.test(text))
    throw new AppError(
      'usage',
      `invalid ${FLAG.renderMode} ${JSON.stringify(text)}: expected octal permissions such as 0440`,
    );
  const mode = parseInt(text, 8);
  // A rendered file others may write is a file others may fill: a dotenv file the application
  // sources would run their commands. Readers are the deployment's choice; writers are not.
  if ((mode & 0o022) !== 0)
    throw new AppError(
      'usage',
      `invalid ${FLAG.renderMode} ${JSON.stringify(text)}: rendered files must not be writable by group or others`,
    );
  return mode;
}

/** `--access-log`: all, errors or off. */
export function parseAccessLog(text: string): AccessLog {
  const mode = ACCESS_LOG_MODES.find((m) => m === text);
  if (mode === undefined)
    throw new AppError(
      'usage',
      `invalid ${FLAG.accessLog} ${JSON.stringify(text.slice(0, 40))}: expected ${ACCESS_LOG_MODES.join(', ')}`,
    );
  return mode;
}

/** Permission bits as `--render-mode` writes them (0440). */
export const formatRenderMode = (mode: number): string => `0${mode.toString(8).padStart(3, '0')}`;

/**
 * A whole configuration from the settings given and the defaults, checked as a whole. The TTL's default depends on watching (an explicit one wins).
 */
export function daemonConfig(settings: Partial<DaemonConfig> & Pick<DaemonConfig, 'app'>): DaemonConfig {
  const config: DaemonConfig = { ...DAEMON_DEFAULTS, ...settings };
  if (settings.cacheTtlMs === undefined)
    config.cacheTtlMs = config.watchIntervalMs > 0 ? DAEMON_DEFAULTS.cacheTtlMs : UNWATCHED_CACHE_TTL_MS;
  const delivers = config.prefetch.names.length > 0 || config.prefetch.prefixes.length > 0 || config.render.length > 0;
  if (config.cacheTtlMs === 0 && delivers)
    throw new AppError(
      'usage',
      `${FLAG.prefetchNames}, ${FLAG.prefetchPrefixes} and ${FLAG.render} keep secrets in the cache: they need ${FLAG.cacheTtlMs} above 0`,
    );
  return config;
}
