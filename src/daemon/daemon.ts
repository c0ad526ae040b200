/**
 * The sidecar's life cycle: opens the backend, serves HTTP, reports health once the table and key
 * have been reached, and stops gracefully when asked (the `daemon` command asks on SIGTERM/SIGINT:
 * ECS sends SIGTERM, then SIGKILL after the container's stopTimeout, 30 s by default).
 */
import * as fs from 'node:fs';
import { openBackend, type Backend } from '../backends/open-backend';
import { SecretCache } from './cache';
import { AppError } from '../core/errors';
import { DaemonServer } from './server';
import { createLogger, type Logger } from '../core/log';
import { Metrics } from './metrics';
import { MAX_PAYLOAD_BYTES, validateAppName } from '../core/names';
import { DEFAULT_CACHE_MAX_BYTES, DEFAULT_MAX_CONNECTIONS } from './limits';
import { Prefetcher, parsePrefetchNames, validatePrefix } from './prefetch';
import {
  DEFAULT_RENDER_MODE,
  RENDER_KINDS,
  Renderer,
  configSource,
  parseRenderMode,
  parseRenderTargets,
  prepareTargets,
} from './render';
import { VERSION } from '../core/version';

/** The daemon's flags as the CLI parses them (strings: each is checked here, with a usage error naming the flag). */
export interface DaemonArgs {
  'application-name'?: string;
  region?: string;
  local: boolean;
  'data-dir': string;
  debug: boolean;
  port: string;
  host: string;
  'cache-ttl': string;
  'stale-if-error': string;
  'cache-size': string;
  /** Optional for callers that predate them (the bench); the CLI always passes its defaults. */
  'cache-max-bytes'?: string;
  'token-file'?: string;
  'read-only': boolean;
  'allowed-host'?: string[];
  'max-connections'?: string;
  prefetch?: string[];
  'prefetch-prefix'?: string[];
  render?: string[];
  'render-mode'?: string;
}

/**
 * The most one cached secret can cost: a maximum payload of control characters is six times its
 * size as JSON ("\u0001"), plus the payload itself held as a string (two bytes per character), plus
 * room for the name and bookkeeping (cache.ts entryBytes).
 */
export const MAX_ENTRY_BYTES = 8 * MAX_PAYLOAD_BYTES + 4096;
/** Below this a maximum-size secret might not fit in the read cache's share at all. */
export const MIN_CACHE_MAX_BYTES = 4 * MAX_ENTRY_BYTES;
/** The data-key cache's share of --cache-max-bytes; the read cache gets the rest. */
const DATA_KEY_SHARE = 1 / 16;
/** The configuration-document cache's share (documents are few, and read at start rather than per request). */
const CONFIG_SHARE = 1 / 16;

/** Give in-flight requests this long after SIGTERM, then exit anyway (inside ECS's 30 s default). */
export const SHUTDOWN_GRACE_MS = 9_000;
const READ_DEADLINE_MS = 4_000;
const DATA_KEY_TTL_MS = 15 * 60_000;

export interface RunningDaemon {
  server: DaemonServer;
  backend: Backend;
  port: number;
  logger: Logger;
  /** Graceful stop: no new connections, in-flight requests finish, backend closed. */
  stop(reason: string): Promise<void>;
}

function nonNegativeInt(flag: string, value: string, max: number): number {
  if (!/^[0-9]{1,9}$/.test(value) || Number(value) > max)
    throw new AppError('usage', `invalid --${flag} ${JSON.stringify(value)}: expected a whole number from 0 to ${max}`);
  return Number(value);
}

/** Bytes, or a number with KiB, MiB or GiB. */
function byteSize(flag: string, value: string, min: number): number {
  const m = /^([0-9]{1,13})(KiB|MiB|GiB)?$/i.exec(value);
  const units: Record<string, number> = { kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };
  const bytes = m ? Number(m[1]) * (m[2] ? units[m[2].toLowerCase()] : 1) : NaN;
  if (!(bytes >= min && bytes <= 2 ** 40))
    throw new AppError(
      'usage',
      `invalid --${flag} ${JSON.stringify(value)}: expected a size from ${min} bytes (${(min / 1024 ** 2).toFixed(1)} MiB) to 1 TiB, in bytes or with KiB, MiB or GiB (e.g. 32MiB)`,
    );
  return bytes;
}

/** Host names and addresses for --allowed-host: no scheme, port or path. */
function allowedHosts(values: string[] | undefined): string[] {
  return (values ?? []).map((v) => {
    if (!/^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})|\[?[0-9A-Fa-f:.]{2,45}\]?)$/.test(v))
      throw new AppError(
        'usage',
        `invalid --allowed-host ${JSON.stringify(v.slice(0, 80))}: expected a host name or IP address, without scheme, port or path`,
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

function readToken(file: string | undefined): string | undefined {
  if (file !== undefined) {
    let text: string;
    try {
      // A token file others may write is a token others may choose: refused, as ssh refuses a
      // writable authorized_keys. (Owner and readers are left to the deployment: secrets mounted
      // by a runtime are often root's and readable by the sidecar's group.)
      const st = fs.statSync(file);
      if (st.isFile() && (st.mode & 0o022) !== 0)
        throw new AppError(
          'usage',
          `refusing --token-file ${JSON.stringify(file)}: it is writable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod go-w it`,
        );
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw new AppError(
        'usage',
        `cannot read --token-file ${JSON.stringify(file)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    const token = text.trim();
    if (token === '') throw new AppError('usage', `--token-file ${JSON.stringify(file)} is empty`);
    return checkTokenText(token, `--token-file ${JSON.stringify(file)}`);
  }
  const env = process.env.ECS_SECRETS_TOKEN;
  return env === undefined || env.trim() === '' ? undefined : checkTokenText(env.trim(), 'ECS_SECRETS_TOKEN');
}

/** Start a daemon from parsed flags. Exported for tests and the benchmark. */
export async function startDaemon(
  args: DaemonArgs,
  logger = createLogger({ debug: args.debug, daemon: true }),
): Promise<RunningDaemon> {
  const app = validateAppName(args['application-name']);
  const port = nonNegativeInt('port', args.port, 65535);
  const ttlMs = nonNegativeInt('cache-ttl', args['cache-ttl'], 86_400) * 1000;
  const staleMs = nonNegativeInt('stale-if-error', args['stale-if-error'], 86_400) * 1000;
  const cacheSize = Math.max(1, nonNegativeInt('cache-size', args['cache-size'], 10_000_000));
  const cacheMaxBytes = byteSize(
    'cache-max-bytes',
    args['cache-max-bytes'] ?? String(DEFAULT_CACHE_MAX_BYTES),
    MIN_CACHE_MAX_BYTES,
  );
  const maxConnections = Math.max(
    1,
    nonNegativeInt('max-connections', args['max-connections'] ?? String(DEFAULT_MAX_CONNECTIONS), 1_000_000),
  );
  const hosts = [args.host, ...allowedHosts(args['allowed-host'])];
  const token = readToken(args['token-file']);
  const dataKeyBytes = Math.floor(cacheMaxBytes * DATA_KEY_SHARE);
  const configBytes = Math.floor(cacheMaxBytes * CONFIG_SHARE);
  // Delivery (prefetch.ts, render.ts): checked before anything starts, so a bad flag or render
  // directory is a usage error at once, not a sidecar that never turns healthy.
  let backendForRender: Backend | undefined;
  const renderTargets = parseRenderTargets(args.render ?? [], {
    ...RENDER_KINDS,
    config: configSource(() => {
      if (!backendForRender) throw new AppError('unavailable', 'the backend is not open yet');
      return backendForRender.config;
    }),
  });
  const renderMode = parseRenderMode(args['render-mode'] ?? DEFAULT_RENDER_MODE);
  // Each once: a secret both prefetched and rendered (or rendered twice) is read once per TTL.
  const prefetchNames = [
    ...new Set([...parsePrefetchNames(args.prefetch ?? []), ...renderTargets.flatMap((t) => t.source.needs.names)]),
  ];
  const prefetchPrefixes = [
    ...new Set([
      ...(args['prefetch-prefix'] ?? []).map((p) => validatePrefix('--prefetch-prefix', p)),
      ...renderTargets.flatMap((t) => t.source.needs.prefixes),
    ]),
  ];
  if (ttlMs === 0 && (prefetchNames.length > 0 || prefetchPrefixes.length > 0 || renderTargets.length > 0))
    throw new AppError(
      'usage',
      '--prefetch, --prefetch-prefix and --render keep secrets in the cache: they need --cache-ttl above 0',
    );
  prepareTargets(renderTargets, logger);

  const metrics = new Metrics();
  const backend = await openBackend({
    app,
    local: args.local,
    dataDir: args['data-dir'],
    region: args.region,
    dataKeyCache: { max: cacheSize, ttlMs: DATA_KEY_TTL_MS, maxBytes: dataKeyBytes },
    onBackendCall: (service, operation, error) => metrics.backendCall(service, operation, error),
    logger,
  });
  backendForRender = backend;
  const cache = new SecretCache({
    ttlMs,
    staleMs,
    max: cacheSize,
    maxBytes: cacheMaxBytes - dataKeyBytes - configBytes,
  });
  const configCache = new SecretCache({
    ttlMs,
    staleMs,
    max: 1000,
    maxBytes: configBytes,
    body: (r) => Buffer.from(r.payload),
  });
  metrics.trackCacheBytes(
    () => cache.bytes + configCache.bytes,
    () => backend.cachedKeyBytes(),
  );
  const prefetcher = new Prefetcher({
    service: backend.service,
    cache,
    logger,
    ttlMs,
    names: prefetchNames,
    prefixes: prefetchPrefixes,
    readDeadlineMs: READ_DEADLINE_MS,
  });
  const renderer =
    renderTargets.length > 0
      ? new Renderer({ targets: renderTargets, mode: renderMode, inputs: prefetcher, logger })
      : undefined;
  const server = new DaemonServer({
    service: backend.service,
    cache,
    metrics,
    logger,
    token,
    readOnly: args['read-only'],
    readDeadlineMs: READ_DEADLINE_MS,
    allowedHosts: hosts,
    maxConnections,
    config: backend.config,
    configCache,
  });
  let address: Awaited<ReturnType<typeof server.listen>>;
  try {
    address = await server.listen(port, args.host);
  } catch (err) {
    await backend.close();
    // The machine's state, not the command line: exit 1, like a backend that cannot be reached.
    // (EADDRNOTAVAIL, a --host that is no address of this machine, is the operator's typo: exit 2.)
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'EADDRINUSE'
        ? 'the port is in use'
        : code === 'EACCES'
          ? 'permission denied (a port below 1024 needs privileges)'
          : code === 'EADDRNOTAVAIL'
            ? 'not an address of this machine'
            : (code ?? (err as Error).message);
    throw new AppError(
      code === 'EADDRNOTAVAIL' ? 'usage' : 'unavailable',
      `cannot listen on ${args.host}:${port}: ${why}`,
    );
  }
  logger.info(
    {
      version: VERSION,
      application: app,
      address: `${address.address}:${address.port}`,
      backend: backend.description,
      cacheTtlSeconds: ttlMs / 1000,
      staleIfErrorSeconds: staleMs / 1000,
      cacheMaxBytes,
      maxConnections,
      readOnly: args['read-only'],
      tokenRequired: token !== undefined,
      prefetch: prefetcher.empty ? undefined : { names: prefetchNames, prefixes: prefetchPrefixes },
      render: renderer ? renderTargets.map((t) => t.file) : undefined,
    },
    'daemon started',
  );

  // Health: reach the table and key once, retrying until it works, without holding up start-up;
  // then, if asked, every prefetched secret read and every rendered file written once.
  let stopped = false;
  let reached = false;
  let renderTimer: NodeJS.Timeout | undefined;
  const updateHealth = () => {
    if (server.ready) return; // once healthy, healthy for good (see the README, Health)
    const waiting = reached ? (prefetcher.waitingFor() ?? renderer?.waitingFor()) : undefined;
    if (!reached || waiting !== undefined) {
      if (waiting !== undefined) server.notReadyReason = waiting;
      return;
    }
    server.ready = true;
    logger.info(
      `table and key reached${prefetcher.empty ? '' : ', secrets prefetched'}${renderer ? ', files rendered' : ''}: healthy`,
    );
  };
  prefetcher.onRefresh(async () => {
    await renderer?.check();
    updateHealth();
  });
  const probe = async (delayMs: number): Promise<void> => {
    if (stopped) return;
    try {
      await backend.service.check();
      reached = true;
      updateHealth();
      prefetcher.start();
      // Render sources that need no secret (issue 11's config:PATH) have no prefetch round to
      // follow: with nothing to prefetch, the files are checked on their own, once per TTL.
      if (renderer && prefetcher.empty) {
        const tick = () => void renderer.check().then(updateHealth);
        tick();
        renderTimer = setInterval(tick, ttlMs);
        renderTimer.unref();
      }
    } catch (err) {
      logger.warn({ error: (err as Error).message }, 'backend not reachable yet; /health answers 503');
      setTimeout(() => void probe(Math.min(delayMs * 2, 10_000)), delayMs).unref();
    }
  };
  void probe(250);

  let stopping: Promise<void> | undefined;
  const stop = (reason: string): Promise<void> =>
    (stopping ??= (async () => {
      stopped = true;
      logger.info({ reason }, 'shutting down: no new connections, finishing in-flight requests');
      const force = setTimeout(() => {
        logger.warn('in-flight requests still running after the grace period: closing them');
        server.server.closeAllConnections();
      }, SHUTDOWN_GRACE_MS);
      force.unref();
      await server.close();
      clearTimeout(force);
      await prefetcher.stop();
      clearInterval(renderTimer);
      await backend.close();
      logger.info('stopped');
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    })());
  return { server, backend, port: address.port, logger, stop };
}
