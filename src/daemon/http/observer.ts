/** Request ids, and the metrics and log line of every finished request, the same for both layers. */
import * as crypto from 'node:crypto';
import type http from 'node:http';
import { type Logger, REQUEST_MSG, requestLogger } from '../../core/log';
import type { CacheOutcome } from '../cache';
import type { AccessLog } from '../config';
import type { Metrics } from '../metrics';

/** Route patterns a probe or a scraper calls all day: routine when they succeed, like a cache hit. */
const ROUTINE_ROUTE = /\/(?:health|version|metrics)$/;

/** What a finished request's log line says beyond method, route, status and duration. */
export interface RequestDetail {
  cache?: CacheOutcome;
  /**
   * The secret's name (or the document's path) the request was for, when a route named one. Not
   * `name`: that field is the logger's own (`"name":"ecs-secrets"`) on every line.
   */
  secret?: string;
  /** The request path, when no route matched (a refusal before routing, an unknown path). */
  path?: string;
  /** Why the answer was an error: the message the client got. */
  error?: string;
}

export class RequestObserver {
  private readonly bootId = crypto.randomBytes(3).toString('hex');
  private requestCount = 0;
  /** The per-request line: same destination and format as every other log line (see requestLogger). */
  private readonly requestLog: Logger;
  /** Whether routine requests (cache hits, health checks) get a line: with --access-log all, or at debug level. */
  private readonly logRoutine: boolean;

  constructor(
    private readonly metrics: Metrics,
    logger: Logger,
    private readonly accessLog: AccessLog = 'errors',
  ) {
    this.requestLog = requestLogger(logger);
    this.logRoutine = accessLog === 'all' || (accessLog === 'errors' && logger.isLevelEnabled('debug'));
  }

  /** The client's X-Request-Id when it is a plain token; ours otherwise. */
  requestId(req: http.IncomingMessage): string {
    const given = req.headers['x-request-id'];
    if (typeof given === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(given)) return given;
    return `${this.bootId}-${(++this.requestCount).toString(36)}`;
  }

  /**
   * Metrics and the log line of one finished request. Routine requests (a successful cache hit,
   * health check, version or metrics read) are counted but, by default, not logged: at thousands
   * of reads a second their lines would cost more CPU than the answers and fill the log with
   * nothing an operator acts on. Every other request (writes, revokes, misses, listings,
   * refusals, errors) gets its line.
   */
  observe(method: string, route: string, status: number, startNs: bigint, reqId: string, detail?: RequestDetail): void {
    const seconds = Number(process.hrtime.bigint() - startNs) / 1e9;
    this.metrics.request(method, route, status, seconds);
    if (this.accessLog === 'off') return;
    const routine =
      status < 400 && (detail?.cache === 'hit' || (detail?.cache === undefined && ROUTINE_ROUTE.test(route)));
    if (routine && !this.logRoutine) return;
    const ms = Math.round(seconds * 1e6) / 1e3;
    const line = { reqId, method, route, status, ms, ...detail };
    if (routine && this.accessLog !== 'all') this.requestLog.debug(line, REQUEST_MSG);
    else this.requestLog.info(line, REQUEST_MSG);
  }
}
