/**
 * The daemon's read caches. lru-cache holds the entries (bounded in count and in bytes, and a
 * maximum age of TTL + stale window); ReadCache adds what a sidecar needs on top, whatever it caches:
 * - an entry is *fresh* for `ttlMs` and served without a backend call;
 * - concurrent misses for one key share one backend read;
 * - when the backend fails with "unavailable", an entry younger than TTL + `staleMs` is served and
 *   flagged stale (never for any other error: access denied or not found must surface). An entry's
 *   age counts from the moment its backend read *started*, so a version revoked elsewhere is
 *   served for at most TTL + `staleMs` after the revoke, whatever the backend's latency;
 * - invalidation is per key: a write to one name never discards another name's entries or
 *   in-flight reads.
 * Entries keep the response body already serialised, so the hot path only writes bytes.
 * SecretCache holds secrets' records and adds revocation: a revoke this daemon learns of is
 * remembered for the daemon's life, apart from the LRU (which may evict), and that version is never
 * served again, fresh or stale, even if the table later says it is active. DocumentCache holds the
 * rendered configuration documents of GET /config/*path; ListingCache the name listing of GET /secrets.
 */
import { LRUCache } from 'lru-cache';
import { ownedBytes } from '../core/buffers';
import { AppError } from '../core/errors';
import type { SecretRecord } from '../core/secrets-service';

export interface CacheEntry<V> {
  /** What the backend read returned: a secret's record, or a rendered document. */
  record: V;
  /** The response body, serialised once. */
  body: Buffer;
  fetchedAt: number;
  /** How long this entry is fresh, when not the TTL: set by refresh() for prefetched secrets. */
  freshMs?: number;
}

export type CachedSecret = CacheEntry<SecretRecord>;

/** After a failed load, how long further reads of expired entries get the stale value at once. */
export const FAILING_HOLD_MS = 5_000;

export type CacheOutcome = 'hit' | 'miss' | 'stale' | 'bypass';

export interface CacheOptions {
  ttlMs: number;
  staleMs: number;
  max: number;
  /** Bound on the bytes held by entries (see cacheEntryBytes); default: no byte bound. */
  maxBytes?: number;
  now?: () => number;
}

/** What a ReadCache needs to know of its values. */
export interface ValueCodec<V> {
  /** The response body of a value. */
  body: (value: V) => Buffer;
  /** Bytes the value holds besides its body (its strings: two bytes per UTF-16 unit; V8 may use one). */
  size: (value: V) => number;
}

/**
 * Per entry, beyond its body and payload: the record object, the Buffer object, lru-cache's slots
 * and the key. Generous on purpose: the bound must hold, so we round up.
 */
const ENTRY_OVERHEAD_BYTES = 512;

/**
 * What one entry costs in memory, an upper bound: the serialised body, the value's own bytes and
 * the key (twice: the LRU and its key map, two bytes per UTF-16 unit).
 */
function cacheEntryBytes<V>(key: string, entry: CacheEntry<V>, size: (value: V) => number): number {
  return entry.body.length + size(entry.record) + 4 * key.length + ENTRY_OVERHEAD_BYTES;
}

const SECRET_CODEC: ValueCodec<SecretRecord> = {
  body: (record) => ownedBytes(JSON.stringify(record)),
  size: (record) => 2 * record.payload.length,
};

const DOCUMENT_CODEC: ValueCodec<string> = {
  body: (document) => ownedBytes(document),
  size: (document) => 2 * document.length,
};

/** What one cached secret costs in memory (see cacheEntryBytes). */
export function entryBytes(key: string, entry: CachedSecret): number {
  return cacheEntryBytes(key, entry, SECRET_CODEC.size);
}

/** One backend read in flight; `stale` once a write or revoke made its answer unfit to cache. */
interface Flight<V> {
  promise: Promise<CacheEntry<V>>;
  stale: boolean;
}

/** Cache key of the latest active version (`name`) or one serial (`name#serial`). */
export const cacheKey = (name: string, serial?: number): string => (serial === undefined ? name : `${name}#${serial}`);

export class ReadCache<V> {
  protected readonly entries: LRUCache<string, CacheEntry<V>> | undefined;
  private readonly inflight = new Map<string, Flight<V>>();
  /** Until then the backend is presumed down: set by a load failing as "unavailable", cleared by a success. */
  private failingUntil = 0;
  protected readonly now: () => number;

  constructor(
    private readonly opts: CacheOptions,
    private readonly codec: ValueCodec<V>,
  ) {
    this.now = opts.now ?? Date.now;
    // ttl 0 turns caching off entirely: no stale serving either, since nothing is kept.
    if (opts.ttlMs > 0)
      this.entries = new LRUCache<string, CacheEntry<V>>({
        max: opts.max,
        ttl: opts.ttlMs + opts.staleMs,
        ttlAutopurge: false,
        ...(opts.maxBytes === undefined
          ? {}
          : {
              maxSize: opts.maxBytes,
              sizeCalculation: (e: CacheEntry<V>, k: string) => cacheEntryBytes(k, e, codec.size),
            }),
      });
  }

  /** A fresh entry, or undefined. The hot path's only question. */
  fresh(key: string): CacheEntry<V> | undefined {
    const e = this.entries?.get(key);
    return e && this.now() - e.fetchedAt < (e.freshMs ?? this.opts.ttlMs) ? e : undefined;
  }

  /**
   * Serve `key` from the cache or load it. `bypass` (Cache-Control: no-cache) forces a backend
   * read but still refreshes the entry and may still fall back to a stale one on failure.
   * While the backend is known to be failing, or when the entry is a prefetched one whose refresh is
   * late, an expired entry within the stale window is served at once and refreshed in the
   * background, so readers do not each wait out the read deadline.
   */
  async get(
    key: string,
    load: () => Promise<V>,
    bypass = false,
  ): Promise<{ entry: CacheEntry<V>; outcome: CacheOutcome }> {
    if (!bypass) {
      const hit = this.fresh(key);
      if (hit) return { entry: hit, outcome: 'hit' };
      const old = this.stale(key);
      // A prefetched entry (freshMs set by refresh) is promised to readers: when its refresh is late
      // (a stalled event loop, a slow backend), serve it now and reload in the background rather
      // than make readers wait on the backend.
      if (old && (old.freshMs !== undefined || this.now() < this.failingUntil)) {
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
  private stale(key: string): CacheEntry<V> | undefined {
    const e = this.entries?.get(key);
    return e && this.now() - e.fetchedAt < (e.freshMs ?? this.opts.ttlMs) + this.opts.staleMs ? e : undefined;
  }

  /**
   * Refresh-ahead (daemon/prefetch.ts): read `key` now, with the same single-flight, revoke and
   * failure rules as a miss, and keep the new entry fresh for `freshMs`. The prefetcher re-reads
   * the key every TTL, so `freshMs` is the TTL plus a margin that covers that re-read: readers never
   * meet an expired entry, and the backend sees one read per key per TTL, not more.
   */
  async refresh(key: string, load: () => Promise<V>, freshMs: number): Promise<CacheEntry<V>> {
    const entry = await this.loadOnce(key, load);
    // Only the entry loadOnce cached (not one a concurrent write made obsolete) gets the longer life.
    if (this.entries && this.entries.peek(key) === entry) {
      entry.freshMs = freshMs;
      this.entries.set(key, entry, { ttl: freshMs + this.opts.staleMs });
    }
    return entry;
  }

  /** `key` changed in the backend through this daemon: the next read must see the change. Other keys are untouched. */
  invalidate(key: string): void {
    this.retire(key);
    this.entries?.delete(key);
  }

  /** Every entry and read whose key matches (a scan of the keys: for rare events such as writes). */
  invalidateWhere(matches: (key: string) => boolean): void {
    for (const key of [...this.inflight.keys()]) if (matches(key)) this.retire(key);
    if (this.entries) for (const key of [...this.entries.keys()]) if (matches(key)) this.entries.delete(key);
  }

  get size(): number {
    return this.entries?.size ?? 0;
  }

  /** Bytes held by the entries, counted from the entries themselves (metrics, tests). */
  get bytes(): number {
    let total = 0;
    if (this.entries) for (const [k, e] of this.entries.entries()) total += cacheEntryBytes(k, e, this.codec.size);
    return total;
  }

  /** A read in flight for `key` may have read data older than a write or revoke: never cache it, and start afresh. */
  protected retire(key: string): void {
    const flight = this.inflight.get(key);
    if (!flight) return;
    flight.stale = true;
    this.inflight.delete(key);
  }

  protected entryOf(record: V, fetchedAt: number): CacheEntry<V> {
    return { record, body: this.codec.body(record), fetchedAt };
  }

  /** The backend read of a miss; SecretCache checks it against the revokes it knows. */
  protected read(_key: string, load: () => Promise<V>): Promise<V> {
    return load();
  }

  /** Keep what a read returned, unless a write or revoke made it `obsolete` while it ran. */
  protected keep(key: string, entry: CacheEntry<V>, obsolete: boolean): void {
    if (!obsolete) this.entries?.set(key, entry);
  }

  private loadOnce(key: string, load: () => Promise<V>): Promise<CacheEntry<V>> {
    const pending = this.inflight.get(key);
    if (pending) return pending.promise;
    const flight: Flight<V> = { promise: undefined as unknown as Promise<CacheEntry<V>>, stale: false };
    const started = this.now();
    const p: Promise<CacheEntry<V>> = this.read(key, load)
      .then((record) => {
        this.failingUntil = 0;
        const entry = this.entryOf(record, started);
        this.keep(key, entry, flight.stale);
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
}

/** Secrets' records by cacheKey, with the revokes this daemon knows of. */
export class SecretCache extends ReadCache<SecretRecord> {
  /**
   * name → serials this daemon knows are revoked. Never evicted: it grows only with revoked
   * versions that exist in the table, and forgetting one would let it be served again.
   */
  private readonly revoked = new Map<string, Set<number>>();

  constructor(opts: CacheOptions) {
    super(opts, SECRET_CODEC);
  }

  /** A new version was written through this daemon: the next latest read must see it. Other names are untouched. */
  invalidateLatest(name: string, keep: (key: string) => boolean = () => false): void {
    if (!keep(cacheKey(name))) this.invalidate(cacheKey(name));
    // NAME@previous follows the latest: drop the name's pinned reads too (writes are rare).
    this.dropPinned(name, keep);
  }

  /** Entries and reads under the name's `NAME@LABEL` keys, but those `keep` names. */
  private dropPinned(name: string, keep: (key: string) => boolean = () => false): void {
    const prefix = `${name}@`;
    this.invalidateWhere((key) => key.startsWith(prefix) && !keep(key));
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

  /** A revoked version read is remembered as such; a by-serial read that finds it revoked also retires it as "latest". */
  protected override keep(key: string, entry: CachedSecret, obsolete: boolean): void {
    if (!entry.record.active) this.markRevoked(entry.record.name, entry.record.serial);
    else super.keep(key, entry, obsolete);
  }

  /**
   * Load, and never let through a version this daemon knows is revoked. By serial, what we know
   * wins (served as revoked). As latest, it is either a read that started just before a revoke
   * through this daemon (read again: the table has the revoke by now) or a table that says a
   * revoked version is active again, which revocation never does: an integrity error.
   */
  protected override async read(key: string, load: () => Promise<SecretRecord>): Promise<SecretRecord> {
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

/** One name of a listing (`GET /secrets`): the secret and its latest serial. */
export interface ListedName {
  name: string;
  latestSerial: number;
}

const LISTING_CODEC: ValueCodec<ListedName[]> = {
  body: (names) => Buffer.from(JSON.stringify(names)),
  // Two bytes per UTF-16 unit of each name, plus the object and array slot around it.
  size: (names) => names.reduce((n, x) => n + 2 * x.name.length + 64, 0),
};

/** The one key of the listing cache: the whole listing, which every prefix is filtered from. */
export const LISTING_KEY = '*';

/**
 * The table's secret names (GET /secrets?prefix=). A listing is a full-table Scan, so it is held
 * whole under one key: concurrent listings share one Scan, and one Scan per TTL answers every
 * prefix. A write or revoke through this daemon drops it; a write elsewhere shows after the TTL.
 */
export class ListingCache extends ReadCache<ListedName[]> {
  constructor(opts: CacheOptions) {
    super({ ...opts, max: 1 }, LISTING_CODEC);
  }

  /** A name's latest serial changed through this daemon. */
  invalidateListing(): void {
    this.invalidate(LISTING_KEY);
  }
}

/** Rendered configuration documents (GET /config/*path), by format and path. */
export class DocumentCache extends ReadCache<string> {
  constructor(opts: CacheOptions) {
    super(opts, DOCUMENT_CODEC);
  }
}

function revokedRecord(name: string, serial: number): SecretRecord {
  return { name, serial, payload: '', active: false };
}
