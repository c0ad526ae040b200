/**
 * The sidecar's life cycle: opens the backend, serves HTTP, reports health once the table and key
 * have been reached, and stops gracefully when asked (the `daemon` command asks on SIGTERM/SIGINT:
 * ECS sends SIGTERM, then SIGKILL after the container's stopTimeout, 30 s by default).
 */
import { BlockList, isIPv4 } from 'node:net';
import { openBackend, type Backend } from '../backends/open-backend';
import { DocumentCache, ListingCache, SecretCache } from './cache';
import { AppError } from '../core/errors';
import { CONFIG_NAME_PREFIX } from '../core/names';
import { DaemonServer } from './server';
import { createLogger, type Logger } from '../core/log';
import { Metrics } from './metrics';
import type { DaemonConfig } from './config';
import { Prefetcher } from './prefetch';
import { Renderer } from './render';
import { prepareTargets } from './render-files';
import { VERSION } from '../core/version';
import { raiseDescriptorLimit } from '../core/descriptor-limit';
import { ChangeWatcher } from './watch';

/** The data-key cache's share of the cache memory; the read cache gets the rest. */
const DATA_KEY_SHARE = 1 / 16;
/** The configuration-document cache's share (documents are few, and read at start rather than per request). */
const CONFIG_SHARE = 1 / 16;
/** The name listing's share (one entry: every name with its latest serial). */
const LISTING_SHARE = 1 / 32;

/** Give in-flight requests this long after the drain window, then exit anyway (both inside ECS's 30 s default). */
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

export interface DaemonDeps {
  logger?: Logger;
}

/** Start a daemon from its configuration (config.ts: the CLI's flags parsed, or daemonConfig() in tests and the bench). */
export async function startDaemon(config: DaemonConfig, deps: DaemonDeps = {}): Promise<RunningDaemon> {
  const logger = deps.logger ?? createLogger({ level: config.logLevel, format: config.logFormat, daemon: true });
  const { app, port, host, cacheTtlMs: ttlMs, staleIfErrorMs: staleMs, cacheSize, cacheMaxBytes, token } = config;
  const dataKeyBytes = Math.floor(cacheMaxBytes * DATA_KEY_SHARE);
  const configBytes = Math.floor(cacheMaxBytes * CONFIG_SHARE);
  const listingBytes = Math.floor(cacheMaxBytes * LISTING_SHARE);
  // Each once: a secret both prefetched and rendered (or rendered twice) is read once per TTL.
  const prefetchNames = [...new Set([...config.prefetch.names, ...config.render.flatMap((t) => t.needs.names)])];
  const prefetchPrefixes = [
    ...new Set([...config.prefetch.prefixes, ...config.render.flatMap((t) => t.needs.prefixes)]),
  ];
  // Render directories are checked before anything starts: a usage error at once, not a sidecar
  // that never turns healthy.
  prepareTargets(config.render, logger);

  // Every local user can connect to the daemon (and to a --local store it owns): descriptors must
  // run out only at the hard limit, not at a soft default of 1,024.
  const descriptors = raiseDescriptorLimit();
  const metrics = new Metrics();
  const backend = await openBackend({
    app,
    local: config.local,
    dataDir: config.dataDir,
    region: config.region,
    dataKeyCache: { max: cacheSize, ttlMs: DATA_KEY_TTL_MS, maxBytes: dataKeyBytes },
    onBackendCall: (service, operation, error) => metrics.backendCall(service, operation, error),
    logger,
  });
  // A write through this daemon that could not update the change record still stands: a log line, not stderr.
  backend.service.store.onChangeNotRecorded = (message) => logger.warn(message);
  const cache = new SecretCache({
    ttlMs,
    staleMs,
    max: cacheSize,
    maxBytes: cacheMaxBytes - dataKeyBytes - configBytes - listingBytes,
  });
  const listings = new ListingCache({ ttlMs, staleMs, max: 1, maxBytes: listingBytes });
  const configCache = new DocumentCache({
    ttlMs,
    staleMs,
    max: 1000,
    maxBytes: configBytes,
  });
  metrics.trackCacheBytes(
    () => cache.bytes + configCache.bytes + listings.bytes,
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
    config.render.length > 0
      ? new Renderer({
          targets: config.render,
          mode: config.renderMode,
          inputs: prefetcher,
          config: backend.config,
          logger,
        })
      : undefined;
  const server = new DaemonServer({
    service: backend.service,
    cache,
    listings,
    metrics,
    logger,
    token,
    readOnly: config.readOnly,
    readDeadlineMs: READ_DEADLINE_MS,
    allowedHosts: [host, ...config.allowedHosts],
    maxConnections: config.maxConnections,
    config: backend.config,
    configCache,
    accessLog: config.accessLog,
    hotPath: config.hotPath,
  });
  const watcher = new ChangeWatcher({
    store: backend.service.store,
    intervalMs: config.watchIntervalMs,
    readDeadlineMs: READ_DEADLINE_MS,
    cache,
    configCache,
    metrics,
    logger,
    keepsFresh: (key) => prefetcher.keepsFresh(key),
    onChange: (names) => {
      // A listing holds every name and its latest serial: any secret's change may change it.
      if (names === 'all' || names.some((n) => !n.startsWith(CONFIG_NAME_PREFIX))) listings.invalidateListing();
      server.changed(names);
      prefetcher.changed(names);
      // Documents rendered into files have no prefetch round to follow.
      if (renderer && (names === 'all' || names.some((n) => n.startsWith(CONFIG_NAME_PREFIX))))
        void renderer.check().catch(() => undefined);
    },
  });
  // A prefetched secret's new version arrives with a refresh round, after the change woke its
  // long-poll readers: they look again then (reads from memory; those unchanged wait on).
  prefetcher.onRefresh(async () => server.changed('all'));
  if (config.watchIntervalMs > 0) metrics.trackChangeRecordAge(() => watcher.lastGoodRead);
  let address: Awaited<ReturnType<typeof server.listen>>;
  try {
    address = await server.listen(port, host);
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
    throw new AppError(code === 'EADDRNOTAVAIL' ? 'usage' : 'unavailable', `cannot listen on ${host}:${port}: ${why}`);
  }
  logger.info(
    {
      version: VERSION,
      application: app,
      address: `${address.address}:${address.port}`,
      backend: backend.description,
      cacheTtlSeconds: ttlMs / 1000,
      watchIntervalSeconds: config.watchIntervalMs / 1000,
      staleIfErrorSeconds: staleMs / 1000,
      cacheMaxBytes,
      maxConnections: config.maxConnections,
      descriptorLimit: descriptors?.soft ?? 'unknown (no prlimit)',
      readOnly: config.readOnly,
      tokenRequired: token !== undefined,
      prefetch: prefetcher.empty ? undefined : { names: prefetchNames, prefixes: prefetchPrefixes },
      render: renderer ? config.render.map((t) => t.file) : undefined,
    },
    'daemon started',
  );
  if (token === undefined && !isLoopback(address.address))
    logger.warn(
      { address: address.address },
      'listening beyond loopback with no token: any host that reaches this address can read and write secrets (set --token-file or ECS_SECRETS_TOKEN, or --read-only, or bind 127.0.0.1)',
    );

  // Health: reach the table and key once, retrying until it works, without holding up start-up;
  // then, if asked, every prefetched secret read and every rendered file written once.
  let stopped = false;
  let reached = false;
  let renderTimer: NodeJS.Timeout | undefined;
  const updateHealth = () => {
    if (server.ready) return; // once healthy, healthy for good (see docs/daemon.md, Health)
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
      watcher.start();
      prefetcher.start();
      // Render sources that need no secret (config:PATH) have no prefetch round to
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
      logger.info(
        { reason, drainSeconds: config.drainMs / 1000 },
        'shutting down: no new connections; requests on open connections answered with Connection: close until the drain window ends',
      );
      const force = setTimeout(() => {
        logger.warn('in-flight requests still running after the grace period: closing them');
        server.server.closeAllConnections();
      }, config.drainMs + SHUTDOWN_GRACE_MS);
      force.unref();
      await server.close(config.drainMs);
      clearTimeout(force);
      await watcher.stop();
      await prefetcher.stop();
      clearInterval(renderTimer);
      await backend.close();
      logger.info('stopped');
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    })());
  return { server, backend, port: address.port, logger, stop };
}

/** Loopback addresses (127.0.0.0/8, ::1): reachable from this host, or this awsvpc task, only. */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

function isLoopback(address: string): boolean {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] ?? (isIPv4(address) ? address : undefined);
  return v4 !== undefined ? LOOPBACK.check(v4, 'ipv4') : LOOPBACK.check(address, 'ipv6');
}
