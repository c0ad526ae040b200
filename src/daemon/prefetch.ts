/**
 * Prefetch and refresh-ahead (`daemon --prefetch`, `--prefetch-prefix`, and every secret a
 * `--render` file needs): the daemon reads these secrets before /health turns 200, then re-reads
 * each one in the background once per TTL, so a reader always finds a fresh cache entry and never
 * waits on DynamoDB or KMS.
 *
 * Why the numbers work out: each secret is re-read TTL after its previous read *started*, and its
 * entry stays fresh for TTL + REFRESH_MARGIN after that read *ended* (SecretCache.refresh). The
 * next read therefore starts before the entry expires, and has the margin (twice the read
 * deadline) to finish: one backend read per secret per TTL, and hits stay at 100%.
 *
 * Secrets under a prefix are discovered by listing the table (one Scan) every TTL, so a new secret
 * under the prefix is picked up, and one that disappears is dropped, within one TTL.
 * A secret that cannot be read yet (missing, or the backend failing) is retried with a backoff,
 * alone: the others keep their one-read-per-TTL rhythm.
 */
import { mapLimited } from '../core/concurrency';
import { AppError } from '../core/errors';
import type { Logger } from '../core/log';
import type { SecretRecord, SecretsService } from '../core/secrets-service';
import { type SecretCache, cacheKey } from './cache';
import { withDeadline } from './deadline';

/** Secrets read at once during a refresh: enough to warm hundreds quickly, few enough not to flood the SDK's sockets. */
const CONCURRENCY = 16;
const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 10_000;

/** Secrets to keep fresh: these names, and every name under these prefixes. */
export interface PrefetchSelection {
  names: string[];
  prefixes: string[];
}

export interface PrefetchOptions extends PrefetchSelection {
  service: SecretsService;
  cache: SecretCache;
  logger: Logger;
  ttlMs: number;
  /** A read slower than this fails as "unavailable" (and is retried). */
  readDeadlineMs: number;
  now?: () => number;
}

type SlotState = 'pending' | 'ok' | 'missing' | 'absent';

interface Slot {
  name: string;
  /** Named with --prefetch (or a render file): a missing one holds /health at 503. */
  explicit: boolean;
  /** Under a --prefetch-prefix: dropped when the listing no longer shows it. */
  prefixed: boolean;
  state: SlotState;
  record?: SecretRecord;
  dueAt: number;
  failures: number;
  /** Found under a prefix after start-up: its first read is logged. */
  announce?: boolean;
}

export class Prefetcher {
  private readonly slots = new Map<string, Slot>();
  private readonly prefixes: string[];
  /** Names each prefix matched at the last successful listing; undefined until one succeeded. */
  private listed: Map<string, string[]> | undefined;
  private listDueAt = 0;
  private listFailures = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly listeners: Array<() => Promise<void>> = [];
  private lastWaiting: string | undefined = '';
  /** Messages of the reads that failed (not "not found") in the round under way. */
  private roundFailures: string[] = [];
  private readonly now: () => number;
  private readonly freshMs: number;

  constructor(private readonly opts: PrefetchOptions) {
    this.now = opts.now ?? Date.now;
    this.freshMs = opts.ttlMs + 2 * opts.readDeadlineMs;
    this.prefixes = [...new Set(opts.prefixes)];
    for (const name of new Set(opts.names)) this.slots.set(name, newSlot(name, true, false));
  }

  get empty(): boolean {
    return this.slots.size === 0 && this.prefixes.length === 0;
  }

  /** Called after every refresh round that read something (the renderer re-checks its files). */
  onRefresh(listener: () => Promise<void>): void {
    this.listeners.push(listener);
  }

  /** Start now; later rounds follow on their own. */
  start(): void {
    if (!this.empty) this.schedule(0);
  }

  /** No new rounds; resolves once a round under way has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Why /health must wait, or undefined once every prefetched secret has been read. */
  waitingFor(): string | undefined {
    const missing = [...this.slots.values()].filter((s) => s.explicit && s.state !== 'ok').map((s) => s.name);
    const prefixWaits = this.prefixes.filter((p) => {
      const names = this.listed?.get(p);
      return (
        !names?.some((n) => this.slots.get(n)?.state === 'ok') ||
        names.some((n) => this.slots.get(n)?.state === 'pending')
      );
    });
    if (missing.length === 0 && prefixWaits.length === 0) return undefined;
    const parts: string[] = [];
    if (missing.length > 0) parts.push(`secrets not read yet: ${missing.join(', ')}`);
    if (prefixWaits.length > 0) parts.push(`prefixes not read yet: ${prefixWaits.join(', ')}`);
    return `prefetch waiting (${parts.join('; ')})`;
  }

  /** The latest record of a prefetched secret, if it has been read and still has an active version. */
  record(name: string): SecretRecord | undefined {
    const s = this.slots.get(name);
    return s?.state === 'ok' ? s.record : undefined;
  }

  /** The names currently under `prefix` that have an active version, sorted; undefined before the first listing. */
  namesUnder(prefix: string): string[] | undefined {
    const names = this.listed?.get(prefix);
    return names?.filter((n) => this.slots.get(n)?.state === 'ok');
  }

  /**
   * Whether this cache key (a prefetched `NAME` or `NAME@LABEL`) is kept fresh here: a change to it
   * is then read again in the background while readers keep getting the entry, never a miss.
   */
  keepsFresh(key: string): boolean {
    return this.slots.get(key)?.state === 'ok';
  }

  /**
   * The change record named these secrets ('all': it fell too far behind): read them again at
   * once, and list the prefixes again (a new name may have appeared under one).
   */
  changed(names: readonly string[] | 'all'): void {
    if (this.empty) return;
    const now = this.now();
    const named = (ref: string) => names === 'all' || names.some((n) => ref === n || ref.startsWith(`${n}@`));
    for (const s of this.slots.values()) if (named(s.name)) s.dueAt = now;
    if (this.prefixes.length > 0 && (names === 'all' || names.some((n) => this.prefixes.some((p) => n.startsWith(p)))))
      this.listDueAt = now;
    // A round under way reschedules itself when it ends, and finds these due then.
    if (!this.running) this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.running = this.round().finally(() => {
          this.running = undefined;
          this.scheduleNext();
        });
      },
      Math.max(0, delayMs),
    );
    this.timer.unref();
  }

  private scheduleNext(): void {
    let next = this.prefixes.length > 0 ? this.listDueAt : Infinity;
    for (const s of this.slots.values()) next = Math.min(next, s.dueAt);
    if (next !== Infinity) this.schedule(next - this.now());
  }

  /** One round: list the prefixes if due, read every secret that is due, then tell the listeners. */
  private async round(): Promise<void> {
    const start = this.now();
    if (this.prefixes.length > 0 && this.listDueAt <= start) await this.list(start);
    const due = [...this.slots.values()].filter((s) => s.dueAt <= start);
    this.roundFailures = [];
    await mapLimited(due, CONCURRENCY, async (slot) => {
      if (!this.stopped) await this.read(slot);
    });
    // One line per round for backend trouble, not one per secret: an outage with hundreds of
    // prefetched secrets must not flood the log (each secret is named at debug level).
    if (this.roundFailures.length > 0)
      this.opts.logger.warn(
        { failed: this.roundFailures.length, of: due.length, error: this.roundFailures[0] },
        'prefetch: secrets could not be refreshed; cached values are served meanwhile (retrying)',
      );
    this.logWaiting();
    if (due.length > 0 && !this.stopped)
      for (const listener of this.listeners)
        await listener().catch((err: unknown) =>
          this.opts.logger.error({ error: (err as Error).message }, 'after a prefetch round'),
        );
  }

  private async list(start: number): Promise<void> {
    const { service, readDeadlineMs, logger, ttlMs } = this.opts;
    let all: string[];
    try {
      all = (await withDeadline(service.list(), readDeadlineMs, 'listing secrets')).map((x) => x.name);
    } catch (err) {
      this.listFailures++;
      this.listDueAt = this.now() + backoff(this.listFailures, ttlMs);
      logger.warn(
        { error: (err as Error).message, prefixes: this.prefixes },
        'prefetch: cannot list the secrets under the prefixes; retrying',
      );
      return;
    }
    this.listFailures = 0;
    const listed = new Map<string, string[]>();
    const under = new Set<string>();
    for (const p of this.prefixes) {
      const names = all.filter((n) => n.startsWith(p)).sort();
      listed.set(p, names);
      for (const n of names) under.add(n);
      if (names.length === 0 && (this.listed?.get(p)?.length ?? 1) > 0)
        logger.warn(
          { prefix: p },
          'prefetch: no secret under this prefix; /health stays 503 until one exists (retrying)',
        );
    }
    const firstListing = this.listed === undefined;
    this.listed = listed;
    for (const n of under) {
      const s = this.slots.get(n);
      if (s) s.prefixed = true;
      else this.slots.set(n, { ...newSlot(n, false, true, start), announce: !firstListing });
    }
    for (const s of [...this.slots.values()]) {
      if (under.has(s.name)) continue;
      s.prefixed = false;
      if (!s.explicit) this.slots.delete(s.name);
    }
    // An empty prefix is retried like a missing secret; otherwise the listing follows the TTL.
    const empty = [...listed.values()].some((names) => names.length === 0);
    this.listDueAt = empty ? this.now() + backoff(1, ttlMs) : start + ttlMs;
  }

  private async read(s: Slot): Promise<void> {
    const { service, cache, readDeadlineMs, logger, ttlMs } = this.opts;
    const started = this.now();
    try {
      const entry = await cache.refresh(
        cacheKey(s.name),
        () => withDeadline(service.fetch(s.name), readDeadlineMs, `reading ${s.name}`),
        this.freshMs,
      );
      if (s.state === 'missing') logger.info({ secret: s.name }, 'prefetch: secret found');
      if (s.announce) logger.info({ secret: s.name }, 'prefetch: new secret under a prefix read');
      s.announce = false;
      s.state = 'ok';
      s.record = entry.record;
      s.failures = 0;
      s.dueAt = started + ttlMs;
    } catch (err) {
      s.failures++;
      const notFound = err instanceof AppError && err.kind === 'not_found';
      if (notFound) {
        // Under a prefix, a name whose versions are all revoked is simply not part of the set.
        if (s.explicit && s.state !== 'missing')
          logger.warn(
            { secret: s.name },
            s.state === 'ok'
              ? 'prefetch: secret no longer has an active version'
              : 'prefetch: secret not found; /health stays 503 until it exists (retrying)',
          );
        s.state = s.explicit ? 'missing' : 'absent';
        s.record = undefined;
        s.dueAt = s.explicit ? this.now() + backoff(s.failures, ttlMs) : started + ttlMs;
      } else {
        // The backend is failing: keep the last good record (the cache serves it stale), retry sooner.
        logger.debug({ secret: s.name, error: (err as Error).message }, 'prefetch: cannot read secret; retrying');
        this.roundFailures.push((err as Error).message);
        s.dueAt = this.now() + backoff(s.failures, ttlMs);
      }
    }
  }

  private logWaiting(): void {
    const waiting = this.waitingFor();
    if (waiting === this.lastWaiting) return;
    this.lastWaiting = waiting;
    if (waiting === undefined)
      this.opts.logger.info({ secrets: this.slots.size }, 'prefetch: every prefetched secret read');
  }
}

function newSlot(name: string, explicit: boolean, prefixed: boolean, dueAt = 0): Slot {
  return { name, explicit, prefixed, state: 'pending', dueAt, failures: 0 };
}

/** 250 ms, doubling, at most 10 s and never longer than the TTL. */
function backoff(failures: number, ttlMs: number): number {
  return Math.min(RETRY_FIRST_MS * 2 ** Math.min(failures - 1, 10), RETRY_MAX_MS, Math.max(ttlMs, RETRY_FIRST_MS));
}
