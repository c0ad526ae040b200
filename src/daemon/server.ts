/**
 * The daemon's HTTP server: the contract's routes under /latest and /v1.
 *
 * Two layers share one set of helpers (auth, headers, serialisation, metrics, request logs):
 * - the hot path answers `GET /{latest,v1}/secrets/:name[/:serial]` straight from a fresh cache
 *   entry, before express, because a sidecar's whole job is that one request;
 * - express handles everything else: misses, writes, health, metrics, errors.
 * Either way the response, headers, metrics and log line are the same.
 */
import { isUtf8 } from 'node:buffer';
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { type CacheOutcome, type CachedSecret, type SecretCache, cacheKey } from './cache';
import { AppError } from '../core/errors';
import { validateReadLabel } from '../core/labels';
import { type Logger, REQUEST_MSG, requestLogger } from '../core/log';
import type { Metrics } from './metrics';
import { RequestGuard } from './guard';
import {
  CONNECTIONS_CHECKING_INTERVAL_MS,
  HEADERS_TIMEOUT_MS,
  KEEP_ALIVE_TIMEOUT_MS,
  MAX_HEADER_BYTES,
  REQUEST_TIMEOUT_MS,
} from './limits';
import { PerNameQueue } from './write-queue';
import {
  MAX_PAYLOAD_BYTES,
  decodeBase64Payload,
  parseSerial,
  validatePayload,
  validateSecretName,
} from '../core/names';
import type { SecretsService } from '../core/service';
import { API_VERSION, VERSION } from '../core/version';
import { type ConfigService, renderConfig, validateConfigPath, validateOutputFormat } from '../config/service';

export interface DaemonOptions {
  service: SecretsService;
  cache: SecretCache;
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
  configCache?: SecretCache;
}

export const TOKEN_HEADER = 'x-ecs-secrets-token';
export const CACHE_HEADER = 'X-ECS-Secrets-Cache';
/**
 * JSON bodies may escape a 256 KiB payload to several times its size ("\u0000"); the body limit
 * leaves room for that, and the payload itself is then held to 256 KiB (413 either way).
 */
const BODY_LIMIT_BYTES = 6 * MAX_PAYLOAD_BYTES + 1024;
const HOT_PATH = /^\/(latest|v1)\/secrets\/([A-Za-z0-9._-]{1,255})(?:\/([0-9]{1,16}))?\/?(?:\?.*)?$/;
/** Route labels of the hot path, interned once: [prefix][by serial?]. */
const HOT_ROUTES: Readonly<Record<string, readonly [string, string]>> = {
  latest: ['/latest/secrets/:name', '/latest/secrets/:name/:serial'],
  v1: ['/v1/secrets/:name', '/v1/secrets/:name/:serial'],
};
const HIT_HEADERS: readonly string[] = [CACHE_HEADER, 'hit'];
const NO_HEADERS: readonly string[] = [];
const JSON_TYPE = 'application/json; charset=utf-8';
const HEALTH_PATH = /^(?:\/(?:latest|v1))?\/health\/?(?:\?.*)?$/;

export class DaemonServer {
  readonly server: http.Server;
  readonly app: express.Express;
  /** True once the table and the key have been reached; /health answers 503 until then. */
  ready = false;
  /** What /health says it waits for while not ready (start-up also waits for prefetch and render). */
  notReadyReason = 'the table and key have not been reached yet';
  private readonly tokenDigest: Buffer | undefined;
  private readonly bootId = crypto.randomBytes(3).toString('hex');
  private requestCount = 0;
  /** The per-request line: same destination and format as every other log line (see requestLogger). */
  private readonly requestLog: Logger;
  /** Per connection, the token value it last proved right (see authorize). */
  private readonly verified = new WeakMap<object, string>();
  /** Host, proxy and cross-site checks, shared by both layers. */
  private readonly guard: RequestGuard;
  /** Creates through this daemon, one at a time per name. */
  private readonly writes = new PerNameQueue();
  /**
   * Off only in tests, to compare the hot path's answers with express's on the same requests
   * (test/reliability/routing.test.ts): a switch, not a flag, so no user ever turns it off.
   */
  hotPath = true;
  /** Set by close(): every response from then on says `Connection: close`. */
  private draining = false;
  /** Responses express has not finished, so close() can mark those still to send their headers. */
  private readonly pending = new Set<http.ServerResponse>();

  constructor(private readonly opts: DaemonOptions) {
    this.tokenDigest = opts.token === undefined ? undefined : digest(opts.token);
    this.requestLog = requestLogger(opts.logger);
    this.guard = new RequestGuard(opts.allowedHosts ?? []);
    this.app = this.buildApp();
    // Slow-loris and idle-socket bounds for a server that lives next to the application (limits.ts).
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
        if (!this.hotPath || !this.tryHotPath(req, res)) this.app(req, res);
      },
    );
    if (opts.maxConnections !== undefined) this.server.maxConnections = opts.maxConnections;
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.onClientError(err, socket));
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const address = this.server.address() as AddressInfo;
        this.guard.addPort(address.port);
        resolve(address);
      });
    });
  }

  /** Stop accepting, let in-flight requests finish, then resolve. Idle keep-alive sockets are closed. */
  close(): Promise<void> {
    // From now on every response asks the client to close its connection, so a keep-alive client
    // learns of the shutdown from the response itself and never sends into a closing socket.
    this.draining = true;
    for (const res of this.pending) if (!res.headersSent) res.setHeader('Connection', 'close');
    return new Promise((resolve) => {
      // Keep-alive connections turn idle as their last response ends; close them as they do,
      // without adding any work to the request path.
      const sweep = setInterval(() => this.server.closeIdleConnections(), 50);
      this.server.close(() => {
        clearInterval(sweep);
        resolve();
      });
      this.server.closeIdleConnections();
    });
  }

  /**
   * Node's own protocol errors (malformed request line or headers, headers over 16 KiB, a request
   * not received in time) get the contract's JSON error body, not Node's bare status line.
   */
  private onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    const busy = (socket as { _httpMessage?: http.ServerResponse })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || busy?.headersSent) {
      socket.destroy();
      return;
    }
    const [status, message] =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, `the request headers are over ${MAX_HEADER_BYTES / 1024} KiB`]
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'the request did not arrive in time']
          : [400, 'malformed HTTP request'];
    const body = JSON.stringify({ error: message });
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: ${JSON_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n${body}`,
    );
  }

  // ---- shared helpers: both layers answer through these ----

  private requestId(req: http.IncomingMessage): string {
    const given = req.headers['x-request-id'];
    if (typeof given === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(given)) return given;
    return `${this.bootId}-${(++this.requestCount).toString(36)}`;
  }

  /** undefined when allowed; the error to answer otherwise. */
  private authorize(req: http.IncomingMessage): AppError | undefined {
    if (!this.tokenDigest) return undefined;
    const given = req.headers[TOKEN_HEADER];
    if (typeof given !== 'string' || given === '')
      return new AppError('unauthorized', `missing ${TOKEN_HEADER} header`);
    // A keep-alive connection that has already shown the right token and shows the same value
    // again needs no second hash. This compares the value with what the same connection sent
    // before, never with the token: it tells a client nothing it did not already know.
    if (this.verified.get(req.socket) === given) return undefined;
    // Compare digests: constant time, and independent of the token's length.
    if (!crypto.timingSafeEqual(digest(given), this.tokenDigest))
      return new AppError('unauthorized', `wrong ${TOKEN_HEADER}`);
    this.verified.set(req.socket, given);
    return undefined;
  }

  /**
   * Every JSON answer goes out through here, with the same headers in the same order. `extra` is a
   * flat [name, value, ...] list. The hot path passes `reqId`: it has set no header yet, so the
   * whole set goes to node in one array, with no per-header bookkeeping; express has already set
   * X-Request-Id (first, like here), and node merges the rest after it: the same bytes either way.
   */
  private send(
    res: http.ServerResponse,
    status: number,
    body: Buffer,
    extra: readonly string[] = NO_HEADERS,
    reqId?: string,
    contentType = JSON_TYPE,
  ): void {
    const headers = reqId === undefined ? [] : ['X-Request-Id', reqId];
    headers.push(
      'Content-Type',
      contentType,
      'Content-Length',
      String(body.length),
      'Cache-Control',
      'no-store',
      'X-Content-Type-Options',
      'nosniff',
    );
    for (let i = 0; i < extra.length; i++) headers.push(extra[i]);
    res.writeHead(status, headers);
    res.end(body);
  }

  private sendError(res: http.ServerResponse, err: AppError, reqId: string): void {
    const message = err.kind === 'internal' ? `internal error (request ${reqId})` : err.message;
    this.send(res, err.httpStatus, Buffer.from(JSON.stringify({ error: message })));
  }

  /** A cached body (a secret's record or a configuration document) with its cache headers. */
  private sendCached(
    res: http.ServerResponse,
    entry: CachedSecret,
    outcome: CacheOutcome,
    reqId?: string,
    contentType = JSON_TYPE,
  ): void {
    let headers = outcome === 'hit' ? HIT_HEADERS : [CACHE_HEADER, outcome];
    if (outcome === 'stale') {
      const age = Math.round((Date.now() - entry.fetchedAt) / 1000);
      headers = [...headers, 'Age', String(age), 'Warning', '110 - "Response is Stale"'];
    }
    this.send(res, 200, entry.body, headers, reqId, contentType);
  }

  /** Metrics and the log line of one finished request. */
  private observe(
    method: string,
    route: string,
    status: number,
    startNs: bigint,
    reqId: string,
    cache?: CacheOutcome,
  ): void {
    const seconds = Number(process.hrtime.bigint() - startNs) / 1e9;
    this.opts.metrics.request(method, route, status, seconds);
    const ms = Math.round(seconds * 1e6) / 1e3;
    this.requestLog.info(
      cache === undefined ? { reqId, method, route, status, ms } : { reqId, method, route, status, ms, cache },
      REQUEST_MSG,
    );
  }

  // ---- hot path ----

  /** Answer a cached GET of a secret without express; false hands the request on. */
  private tryHotPath(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (req.method !== 'GET' || !req.url) return false;
    const start = process.hrtime.bigint();
    const m = HOT_PATH.exec(req.url);
    if (!m || (m[2] === 'version' && m[3] === undefined)) return false;
    if (req.url.includes('label=')) return false; // a pinned read: express, keyed by name and label
    if (this.guard.check(req)) return false; // express answers the refusal, with the same guard
    const cc = req.headers['cache-control'];
    if (cc !== undefined && /no-cache/i.test(cc)) return false;
    const serial = m[3] === undefined ? undefined : Number(m[3]);
    if (serial !== undefined && !(serial >= 1 && m[3][0] !== '0')) return false;
    if (this.authorize(req)) return false; // express answers the 401, with the same helper
    const entry = this.opts.cache.fresh(cacheKey(m[2], serial));
    if (!entry) return false;
    const reqId = this.requestId(req);
    this.opts.metrics.cacheOutcome('hit');
    this.sendCached(res, entry, 'hit', reqId);
    this.observe('GET', HOT_ROUTES[m[1]][serial === undefined ? 0 : 1], 200, start, reqId, 'hit');
    return true;
  }

  // ---- express: everything else ----

  private buildApp(): express.Express {
    const app = express();
    app.disable('x-powered-by');
    app.disable('etag');
    app.set('query parser', 'simple');
    // Secret names are case-sensitive, like the table's keys: /secrets/VERSION is a secret, not
    // the version route (express matches case-insensitively by default; the hot path never did).
    app.set('case sensitive routing', true);

    app.use((req, res, next) => {
      const start = process.hrtime.bigint();
      const reqId = this.requestId(req);
      res.locals.reqId = reqId;
      res.setHeader('X-Request-Id', reqId);
      this.pending.add(res);
      res.on('close', () => this.pending.delete(res));
      res.on('finish', () => {
        // The prefix is recorded on the way in: express has unwound req.baseUrl by 'finish'.
        const route = req.route ? `${res.locals.prefix ?? ''}${req.route.path}` : 'unmatched';
        this.observe(req.method, route, res.statusCode, start, reqId, res.locals.cache);
      });
      const refused = this.guard.check(req);
      if (refused) return this.sendError(res, refused, reqId);
      // Express's routers answer OPTIONS themselves (200, text, an Allow header naming the
      // methods), which would tell a probe which paths exist: OPTIONS gets the 404 of a path the
      // sidecar does not serve (after the token check, like any other method).
      const noOptions = () =>
        this.sendError(res, new AppError('not_found', `no route for OPTIONS ${safePath(req.path)}`), reqId);
      if (HEALTH_PATH.test(req.originalUrl)) return req.method === 'OPTIONS' ? noOptions() : next();
      const denied = this.authorize(req);
      if (denied) return this.sendError(res, denied, reqId);
      return req.method === 'OPTIONS' ? noOptions() : next();
    });

    const health = (_req: Request, res: Response) =>
      this.ready
        ? this.send(res, 200, Buffer.from('{"status":"ok"}'))
        : this.send(res, 503, Buffer.from(JSON.stringify({ status: 'starting', error: this.notReadyReason })));
    const metrics = async (_req: Request, res: Response) => {
      res.setHeader('Content-Type', this.opts.metrics.registry.contentType);
      res.send(await this.opts.metrics.registry.metrics());
    };
    const version = (_req: Request, res: Response) =>
      this.send(
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
    // Exactly /secrets: "/secrets/" is a secret with an empty name, which does not exist (404).
    r.get('/secrets', (req, res, next) => (req.path === '/secrets' ? this.listSecrets(req, res) : next()));
    r.get('/secrets/:name', (req, res) => this.getSecret(req, res, undefined));
    r.get('/secrets/:name/:serial', (req, res) => this.getSecret(req, res, req.params.serial as string));
    r.post('/secrets/:name', this.refuseIfReadOnly, this.jsonBody(), async (req, res) => {
      const name = validateSecretName(req.params.name);
      const { payload, binary } = payloadOfBody(req.body as unknown);
      const created = await this.opts.service.create(name, payload, {
        binary,
        serialize: (claim) => this.writes.run(name, claim),
      });
      this.opts.cache.invalidateLatest(name);
      this.send(res, 201, Buffer.from(JSON.stringify(created)));
    });
    r.get('/config/*path', (req, res) => this.getConfig(req, res));
    r.post('/revoke/:name/:serial', this.refuseIfReadOnly, async (req, res) => {
      const name = validateSecretName(req.params.name);
      const serial = parseSerial(req.params.serial);
      const revoked = await this.opts.service.revoke(name, serial);
      this.opts.cache.markRevoked(name, serial);
      this.send(res, 200, Buffer.from(JSON.stringify(revoked)));
    });
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
      this.sendError(
        res,
        new AppError('not_found', `no route for ${req.method} ${safePath(req.path)}`),
        res.locals.reqId,
      ),
    );
    // Four arguments: express recognises an error handler by its arity.
    app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      const e = httpError(err);
      if (e.kind === 'internal')
        this.opts.logger.error({ reqId: res.locals.reqId, err: describeError(err) }, 'internal error');
      if (res.headersSent) return res.end();
      this.sendError(res, e, res.locals.reqId);
    });
    return app;
  }

  private readonly refuseIfReadOnly = (_req: Request, _res: Response, next: NextFunction) =>
    next(
      this.opts.readOnly
        ? new AppError('forbidden', 'this daemon is read-only (--read-only): writes are refused')
        : undefined,
    );

  private jsonBody() {
    const parse = express.json({
      limit: BODY_LIMIT_BYTES,
      strict: true,
      type: () => true,
      // Checked on the raw bytes: decoding would turn invalid UTF-8 into U+FFFD, and the secret
      // stored would silently differ from the one sent.
      verify: (_req, _res, buf) => {
        if (!isUtf8(buf)) throw new AppError('usage', 'the body is not valid UTF-8');
      },
    });
    return (req: Request, res: Response, next: NextFunction) => {
      const type = req.headers['content-type'];
      // The original ignored Content-Type, and its documented admin task is `curl -d @file`, which
      // sends a JSON body labelled as a form: JSON, form or none are read as JSON; anything else is refused clearly.
      if (type !== undefined && !/^application\/(json|x-www-form-urlencoded)\s*(;|$)/i.test(type))
        return next(
          new AppError(
            'unsupported_media',
            `Content-Type must be application/json (or a form type, as curl -d sends), not ${JSON.stringify(type.slice(0, 60))}`,
          ),
        );
      return parse(req, res, next);
    };
  }

  /** `GET /secrets?prefix=P`: the names under P (all without it) with their latest serial, what export/exec list through a sidecar. */
  private async listSecrets(req: Request, res: Response): Promise<void> {
    const prefix = req.query.prefix;
    if (prefix !== undefined && (typeof prefix !== 'string' || !/^[A-Za-z0-9._-]{1,255}$/.test(prefix)))
      throw new AppError('usage', 'invalid prefix: use one ?prefix= of 1 to 255 characters from A-Z a-z 0-9 . _ -');
    const names = await withDeadline(this.opts.service.list(), this.opts.readDeadlineMs, 'listing secrets');
    const under = prefix === undefined ? names : names.filter((n) => n.name.startsWith(prefix));
    this.send(res, 200, Buffer.from(JSON.stringify(under)));
  }

  /**
   * GET /config/*path[?format=json|yaml|dotenv]: the decrypted document, cached like secrets (one
   * backend read per path and format per TTL, shared by concurrent misses, stale-if-error).
   */
  private async getConfig(req: Request, res: Response): Promise<void> {
    const raw = (req.params as { path?: string | string[] }).path;
    const path = validateConfigPath(Array.isArray(raw) ? raw.join('/') : raw);
    const format = validateOutputFormat(typeof req.query.format === 'string' ? req.query.format : undefined) ?? 'json';
    const { config, configCache, metrics, readDeadlineMs, logger } = this.opts;
    if (!config || !configCache)
      throw new AppError('not_found', 'configuration documents are not served by this daemon');
    const key = `${format}\0${path}`;
    const bypass = /no-cache/i.test(req.headers['cache-control'] ?? '');
    const { entry, outcome } = await configCache.get(
      key,
      async () => ({
        name: key,
        serial: 0,
        active: true,
        payload: await withDeadline(
          renderConfig(config, path, format),
          readDeadlineMs,
          `reading configuration ${path}`,
        ),
      }),
      bypass,
    );
    metrics.cacheOutcome(outcome);
    res.locals.cache = outcome;
    if (outcome === 'stale')
      logger.warn({ reqId: res.locals.reqId, path }, 'backend unavailable: serving a stale cached configuration');
    const type =
      format === 'json'
        ? JSON_TYPE
        : format === 'yaml'
          ? 'application/yaml; charset=utf-8'
          : 'text/plain; charset=utf-8';
    this.sendCached(res, entry, outcome, res.locals.reqId, type);
  }

  private async getSecret(req: Request, res: Response, serialParam: string | undefined): Promise<void> {
    const name = validateSecretName(req.params.name);
    const serial = serialParam === undefined ? undefined : parseSerial(serialParam);
    // ?label=L (GET /secrets/:name only): NAME@L, cached under that key, as prefetch caches it.
    const label =
      req.query.label === undefined || serial !== undefined ? undefined : validateReadLabel(req.query.label);
    const ref = label === undefined ? name : `${name}@${label}`;
    const bypass = /no-cache/i.test(req.headers['cache-control'] ?? '');
    const { service, cache, metrics, readDeadlineMs, logger } = this.opts;
    const { entry, outcome } = await cache.get(
      cacheKey(ref, serial),
      () => withDeadline(service.fetch(ref, serial), readDeadlineMs, `reading ${ref}`),
      bypass,
    );
    metrics.cacheOutcome(outcome);
    res.locals.cache = outcome;
    if (outcome === 'stale')
      logger.warn(
        { reqId: res.locals.reqId, name, serial: entry.record.serial },
        'backend unavailable: serving a stale cached value',
      );
    this.sendCached(res, entry, outcome);
  }
}

/** A POST body: `{"payload": "<text>"}` or `{"payloadBase64": "<base64>"}` (a binary secret), exactly one. */
function payloadOfBody(body: unknown): { payload: string | Buffer; binary: boolean } {
  const b = body as { payload?: unknown; payloadBase64?: unknown };
  const isObject = typeof body === 'object' && body !== null && !Array.isArray(body);
  if (isObject && typeof b.payload === 'string' && b.payloadBase64 === undefined)
    return { payload: validatePayload(b.payload), binary: false };
  if (isObject && typeof b.payloadBase64 === 'string' && b.payload === undefined)
    return { payload: decodeBase64Payload(b.payloadBase64), binary: true };
  throw new AppError('usage', BODY_SHAPE_MESSAGE);
}

const BODY_SHAPE_MESSAGE = 'the body must be a JSON object {"payload": "<string>"} or {"payloadBase64": "<base64>"}';

function parsesAsJson(text: unknown): boolean {
  if (typeof text !== 'string') return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Map whatever a route or express threw to an AppError. Never a 500 for a client's mistake. */
function httpError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as { type?: string; status?: number; statusCode?: number; message?: string };
  switch (e?.type) {
    case 'entity.too.large':
      return new AppError('too_large', `the request body is over ${BODY_LIMIT_BYTES} bytes`);
    case 'entity.parse.failed':
      // Strict parsing refuses valid JSON that is no object or array (null, "x", 5) the same way.
      return new AppError(
        'usage',
        parsesAsJson((err as { body?: unknown }).body) ? BODY_SHAPE_MESSAGE : 'the body is not valid JSON',
      );
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new AppError('unsupported_media', 'unsupported body encoding or charset');
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return new AppError('usage', 'the request body is incomplete or malformed');
  }
  if (err instanceof URIError) return new AppError('usage', 'malformed percent-encoding in the URL');
  const status = e?.status ?? e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return new AppError('usage', 'malformed request');
  return new AppError('internal', 'internal error', { cause: err });
}

function describeError(err: unknown): { name?: string; message?: string; stack?: string } {
  const e = err as Error;
  return { name: e?.name, message: e?.message, stack: e?.stack };
}

/** SHA-256 of a token; crypto.hash (Node ≥ 20.12) is the one-shot form, about twice as fast as createHash. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'buffer') => Buffer }).hash;
function digest(token: string): Buffer {
  return oneShotHash
    ? oneShotHash('sha256', token, 'buffer')
    : crypto.createHash('sha256').update(token, 'utf8').digest();
}

function safePath(p: string): string {
  return JSON.stringify(p.length > 100 ? `${p.slice(0, 97)}...` : p);
}

export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new AppError('unavailable', `backend unavailable ${what}: no answer within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
