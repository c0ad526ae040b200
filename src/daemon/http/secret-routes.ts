/**
 * The secret routes under /latest and /v1: reads, the name listing, writes and revokes. Cached
 * reads have a hot path answered before express, because a sidecar's whole job is that one
 * request; misses and everything else go through express. Either way the response, headers,
 * metrics and log line are the same.
 */
import type http from 'node:http';
import type { NextFunction, Request, Response, Router } from 'express';
import { AppError } from '../../core/errors';
import { MAX_WAIT_SECONDS } from '../../core/changes';
import type { Logger } from '../../core/log';
import { validateReadLabel } from '../../core/labels';
import { SECRET_NAME_PATTERN, SECRET_NAME_RULE, parseSerial, validateSecretName } from '../../core/names';
import type { SecretsService } from '../../core/secrets-service';
import { LISTING_KEY, type ListingCache, type SecretCache, cacheKey } from '../cache';
import { withDeadline } from '../deadline';
import type { Metrics } from '../metrics';
import { PerNameQueue } from '../per-name-queue';
import type { Access } from './access';
import { jsonBody, payloadOfBody } from './json-body';
import type { RequestObserver } from './observer';
import { send, sendCached } from './responses';

export interface SecretRoutesOptions {
  service: SecretsService;
  cache: SecretCache;
  /** The name listing, shared by every ?prefix= (one Scan per TTL). */
  listings: ListingCache;
  metrics: Metrics;
  logger: Logger;
  readOnly: boolean;
  readDeadlineMs: number;
  access: Access;
  observer: RequestObserver;
}

const HOT_PATH = new RegExp(`^/(latest|v1)/secrets/(${SECRET_NAME_PATTERN})(?:/([0-9]{1,16}))?/?(?:\\?.*)?$`);
/** Route labels of the hot path, interned once: [prefix][by serial?]. */
const HOT_ROUTES: Readonly<Record<string, readonly [string, string]>> = {
  latest: ['/latest/secrets/:name', '/latest/secrets/:name/:serial'],
  v1: ['/v1/secrets/:name', '/v1/secrets/:name/:serial'],
};

export class SecretRoutes {
  /** Creates through this daemon, one at a time per name. */
  private readonly writes = new PerNameQueue();
  /** Long-poll readers waiting for a change, by secret name. */
  private readonly waiters = new Map<string, Set<() => void>>();

  /**
   * How many times each name (and, in `everything`, all names at once) was reported changed: a
   * long-poll notes it before its read, so a change reported while the read ran is never missed.
   */
  private readonly generations = new Map<string, number>();
  private everything = 0;
  /** Aborted when the daemon shuts down. */
  private readonly ending = new AbortController();

  private generation(name: string): number {
    return this.everything + (this.generations.get(name) ?? 0);
  }

  /**
   * These names changed (the change record, or a write through this daemon; 'all': everything may
   * have): their waiting readers look again. They read through the cache, so any number of them
   * cost one backend read per name.
   */
  changed(names: readonly string[] | 'all'): void {
    if (names === 'all') this.everything++;
    else for (const name of names) this.generations.set(name, (this.generations.get(name) ?? 0) + 1);
    const woken = names === 'all' ? [...this.waiters.keys()] : names;
    for (const name of woken) {
      const set = this.waiters.get(name);
      if (!set) continue;
      this.waiters.delete(name);
      for (const wake of set) wake();
    }
  }

  /** Shutting down: every wait ends now (its reader gets 304), and new ones end at once. */
  endWaits(): void {
    this.ending.abort();
  }

  /** Resolves on the next change of `name` after generation `seen` (at once if one came already), or when `signal` aborts. */
  private nextChange(name: string, seen: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted || this.generation(name) !== seen) return resolve();
      let set = this.waiters.get(name);
      if (!set) {
        set = new Set();
        this.waiters.set(name, set);
      }
      const wake = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        this.waiters.get(name)?.delete(wake);
        if (this.waiters.get(name)?.size === 0) this.waiters.delete(name);
        resolve();
      };
      set.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  constructor(private readonly opts: SecretRoutesOptions) {}

  /** Answer a cached GET of a secret without express; false hands the request on. */
  hot(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (req.method !== 'GET' || !req.url) return false;
    const start = process.hrtime.bigint();
    const m = HOT_PATH.exec(req.url);
    // A pinned read (keyed by name and label) or a long-poll: express.
    if (req.url.includes('label=') || req.url.includes('wait=')) return false;
    if (!m || (m[2] === 'version' && m[3] === undefined)) return false;
    const { access, cache, metrics, observer } = this.opts;
    if (access.refuse(req)) return false; // express answers the refusal, with the same check
    const cc = req.headers['cache-control'];
    if (cc !== undefined && /no-cache/i.test(cc)) return false;
    const serial = m[3] === undefined ? undefined : Number(m[3]);
    if (serial !== undefined && !(serial >= 1 && m[3][0] !== '0')) return false;
    if (access.authorize(req)) return false; // express answers the 401, with the same check
    const entry = cache.fresh(cacheKey(m[2], serial));
    if (!entry) return false;
    const reqId = observer.requestId(req);
    metrics.cacheOutcome('hit');
    sendCached(res, entry, 'hit', reqId);
    observer.observe('GET', HOT_ROUTES[m[1]][serial === undefined ? 0 : 1], 200, start, reqId, {
      cache: 'hit',
      secret: m[2],
    });
    return true;
  }

  /** The express routes, on the router mounted under each prefix. */
  mount(r: Router): void {
    // Every route with a :name records it for the request's log line (http/observer.ts).
    r.param('name', (_req, res, next, name: string) => {
      res.locals.name = name;
      next();
    });
    // Exactly /secrets: "/secrets/" is a secret with an empty name, which does not exist (404).
    r.get('/secrets', (req, res, next) => (req.path === '/secrets' ? this.list(req, res) : next()));
    r.get('/secrets/:name', (req, res) => this.get(req, res, undefined));
    r.get('/secrets/:name/:serial', (req, res) => this.get(req, res, req.params.serial as string));
    r.post('/secrets/:name', this.refuseIfReadOnly, jsonBody(), async (req, res) => {
      const name = validateSecretName(req.params.name);
      const { payload, binary } = payloadOfBody(req.body as unknown);
      const created = await this.opts.service.create(name, payload, {
        binary,
        serialize: (claim) => this.writes.run(name, claim),
      });
      this.opts.cache.invalidateLatest(name);
      this.opts.listings.invalidateListing();
      this.changed([name]);
      send(res, 201, Buffer.from(JSON.stringify(created)));
    });
    r.post('/revoke/:name/:serial', this.refuseIfReadOnly, async (req, res) => {
      const name = validateSecretName(req.params.name);
      const serial = parseSerial(req.params.serial);
      const revoked = await this.opts.service.revoke(name, serial);
      this.opts.cache.markRevoked(name, serial);
      this.opts.listings.invalidateListing();
      this.changed([name]);
      send(res, 200, Buffer.from(JSON.stringify(revoked)));
    });
  }

  private readonly refuseIfReadOnly = (_req: Request, _res: Response, next: NextFunction) =>
    next(
      this.opts.readOnly
        ? new AppError('forbidden', 'this daemon is read-only (--read-only): writes are refused')
        : undefined,
    );

  /** `GET /secrets?prefix=P`: the names under P (all without it) with their latest serial, what export/exec list through a sidecar. */
  private async list(req: Request, res: Response): Promise<void> {
    const prefix = req.query.prefix;
    if (prefix !== undefined && (typeof prefix !== 'string' || !SECRET_NAME_RULE.test(prefix)))
      throw new AppError('usage', 'invalid prefix: use one ?prefix= of 1 to 255 characters from A-Z a-z 0-9 . _ -');
    const { service, listings, metrics, readDeadlineMs } = this.opts;
    const bypass = /no-cache/i.test(req.headers['cache-control'] ?? '');
    // Cached and shared like a read: the listing is a full-table Scan, whatever the prefix.
    const { entry, outcome } = await listings.get(
      LISTING_KEY,
      () => withDeadline(service.list(), readDeadlineMs, 'listing secrets'),
      bypass,
    );
    metrics.cacheOutcome(outcome);
    res.locals.cache = outcome;
    if (prefix === undefined) return sendCached(res, entry, outcome);
    const under = entry.record.filter((n) => n.name.startsWith(prefix));
    sendCached(res, { ...entry, body: Buffer.from(JSON.stringify(under)) }, outcome);
  }

  private async get(req: Request, res: Response, serialParam: string | undefined): Promise<void> {
    const name = validateSecretName(req.params.name);
    const serial = serialParam === undefined ? undefined : parseSerial(serialParam);
    // ?label=L (GET /secrets/:name only): NAME@L, cached under that key, as prefetch caches it.
    const label =
      req.query.label === undefined || serial !== undefined ? undefined : validateReadLabel(req.query.label);
    const ref = label === undefined ? name : `${name}@${label}`;
    const bypass = /no-cache/i.test(req.headers['cache-control'] ?? '');
    const wait = serial === undefined ? parseWait(req.query) : undefined;
    const { service, cache, metrics, readDeadlineMs, logger } = this.opts;
    const read = (noCache: boolean) =>
      cache.get(
        cacheKey(ref, serial),
        () => withDeadline(service.fetch(ref, serial), readDeadlineMs, `reading ${ref}`),
        noCache,
      );
    let seen = this.generation(name);
    let { entry, outcome } = await read(bypass);
    if (wait && entry.record.serial === wait.after) {
      // Long-poll: answer on the first change that moves the serial, or 304 when the wait ends.
      const done = new AbortController();
      const timer = setTimeout(() => done.abort(), wait.seconds * 1000);
      const end = () => done.abort();
      if (this.ending.signal.aborted) end();
      else this.ending.signal.addEventListener('abort', end, { once: true });
      res.on('close', () => done.abort());
      try {
        while (entry.record.serial === wait.after && !done.signal.aborted) {
          await this.nextChange(name, seen, done.signal);
          if (done.signal.aborted) break;
          seen = this.generation(name);
          ({ entry, outcome } = await read(false));
        }
      } finally {
        clearTimeout(timer);
        this.ending.signal.removeEventListener('abort', end);
      }
      if (entry.record.serial === wait.after) {
        res.locals.cache = outcome;
        if (!res.writableEnded && !res.destroyed) res.status(304).end();
        return;
      }
    }
    metrics.cacheOutcome(outcome);
    res.locals.cache = outcome;
    if (outcome === 'stale')
      logger.warn(
        { reqId: res.locals.reqId, name, serial: entry.record.serial },
        'backend unavailable: serving a stale cached value',
      );
    sendCached(res, entry, outcome);
  }
}

/** `?wait=SECONDS&after=SERIAL` of a long-poll: SECONDS from 0 to 60, SERIAL the serial the reader has. */
function parseWait(query: Request['query']): { seconds: number; after: number } | undefined {
  const { wait, after } = query;
  if (wait === undefined) return undefined;
  if (typeof wait !== 'string' || !/^[0-9]{1,4}$/.test(wait) || Number(wait) > MAX_WAIT_SECONDS)
    throw new AppError('usage', `invalid wait: expected ?wait=SECONDS, a whole number from 0 to ${MAX_WAIT_SECONDS}`);
  if (typeof after !== 'string' || !/^[0-9]{1,16}$/.test(after))
    throw new AppError(
      'usage',
      'invalid after: ?wait= needs ?after=SERIAL, the serial the reader already has (0: none)',
    );
  return { seconds: Number(wait), after: Number(after) };
}
