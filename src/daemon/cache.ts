/**
 * The daemon's read cache. lru-cache holds the entries (bounded in count and in bytes, and a
 * maximum age of TTL + stale window); this class adds what a sidecar needs on top:
 * - an entry is *fresh* for `ttlMs` and served without a backend call;
 * - concurrent misses for one key share one backend read;
 * - when the backend fails with "unavailable", an entry younger than TTL + `staleMs` is served and
 *   flagged stale (never for any other error: access denied or not found must surface). An entry's
 *   age counts from the moment its backend read *started*, so a version revoked elsewhere is
 *   served for at most TTL + `staleMs` after the revoke, whatever the backend's latency;
 * - a revoke this daemon learns of is remembered for the daemon's life, apart from the LRU (which
 *   may evict): that version is never served again, fresh or stale, even if the table later says
 *   it is active;
 * - invalidation is per secret: a write to one name never discards another name's entries or
 *   in-flight reads.
 * Entries keep the response body already serialised, so the hot path only writes bytes.
 * The daemon's configuration documents (GET /config/*path) use a second instance, so they are
 * cached like secrets: a record per path and format whose payload is the rendered document.
 */
import { LRUCache } from 'lru-cache';
import { AppError } from '../core/errors';
import type { SecretRecord } from '../core/service';

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
  /** Bound on the bytes held by entries (see entryBytes); default: no byte bound. */
  maxBytes?: number;
  /** The response body of a record; default its JSON. The configuration cache keeps the rendered document. */
  body?: (record: SecretRecord) => Buffer;
  now?: () => number;
}

/**
 * Per entry, beyond its body and payload: the record object, the Buffer object, lru-cache's slots
 * and the key. Generous on purpose: the bound must hold, so we round up.
 */
const ENTRY_OVERHEAD_BYTES = 512;

/**
 * What one entry costs in memory, an upper bound: the serialised body, the payload string (two
 * bytes per UTF-16 unit; V8 may use one) and the key (twice: the LRU and its key map).
 */
export function entryBytes(key: string, entry: CachedSecret): number {
  return entry.body.length + 2 * entry.record.payload.length + 4 * key.length + ENTRY_OVERHEAD_BYTES;
}

/** One backend read in flight; `stale` once a write or revoke made its answer unfit to cache. */
interface Flight {
  promise: Promise<CachedSecret>;
  stale: boolean;
}

/** Cache key of the latest active version (`name`) or one serial (`name#serial`). */
export const cacheKey = (name: string, serial?: number): string => (serial === undefined ? name : `${name}#${serial}`);

export class SecretCache {
  private readonly entries: LRUCache<string, CachedSecret> | undefined;
  private readonly inflight = new Map<string, Flight>();
  /**
   * name → serials this daemon knows are revoked. Never evicted: it grows only with revoked
   * versions that exist in the table, and forgetting one would let it be served again.
   */
  private readonly revoked = new Map<string, Set<number>>();
  /** Until then the backend is presumed down: set by a load failing as "unavailable", cleared by a success. */
  private failingUntil = 0;
  private readonly now: () => number;

  constructor(private readonly opts: CacheOptions) {
    this.now = opts.now ?? Date.now;
    // ttl 0 turns caching off entirely: no stale serving either, since nothing is kept.
    if (opts.ttlMs > 0)
      this.entries = new LRUCache<string, CachedSecret>({
        max: opts.max,
        ttl: opts.ttlMs + opts.staleMs,
        ttlAutopurge: false,
        ...(opts.maxBytes === undefined
          ? {}
          : { maxSize: opts.maxBytes, sizeCalculation: (e: CachedSecret, k: string) => entryBytes(k, e) }),
      });
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

  /** A new version was written through this daemon: the next latest read must see it. Other names are untouched. */
  invalidateLatest(name: string): void {
    this.retire(cacheKey(name));
    this.entries?.delete(cacheKey(name));
    // NAME@previous follows the latest: drop the name's pinned reads too (writes are rare).
    this.dropPinned(name);
  }

  /** Entries and reads under the name's `NAME@LABEL` keys. */
  private dropPinned(name: string): void {
    const prefix = `${name}@`;
    for (const key of [...this.inflight.keys()]) if (key.startsWith(prefix)) this.retire(key);
    if (this.entries) for (const key of [...this.entries.keys()]) if (key.startsWith(prefix)) this.entries.delete(key);
  }

  /** This daemon learnt that `name` serial `serial` is revoked: never serve it again, fresh or stale. */
  markRevoked(name: string, serial: number): void {
    let serials = this.revoked.get(name);
    if (!serials) {
      serials = new Set();
      this.revoked.set(name, serials);
    }
    serials.add(serial);
    this.retire(cacheKey(name));
    this.retire(cacheKey(name, serial));
    if (!this.entries) return;
    const latest = this.entries.get(cacheKey(name));
    if (latest && latest.record.serial === serial) this.entries.delete(cacheKey(name));
    // A label left on the revoked version must fail from now on, and `previous` may have moved:
    // every pinned read of the name goes back to the table.
    this.dropPinned(name);
    this.entries.set(cacheKey(name, serial), this.entryOf(revokedRecord(name, serial), this.now()));
  }

  isRevoked(name: string, serial: number): boolean {
    return this.revoked.get(name)?.has(serial) === true;
  }

  get size(): number {
    return this.entries?.size ?? 0;
  }

  /** Bytes held by the entries, counted from the entries themselves (metrics, tests). */
  get bytes(): number {
    let total = 0;
    if (this.entries) for (const [k, e] of this.entries.entries()) total += entryBytes(k, e);
    return total;
  }

  /** A read in flight for `key` may have read data older than a write or revoke: never cache it, and start afresh. */
  private retire(key: string): void {
    const flight = this.inflight.get(key);
    if (!flight) return;
    flight.stale = true;
    this.inflight.delete(key);
  }

  private entryOf(record: SecretRecord, fetchedAt: number): CachedSecret {
    return { record, body: this.opts.body ? this.opts.body(record) : Buffer.from(JSON.stringify(record)), fetchedAt };
  }

  private loadOnce(key: string, load: () => Promise<SecretRecord>): Promise<CachedSecret> {
    const pending = this.inflight.get(key);
    if (pending) return pending.promise;
    const flight: Flight = { promise: undefined as unknown as Promise<CachedSecret>, stale: false };
    const started = this.now();
    const p: Promise<CachedSecret> = this.loadChecked(key, load)
      .then((record) => {
        this.failingUntil = 0;
        const entry = this.entryOf(record, started);
        if (!record.active) this.markRevoked(record.name, record.serial);
        // A by-serial read that finds the version revoked also retires it as "latest" (above).
        else if (!flight.stale) this.entries?.set(key, entry);
        return entry;
      })
      .catch((err: unknown) => {
        // Any other answer (denied, not found) means the backend is up: stop hiding behind the cache.
        this.failingUntil = err instanceof AppError && err.kind === 'unavailable' ? this.now() + FAILING_HOLD_MS : 0;
        throw err;
      })
      .finally(() => {
        if (this.inflight.get(key) === flight) this.inflight.delete(key);
      });
    flight.promise = p;
    this.inflight.set(key, flight);
    return p;
  }

  /**
   * Load, and never let through a version this daemon knows is revoked. By serial, what we know
   * wins (served as revoked). As latest, it is either a read that started just before a revoke
   * through this daemon (read again: the table has the revoke by now) or a table that says a
   * revoked version is active again, which revocation never does: an integrity error.
   */
  private async loadChecked(key: string, load: () => Promise<SecretRecord>): Promise<SecretRecord> {
    const first = await load();
    if (!first.active || !this.isRevoked(first.name, first.serial)) return first;
    // By serial, the version is shown revoked; as latest or through a label it is read again.
    if (key === cacheKey(first.name, first.serial)) return revokedRecord(first.name, first.serial);
    const again = await load();
    if (!again.active || !this.isRevoked(again.name, again.serial)) return again;
    throw new AppError(
      'integrity',
      `the table says ${again.name} serial ${again.serial} is active, but this daemon saw it revoked: refusing to serve it (revocation is permanent; check who wrote the table)`,
    );
  }
}

function revokedRecord(name: string, serial: number): SecretRecord {
  return { name, serial, payload: '', active: false };
}
