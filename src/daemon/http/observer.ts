/** Request ids, and the metrics and log line of every finished request, the same for both layers. */
import * as crypto from 'node:crypto';
import type http from 'node:http';
import { type Logger, REQUEST_MSG, requestLogger } from '../../core/log';
import type { CacheOutcome } from '../cache';
import type { Metrics } from '../metrics';

export class RequestObserver {
  private readonly bootId = crypto.randomBytes(3).toString('hex');
  private requestCount = 0;
  /** The per-request line: same destination and format as every other log line (see requestLogger). */
  private readonly requestLog: Logger;

  constructor(
    private readonly metrics: Metrics,
    logger: Logger,
  ) {
    this.requestLog = requestLogger(logger);
  }

  /** The client's X-Request-Id when it is a plain token; ours otherwise. */
  requestId(req: http.IncomingMessage): string {
    const given = req.headers['x-request-id'];
    if (typeof given === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(given)) return given;
    return `${this.bootId}-${(++this.requestCount).toString(36)}`;
  }

  /** Metrics and the log line of one finished request. */
  observe(method: string, route: string, status: number, startNs: bigint, reqId: string, cache?: CacheOutcome): void {
    const seconds = Number(process.hrtime.bigint() - startNs) / 1e9;
    this.metrics.request(method, route, status, seconds);
    const ms = Math.round(seconds * 1e6) / 1e3;
    this.requestLog.info(
      cache === undefined ? { reqId, method, route, status, ms } : { reqId, method, route, status, ms, cache },
      REQUEST_MSG,
    );
  }
}
