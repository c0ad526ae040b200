/**
 * --watch-interval: the daemon reads the change record (core/changes.ts) once per interval, with
 * one strongly consistent GetItem whatever the number of cached secrets, and drops exactly the
 * entries of the names it lists: the latest and pinned reads of a changed secret, the versions a
 * revoke made inactive (remembered as revoked, so never served stale even if the backend then
 * fails), the documents of a changed configuration path. When it missed more changes than the
 * record keeps, it drops everything. Prefetched secrets are read again at once, their entries
 * served until the new version replaces them (after a revoke they are dropped too), and rendered
 * files follow them; long-poll readers waiting on a name are woken.
 * While the record cannot be read the caches serve as they would without watching (TTL and stale
 * window); the log says so once, and once again when it recovers.
 */
import { type Change, type ChangeLog, changesSince } from '../core/changes';
import { CONFIG_NAME_PREFIX } from '../core/names';
import type { Logger } from '../core/log';
import type { SecretStore } from '../core/storage';
import type { DocumentCache, SecretCache } from './cache';
import { withDeadline } from './deadline';
import type { Metrics } from './metrics';

export interface WatchOptions {
  store: SecretStore;
  intervalMs: number;
  readDeadlineMs: number;
  cache: SecretCache;
  configCache: DocumentCache;
  metrics: Metrics;
  logger: Logger;
  /**
   * Cache keys refreshed in the background on a change (prefetched secrets) rather than dropped:
   * readers keep the entry until its new version replaces it. Revokes always drop.
   */
  keepsFresh?: (key: string) => boolean;
  /** Told the names that changed ('all' when it fell behind), after their entries were dropped. */
  onChange?: (names: readonly string[] | 'all') => void;
}

export class ChangeWatcher {
  /** The sequence number this daemon's caches reflect; undefined until the first read. */
  private seq: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private failing = false;
  /** When the record was last read successfully (Date.now()). */
  lastGoodRead: number | undefined;

  constructor(private readonly opts: WatchOptions) {}

  /** Read the record now, then once per interval. */
  start(): void {
    if (this.opts.intervalMs > 0 && !this.timer && !this.stopped) this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private tick(): void {
    this.running = this.poll().finally(() => {
      this.running = undefined;
      if (this.stopped) return;
      this.timer = setTimeout(() => this.tick(), this.opts.intervalMs);
      this.timer.unref();
    });
  }

  /** One read of the record, and the invalidations it calls for. */
  async poll(): Promise<void> {
    const { store, readDeadlineMs, metrics, logger } = this.opts;
    let log: ChangeLog;
    try {
      log = await withDeadline(store.readChanges(), readDeadlineMs, 'reading the change record');
    } catch (err) {
      metrics.changeRead('error');
      if (!this.failing)
        logger.warn(
          { error: (err as Error).message },
          'cannot read the change record: cached secrets are served until their TTL, as without watching (retrying)',
        );
      this.failing = true;
      return;
    }
    metrics.changeRead('ok');
    this.lastGoodRead = Date.now();
    if (this.failing) logger.info({ seq: log.seq }, 'the change record can be read again: changes are followed');
    this.failing = false;
    // The first read only sets where we are: the caches were filled after every earlier change.
    if (this.seq === undefined) {
      this.seq = log.seq;
      return;
    }
    const changes = changesSince(log, this.seq);
    this.seq = log.seq;
    if (changes === 'all') this.dropAll(log.seq);
    else if (changes.length > 0) this.drop(changes);
  }

  private dropAll(seq: number): void {
    const { cache, configCache, metrics, logger, onChange } = this.opts;
    logger.info({ seq }, 'missed more changes than the change record keeps: every cached entry dropped');
    cache.invalidateWhere(() => true);
    configCache.invalidateWhere(() => true);
    metrics.invalidated('all');
    onChange?.('all');
  }

  private drop(changes: readonly Change[]): void {
    const { cache, configCache, metrics, logger, onChange } = this.opts;
    for (const c of changes) {
      if (c.kind === 'config' || c.name.startsWith(CONFIG_NAME_PREFIX)) {
        const path = c.name.slice(CONFIG_NAME_PREFIX.length);
        configCache.invalidateWhere((key) => key.endsWith(`\0${path}`));
      } else if (c.kind === 'revoke' && typeof c.serial === 'number') {
        cache.markRevoked(c.name, c.serial);
        cache.invalidateLatest(c.name);
      } else {
        cache.invalidateLatest(c.name, this.opts.keepsFresh);
      }
      metrics.invalidated(c.kind);
    }
    const names = [...new Set(changes.map((c) => c.name))];
    logger.debug({ names }, 'change record: entries dropped');
    onChange?.(names);
  }
}
