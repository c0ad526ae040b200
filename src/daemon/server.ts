/**
 * The daemon's HTTP server: the contract's routes under /latest and /v1, wired from the pieces in
 * http/ (access checks, secret and configuration routes, responses, error mapping, socket limits).
 * Cached secret reads and health checks take the hot path (http/secret-routes.ts, and health
 * here) before express; express handles everything else: misses, writes, metrics, errors. Express
 * is loaded by the first request the hot path does not answer: a sidecar that only answers health
 * checks and cached reads never loads it (about 15 MiB of heap and code).
 */
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import type express from 'express';
import type { NextFunction, Request, Response } from 'express';
import type { ConfigService } from '../config/documents-service';
import { AppError } from '../core/errors';
import type { Logger } from '../core/log';
import type { SecretsService } from '../core/secrets-service';
import { API_VERSION, VERSION } from '../core/version';
import type { DocumentCache, ListingCache, SecretCache } from './cache';
import type { AccessLog } from './config';
import { Access } from './http/access';
import { ConfigRoutes } from './http/config-routes';
import { describeError, httpError, protocolError } from './http/errors';
import { RequestObserver } from './http/observer';
import { errorReason, rawReply, safePath, send, sendError, shortPath } from './http/responses';
import { SecretRoutes } from './http/secret-routes';
import {
  CONNECTIONS_CHECKING_INTERVAL_MS,
  HEADERS_TIMEOUT_MS,
  KEEP_ALIVE_TIMEOUT_MS,
  MAX_HEADER_BYTES,
  REQUEST_TIMEOUT_MS,
} from './http/socket-limits';
import type { Metrics } from './metrics';

export interface DaemonOptions {
  service: SecretsService;
  cache: SecretCache;
  /** The name listing of GET /secrets, with the same TTL and stale window as reads. */
  listings: ListingCache;
  metrics: Metrics;
  logger: Logger;
  /** When set, every route but /health needs header X-ECS-Secrets-Token with this value. */
  token?: string;
  readOnly: boolean;
  /** A read that takes longer than this answers 503 (the SDK keeps retrying in the background). */
  readDeadlineMs: number;
  /** Host names and addresses the sidecar answers to besides loopback and IP literals (--host, --allowed-host). */
  allowedHosts?: readonly string[];
  /** Open connections at most (--max-connections); more are closed at once. */
  maxConnections?: number;
  /** Configuration documents (GET /config/*path); absent: the route answers 404. */
  config?: ConfigService;
  /** Decrypted documents by path and format, with the daemon's TTL and stale window and their share of --cache-max-bytes. */
  configCache?: DocumentCache;
  /** Which requests get a log line (config.ts, accessLog); default `errors`. */
  accessLog?: AccessLog;
  /**
   * Cached reads answered before express (default on). Off only in tests, to compare the hot
   * path's answers with express's on the same requests (test/reliability/routing.test.ts).
   */
  hotPath?: boolean;
}

const HEALTH_PATH = /^(\/(?:latest|v1))?\/health\/?(?:\?.*)?$/;
const HEALTHY = Buffer.from('{"status":"ok"}');

export class DaemonServer {
  readonly server: http.Server;
  /** Express with every route, built when first needed (see the file's comment). */
  private expressApp?: express.Express;
  /** True once the table and the key have been reached; /health answers 503 until then. */
  ready = false;
  /** What /health says it waits for while not ready (start-up also waits for prefetch and render). */
  notReadyReason = 'the table and key have not been reached yet';
  /** Host, proxy, cross-site and token checks, shared by both layers. */
  private readonly access: Access;
  private readonly observer: RequestObserver;
  private readonly secrets: SecretRoutes;
  private readonly configs: ConfigRoutes;
  /** Set by close(): every response from then on says `Connection: close`. */
  private draining = false;
  /** Responses express has not finished, so close() can mark those still to send their headers. */
  private readonly pending = new Set<http.ServerResponse>();

  constructor(private readonly opts: DaemonOptions) {
    this.access = new Access(opts.allowedHosts ?? [], opts.token);
    this.observer = new RequestObserver(opts.metrics, opts.logger, opts.accessLog);
    this.secrets = new SecretRoutes({ ...opts, access: this.access, observer: this.observer });
    this.configs = new ConfigRoutes(opts);
    const hotPath = opts.hotPath ?? true;
    // Slow-loris and idle-socket bounds for a server that lives next to the application (http/socket-limits.ts).
    this.server = http.createServer(
      {
        connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
        headersTimeout: HEADERS_TIMEOUT_MS,
        requestTimeout: REQUEST_TIMEOUT_MS,
        keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
        maxHeaderSize: MAX_HEADER_BYTES,
      },
      (req, res) => {
        if (this.draining) res.setHeader('Connection', 'close');
        if (!hotPath || !(this.secrets.hot(req, res) || this.health(req, res))) this.app(req, res);
      },
    );
    if (opts.maxConnections !== undefined) this.server.maxConnections = opts.maxConnections;
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.onClientError(err, socket));
  }

  /** The express application, loaded and built on first use. */
  get app(): express.Express {
    this.expressApp ??= this.buildApp();
    return this.expressApp;
  }

  /**
   * GET /health without express, as express answers it (same headers, status, body, metrics and
   * log line): an orchestrator's probes must not be what loads express. Anything unusual (another
   * method, a refused request) goes to express, which answers it with the same checks.
   */
  private health(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (req.method !== 'GET' || !req.url) return false;
    const m = HEALTH_PATH.exec(req.url);
    if (!m || this.access.refuse(req)) return false;
    const start = process.hrtime.bigint();
    const reqId = this.observer.requestId(req);
    const [status, body] = this.healthAnswer();
    send(res, status, body, undefined, reqId);
    this.observer.observe('GET', `${m[1] ?? ''}/health`, status, start, reqId);
    return true;
  }

  private healthAnswer(): [number, Buffer] {
    return this.ready
      ? [200, HEALTHY]
      : [503, Buffer.from(JSON.stringify({ status: 'starting', error: this.notReadyReason }))];
  }

  /** These secrets changed elsewhere (daemon/watch.ts): long-poll readers waiting on them look again. */
  changed(names: readonly string[] | 'all'): void {
    this.secrets.changed(names);
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const address = this.server.address() as AddressInfo;
        this.access.addPort(address.port);
        resolve(address);
      });
    });
  }

  /**
   * Drain, as a proxy does: stop accepting at once; for `drainMs`, answer what arrives on open
   * keep-alive connections, each answer saying `Connection: close` (so the client closes that
   * connection itself and reconnects elsewhere); then close idle connections and let in-flight
   * requests finish. Resolves when the last connection is gone (early, when every client has left).
   */
  close(drainMs = 0): Promise<void> {
    // From now on every response asks the client to close its connection, so a keep-alive client
    // learns of the shutdown from the response itself and never sends into a closing socket.
    this.draining = true;
    for (const res of this.pending) if (!res.headersSent) res.setHeader('Connection', 'close');
    // Long-poll readers get their 304 now rather than holding the shutdown for their wait.
    this.secrets.endWaits();
    return new Promise((resolve) => {
      let sweep: NodeJS.Timeout | undefined;
      // Closing an idle connection races a client about to send on it (the request is reset), so
      // idle connections stay open through the window; only then are they closed, as they turn idle.
      const window = setTimeout(() => {
        this.server.closeIdleConnections();
        sweep = setInterval(() => this.server.closeIdleConnections(), 50);
      }, drainMs);
      // net's close, not http's: http.Server.close also closes every idle connection at once.
      net.Server.prototype.close.call(this.server, () => {
        clearTimeout(window);
        clearInterval(sweep);
        // Now http's own close: it stops its timeout checker (the listener is already closed).
        this.server.close(() => resolve());
      });
    });
  }

  /** Node's own protocol errors get the contract's JSON error body, not Node's bare status line. */
  private onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    const busy = (socket as { _httpMessage?: http.ServerResponse })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || busy?.headersSent) {
      socket.destroy();
      return;
    }
    const [status, message] = protocolError(err.code);
    socket.end(rawReply(status, message));
  }

  private buildApp(): express.Express {
    const express = require('express') as typeof import('express');
    const app = express();
    app.disable('x-powered-by');
    app.disable('etag');
    app.set('query parser', 'simple');
    // Secret names are case-sensitive, like the table's keys: /secrets/VERSION is a secret, not
    // the version route (express matches case-insensitively by default; the hot path never did).
    app.set('case sensitive routing', true);

    app.use((req, res, next) => {
      const start = process.hrtime.bigint();
      const reqId = this.observer.requestId(req);
      res.locals.reqId = reqId;
      res.setHeader('X-Request-Id', reqId);
      this.pending.add(res);
      res.on('close', () => this.pending.delete(res));
      res.on('finish', () => {
        // The prefix is recorded on the way in: express has unwound req.baseUrl by 'finish'.
        const route = req.route ? `${res.locals.prefix ?? ''}${req.route.path}` : 'unmatched';
        this.observer.observe(req.method, route, res.statusCode, start, reqId, {
          cache: res.locals.cache,
          secret: res.locals.name,
          path: req.route ? undefined : shortPath(req.path),
          error: errorReason(res),
        });
      });
      const refused = this.access.refuse(req);
      if (refused) return sendError(res, refused, reqId);
      // Express's routers answer OPTIONS themselves (200, text, an Allow header naming the
      // methods), which would tell a probe which paths exist: OPTIONS gets the 404 of a path the
      // sidecar does not serve (after the token check, like any other method).
      const noOptions = () =>
        sendError(res, new AppError('not_found', `no route for OPTIONS ${safePath(req.path)}`), reqId);
      if (HEALTH_PATH.test(req.originalUrl)) return req.method === 'OPTIONS' ? noOptions() : next();
      const denied = this.access.authorize(req);
      if (denied) return sendError(res, denied, reqId);
      return req.method === 'OPTIONS' ? noOptions() : next();
    });

    const health = (_req: Request, res: Response) => send(res, ...this.healthAnswer());
    const metrics = async (_req: Request, res: Response) => {
      const { contentType, text } = await this.opts.metrics.scrape();
      res.setHeader('Content-Type', contentType);
      res.send(text);
    };
    const version = (_req: Request, res: Response) =>
      send(
        res,
        200,
        Buffer.from(
          JSON.stringify({ application: 'ecs-secrets', applicationVersion: VERSION, apiVersion: API_VERSION }),
        ),
      );

    app.get('/health', health);
    app.get('/metrics', metrics);
    app.get('/version', version);

    const r = express.Router({ caseSensitive: true });
    r.get('/health', health);
    r.get('/metrics', metrics);
    r.get('/version', version);
    r.get('/secrets/version', version); // before /secrets/:name, as the original: "version" is not a secret name here
    this.secrets.mount(r);
    this.configs.mount(r);
    for (const prefix of ['/latest', `/${API_VERSION}`])
      app.use(
        prefix,
        (_req: Request, res: Response, next: NextFunction) => {
          res.locals.prefix = prefix;
          next();
        },
        r,
      );

    app.use((req: Request, res: Response) =>
      sendError(res, new AppError('not_found', `no route for ${req.method} ${safePath(req.path)}`), res.locals.reqId),
    );
    // Four arguments: express recognises an error handler by its arity.
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      const e = httpError(err);
      if (e.kind === 'internal')
        this.opts.logger.error({ reqId: res.locals.reqId, err: describeError(err) }, 'internal error');
      if (res.headersSent) return res.end();
      sendError(res, e, res.locals.reqId);
    });
    return app;
  }
}
