/**
 * The daemon's read cache. lru-cache holds the entries (bounded count, and a maximum age of
 * TTL + stale window); this class adds what a sidecar needs on top:
 * - an entry is *fresh* for `ttlMs` and served without a backend call;
 * - concurrent misses for one key share one backend read;
 * - when the backend fails with "unavailable", an entry younger than TTL + `staleMs` is served and
 *   flagged stale (never for any other error: access denied or not found must surface);
 * - a revoke this daemon learns of removes the revoked version from every entry at once.
 * Entries keep the response body already serialised, so the hot path only writes bytes.
 */
import { LRUCache } from 'lru-cache';
import { AppError } from '../core/errors';
import { SecretRecord } from '../core/service';

export interface CachedSecret {
  record: SecretRecord;
  /** The JSON response body, serialised once. */
  body: Buffer;
  fetchedAt: number;
  /** How long this entry is fresh, when not the TTL: set by refresh() for prefetched secrets. */
  freshMs?: number;
}

/** After a failed load, how long further reads of expired entries get the stale value at once. */
export const FAILING_HOLD_MS = 5_000;

export type CacheOutcome = 'hit' | 'miss' | 'stale' | 'bypass';

export interface CacheOptions {
  ttlMs: number;
  staleMs: number;
  max: number;
  now?: () => number;
}

/** Cache key of the latest active version (`name`) or one serial (`name#serial`). */
export const cacheKey = (name: string, serial?: number): string => (serial === undefined ? name : `${name}#${serial}`);

export class SecretCache {
  private readonly entries: LRUCache<string, CachedSecret> | undefined;
  private readonly inflight = new Map<string, Promise<CachedSecret>>();
  /** Bumped by every invalidation, so a read that started before a write cannot re-cache old data. */
  private epoch = 0;
  /** Until then the backend is presumed down: set by a load failing as "unavailable", cleared by a success. */
  private failingUntil = 0;
  private readonly now: () => number;

  constructor(private readonly opts: CacheOptions) {
    this.now = opts.now ?? Date.now;
    // ttl 0 turns caching off entirely: no stale serving either, since nothing is kept.
    if (opts.ttlMs > 0)
      this.entries = new LRUCache({ max: opts.max, ttl: opts.ttlMs + opts.staleMs, ttlAutopurge: false });
  }

  /** A fresh entry, or undefined. The hot path's only question. */
  fresh(key: string): CachedSecret | undefined {
    const e = this.entries?.get(key);
    return e && this.now() - e.fetchedAt < (e.freshMs ?? this.opts.ttlMs) ? e : undefined;
  }

  /**
   * Serve `key` from the cache or load it. `bypass` (Cache-Control: no-cache) forces a backend
   * read but still refreshes the entry and may still fall back to a stale one on failure.
   * While the backend is known to be failing, an expired entry within the stale window is served
   * at once and refreshed in the background, so readers do not each wait out the read deadline.
   */
  async get(
    key: string,
    load: () => Promise<SecretRecord>,
    bypass = false,
  ): Promise<{ entry: CachedSecret; outcome: CacheOutcome }> {
    if (!bypass) {
      const hit = this.fresh(key);
      if (hit) return { entry: hit, outcome: 'hit' };
      const old = this.stale(key);
      if (old && this.now() < this.failingUntil) {
        this.loadOnce(key, load).catch(() => undefined); // single-flight: at most one probe per key
        return { entry: old, outcome: 'stale' };
      }
    }
    try {
      return { entry: await this.loadOnce(key, load), outcome: bypass ? 'bypass' : 'miss' };
    } catch (err) {
      const old = this.stale(key);
      if (old && err instanceof AppError && err.kind === 'unavailable') return { entry: old, outcome: 'stale' };
      throw err;
    }
  }

  /** An entry past its TTL but inside the stale window: servable only while the backend fails. */
  private stale(key: string): CachedSecret | undefined {
    const e = this.entries?.get(key);
    return e && this.now() - e.fetchedAt < (e.freshMs ?? this.opts.ttlMs) + this.opts.staleMs ? e : undefined;
  }

  /**
   * Refresh-ahead (daemon/prefetch.ts): read `key` now, with the same single-flight, revoke and
   * failure rules as a miss, and keep the new entry fresh for `freshMs`. The prefetcher re-reads
   * the key every TTL, so `freshMs` is the TTL plus a margin that covers that re-read: readers never
   * meet an expired entry, and the backend sees one read per key per TTL, not more.
   */
  async refresh(key: string, load: () => Promise<SecretRecord>, freshMs: number): Promise<CachedSecret> {
    const entry = await this.loadOnce(key, load);
    // Only the entry loadOnce cached (not one a concurrent write made obsolete) gets the longer life.
    if (this.entries && this.entries.peek(key) === entry) {
      entry.freshMs = freshMs;
      this.entries.set(key, entry, { ttl: freshMs + this.opts.staleMs });
    }
    return entry;
  }

  /** A new version was written through this daemon: the next latest read must see it. */
  invalidateLatest(name: string): void {
    this.epoch++;
    this.inflight.delete(cacheKey(name));
    this.entries?.delete(cacheKey(name));
  }

  /** This daemon learnt that `name` serial `serial` is revoked: never serve it again, fresh or stale. */
  markRevoked(name: string, serial: number): void {
    if (!this.entries) return;
    this.epoch++;
    this.inflight.delete(cacheKey(name));
    this.inflight.delete(cacheKey(name, serial));
    const latest = this.entries.get(cacheKey(name));
    if (latest && latest.record.serial === serial) this.entries.delete(cacheKey(name));
    const revoked: SecretRecord = { name, serial, payload: '', active: false };
    this.entries.set(cacheKey(name, serial), entryOf(revoked, this.now()));
  }

  get size(): number {
    return this.entries?.size ?? 0;
  }

  private loadOnce(key: string, load: () => Promise<SecretRecord>): Promise<CachedSecret> {
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const epoch = this.epoch;
    const p: Promise<CachedSecret> = load()
      .then((record) => {
        this.failingUntil = 0;
        const entry = entryOf(record, this.now());
        if (!record.active) this.markRevoked(record.name, record.serial);
        // A by-serial read that finds the version revoked also retires it as "latest" (above).
        else if (epoch === this.epoch) this.entries?.set(key, entry);
        return entry;
      })
      .catch((err: unknown) => {
        // Any other answer (denied, not found) means the backend is up: stop hiding behind the cache.
        this.failingUntil = err instanceof AppError && err.kind === 'unavailable' ? this.now() + FAILING_HOLD_MS : 0;
        throw err;
      })
      .finally(() => {
        if (this.inflight.get(key) === p) this.inflight.delete(key);
      });
    this.inflight.set(key, p);
    return p;
  }
}

function entryOf(record: SecretRecord, fetchedAt: number): CachedSecret {
  return { record, body: Buffer.from(JSON.stringify(record)), fetchedAt };
}
