/**
 * `ecs-secrets daemon`: the sidecar. Opens the backend, serves HTTP, reports health once the
 * table and key have been reached, and shuts down gracefully on SIGTERM/SIGINT (ECS sends
 * SIGTERM, then SIGKILL after the container's stopTimeout, 30 s by default).
 */
import * as fs from 'node:fs';
import { Argv } from 'yargs';
import { openBackend, Backend } from './backend';
import { SecretCache } from './cache';
import type { CommandRegistrar, GlobalArgs } from './cli';
import { AppError } from './errors';
import { DaemonServer } from './http';
import { createLogger, Logger } from './log';
import { Metrics } from './metrics';
import { validateAppName } from './names';
import { VERSION } from './version';

export interface DaemonArgs extends GlobalArgs {
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

export const registerDaemon: CommandRegistrar = (y, run) =>
  y.command(
    'daemon',
    'Serve secrets over HTTP to the containers of this task (the sidecar)',
    (c: Argv<GlobalArgs>) =>
      c
        .option('port', { type: 'string', default: '8080', describe: 'TCP port' })
        .option('host', { type: 'string', default: '0.0.0.0', describe: 'Address to bind (127.0.0.1: this task only on awsvpc)' })
        .option('cache-ttl', { type: 'string', default: '30', describe: 'Seconds a read is served from memory; 0 turns the cache off' })
        .option('stale-if-error', { type: 'string', default: '300', describe: 'Seconds past the TTL a cached value may be served while the backend fails' })
        .option('cache-size', { type: 'string', default: '10000', describe: 'Maximum cached secret versions (and data keys)' })
        .option('token-file', { type: 'string', describe: 'File holding the token required in X-ECS-Secrets-Token (or ECS_SECRETS_TOKEN)' })
        .option('read-only', { type: 'boolean', default: false, describe: 'Refuse POST routes with 403' }),
    run<DaemonArgs>(async (args) => {
      const logger = createLogger({ debug: args.debug, daemon: true });
      const daemon = await startDaemon(args, logger);
      await new Promise<void>((resolve) => {
        const onSignal = (signal: NodeJS.Signals) => {
          daemon.stop(signal).then(resolve, resolve);
        };
        process.once('SIGTERM', onSignal);
        process.once('SIGINT', onSignal);
      });
    }),
  );
