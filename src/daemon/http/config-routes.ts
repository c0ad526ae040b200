/**
 * GET /config/*path[?format=json|yaml|dotenv]: the decrypted document, cached like secrets (one
 * backend read per path and format per TTL, shared by concurrent misses, stale-if-error).
 */
import type { Request, Response, Router } from 'express';
import {
  type ConfigService,
  type OutputFormat,
  renderConfig,
  validateConfigPath,
  validateOutputFormat,
} from '../../config/documents-service';
import { AppError } from '../../core/errors';
import type { Logger } from '../../core/log';
import type { DocumentCache } from '../cache';
import { withDeadline } from '../deadline';
import type { Metrics } from '../metrics';
import { JSON_TYPE, sendCached } from './responses';

export interface ConfigRoutesOptions {
  /** Absent: the route answers 404. */
  config?: ConfigService;
  configCache?: DocumentCache;
  metrics: Metrics;
  logger: Logger;
  readDeadlineMs: number;
}

const CONTENT_TYPES: Readonly<Record<OutputFormat, string>> = {
  json: JSON_TYPE,
  yaml: 'application/yaml; charset=utf-8',
  dotenv: 'text/plain; charset=utf-8',
};

export class ConfigRoutes {
  constructor(private readonly opts: ConfigRoutesOptions) {}

  mount(r: Router): void {
    r.get('/config/*path', (req, res) => this.get(req, res));
  }

  private async get(req: Request, res: Response): Promise<void> {
    const raw = (req.params as { path?: string | string[] }).path;
    const path = validateConfigPath(Array.isArray(raw) ? raw.join('/') : raw);
    res.locals.name = path;
    const format = validateOutputFormat(typeof req.query.format === 'string' ? req.query.format : undefined) ?? 'json';
    const { config, configCache, metrics, readDeadlineMs, logger } = this.opts;
    if (!config || !configCache)
      throw new AppError('not_found', 'configuration documents are not served by this daemon');
    const bypass = /no-cache/i.test(req.headers['cache-control'] ?? '');
    const { entry, outcome } = await configCache.get(
      `${format}\0${path}`,
      () => withDeadline(renderConfig(config, path, format), readDeadlineMs, `reading configuration ${path}`),
      bypass,
    );
    metrics.cacheOutcome(outcome);
    res.locals.cache = outcome;
    if (outcome === 'stale')
      logger.warn({ reqId: res.locals.reqId, path }, 'backend unavailable: serving a stale cached configuration');
    sendCached(res, entry, outcome, res.locals.reqId, CONTENT_TYPES[format]);
  }
}
