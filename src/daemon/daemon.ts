/**
 * The sidecar's life cycle: opens the backend, serves HTTP, reports health once the table and key
 * have been reached, and stops gracefully when asked (the `daemon` command asks on SIGTERM/SIGINT:
 * ECS sends SIGTERM, then SIGKILL after the container's stopTimeout, 30 s by default).
 */
import * as fs from 'node:fs';
import { openBackend, Backend } from '../backends/open-backend';
import { SecretCache } from './cache';
import { AppError } from '../core/errors';
import { DaemonServer } from './server';
import { createLogger, Logger } from '../core/log';
import { Metrics } from './metrics';
import { validateAppName } from '../core/names';
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
  'token-file'?: string;
  'read-only': boolean;
}

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

function readToken(file: string | undefined): string | undefined {
  if (file !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new AppError('usage', `cannot read --token-file ${JSON.stringify(file)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    const token = text.trim();
    if (token === '') throw new AppError('usage', `--token-file ${JSON.stringify(file)} is empty`);
    return token;
  }
  const env = process.env.ECS_SECRETS_TOKEN;
  return env === undefined || env.trim() === '' ? undefined : env.trim();
}

/** Start a daemon from parsed flags. Exported for tests and the benchmark. */
export async function startDaemon(args: DaemonArgs, logger = createLogger({ debug: args.debug, daemon: true })): Promise<RunningDaemon> {
  const app = validateAppName(args['application-name']);
  const port = nonNegativeInt('port', args.port, 65535);
  const ttlMs = nonNegativeInt('cache-ttl', args['cache-ttl'], 86_400) * 1000;
  const staleMs = nonNegativeInt('stale-if-error', args['stale-if-error'], 86_400) * 1000;
  const cacheSize = Math.max(1, nonNegativeInt('cache-size', args['cache-size'], 10_000_000));
  const token = readToken(args['token-file']);

  const metrics = new Metrics();
  const backend = await openBackend({
    app,
    local: args.local,
    dataDir: args['data-dir'],
    region: args.region,
    dataKeyCache: { max: cacheSize, ttlMs: DATA_KEY_TTL_MS },
    onBackendCall: (service, operation, error) => metrics.backendCall(service, operation, error),
  });
  const cache = new SecretCache({ ttlMs, staleMs, max: cacheSize });
  const server = new DaemonServer({
    service: backend.service,
    cache,
    metrics,
    logger,
    token,
    readOnly: args['read-only'],
    readDeadlineMs: READ_DEADLINE_MS,
    config: backend.config,
    configCacheTtlMs: ttlMs,
  });
  let address;
  try {
    address = await server.listen(port, args.host);
  } catch (err) {
    await backend.close();
    const code = (err as NodeJS.ErrnoException).code;
    throw new AppError(code === 'EADDRINUSE' || code === 'EACCES' ? 'usage' : 'unavailable', `cannot listen on ${args.host}:${port}: ${code ?? (err as Error).message}`);
  }
  logger.info(
    {
      version: VERSION,
      application: app,
      address: `${address.address}:${address.port}`,
      backend: backend.description,
      cacheTtlSeconds: ttlMs / 1000,
      staleIfErrorSeconds: staleMs / 1000,
      readOnly: args['read-only'],
      tokenRequired: token !== undefined,
    },
    'daemon started',
  );

  // Health: reach the table and key once, retrying until it works, without holding up start-up.
  let stopped = false;
  const probe = async (delayMs: number): Promise<void> => {
    if (stopped) return;
    try {
      await backend.service.check();
      server.ready = true;
      logger.info('table and key reached: healthy');
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
      await backend.close();
      logger.info('stopped');
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
    })());
  return { server, backend, port: address.port, logger, stop };
}
