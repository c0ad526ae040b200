/**
 * The read cache's promises, on the real SecretCache with a controlled clock:
 * - a revoke it learns of is remembered for good: no route, fresh or stale, serves that version
 *   again, even after the LRU evicted everything and the table says it is active again;
 * - a version revoked elsewhere is served at most --cache-ttl + --stale-if-error after the revoke,
 *   counted from the start of the read that fetched it (the documented bound);
 * - invalidation is per secret: a write to one name keeps other names' entries and in-flight
 *   reads;
 * - the bytes held stay within maxBytes, counted from the entries themselves.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SecretCache, cacheKey, entryBytes } from '../../src/daemon/cache';
import { LocalKeyProvider, encryptionContext, withDataKeyCache } from '../../src/core/keys';
import { MAX_PAYLOAD_BYTES } from '../../src/core/payload';
import { AppError } from '../../src/core/errors';
import type { SecretRecord } from '../../src/core/secrets-service';

let now = 5_000_000;
const clock = () => now;
const rec = (name: string, serial: number, active = true, payload = `p${serial}`): SecretRecord => ({
  name,
  serial,
  payload: active ? payload : '',
  active,
});
const down = async (): Promise<SecretRecord> => {
  throw new AppError('unavailable', 'down');
};

describe('a revoked version this daemon knows of is never served again', () => {
  test('not after eviction, and not when the table later says it is active', async () => {
    const c = new SecretCache({ ttlMs: 1000, staleMs: 60_000, max: 1, now: clock });
    c.markRevoked('a', 2); // revoked through this daemon
    await c.get('other', async () => rec('other', 1)); // max 1: evicts every 'a' entry from the LRU
    expect(c.fresh(cacheKey('a', 2))).toBeUndefined();
    // Someone with table access flips Active back to true.
    const tampered = async () => rec('a', 2);
    const bySerial = await c.get(cacheKey('a', 2), tampered);
    expect(bySerial.entry.record).toEqual({ name: 'a', serial: 2, payload: '', active: false });
    await expect(c.get(cacheKey('a'), tampered)).rejects.toMatchObject({ kind: 'integrity' });
    await expect(c.get(cacheKey('a'), tampered, true)).rejects.toMatchObject({ kind: 'integrity' });
  });

  test('a latest read that started before the revoke is read again, not served', async () => {
    const c = new SecretCache({ ttlMs: 1000, staleMs: 60_000, max: 100, now: clock });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let reads = 0;
    const load = async () => {
      reads++;
      if (reads === 1) {
        await gate; // read serial 2 as latest, answer arrives after the revoke
        return rec('a', 2);
      }
      return rec('a', 1); // the table after the revoke
    };
    const pending = c.get(cacheKey('a'), load);
    c.markRevoked('a', 2);
    release();
    const got = await pending;
    expect([got.entry.record.serial, reads]).toEqual([1, 2]);
  });

  test('with the cache off (ttl 0) too', async () => {
    const c = new SecretCache({ ttlMs: 0, staleMs: 0, max: 100, now: clock });
    c.markRevoked('a', 3);
    expect((await c.get(cacheKey('a', 3), async () => rec('a', 3))).entry.record.active).toBe(false);
  });

  test('a version revoked elsewhere: served at most TTL + stale window after the revoke, counted from the start of the read', async () => {
    const ttl = 30_000;
    const staleMs = 300_000;
    const c = new SecretCache({ ttlMs: ttl, staleMs, max: 100, now: clock });
    // The read starts, the backend takes 3 s to answer; the revoke (elsewhere) happens just after the read started.
    const readStart = now;
    const revokedAt = readStart + 1;
    await c.get(cacheKey('a'), async () => {
      now += 3_000;
      return rec('a', 7);
    });
    // Outage from then on. Just inside the bound: still served (stale).
    now = revokedAt + ttl + staleMs - 2;
    expect((await c.get(cacheKey('a'), down)).outcome).toBe('stale');
    // At the bound: never again.
    now = revokedAt + ttl + staleMs;
    await expect(c.get(cacheKey('a'), down)).rejects.toMatchObject({ kind: 'unavailable' });
  });
});

describe('caching is per secret', () => {
  test("a write to one name keeps another name's in-flight read (it is cached when it lands)", async () => {
    const c = new SecretCache({ ttlMs: 30_000, staleMs: 0, max: 100, now: clock });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const reading = c.get(cacheKey('a'), async () => {
      await gate;
      return rec('a', 1);
    });
    c.invalidateLatest('b'); // a POST to b
    c.markRevoked('b', 1); // a revoke of b
    release();
    await reading;
    expect(c.fresh(cacheKey('a'))?.record.serial).toBe(1);
  });

  test("a write to one name keeps another name's cached entries", async () => {
    const c = new SecretCache({ ttlMs: 30_000, staleMs: 0, max: 100, now: clock });
    await c.get(cacheKey('a'), async () => rec('a', 1));
    await c.get(cacheKey('a', 1), async () => rec('a', 1));
    c.invalidateLatest('b');
    c.markRevoked('b', 4);
    expect([c.fresh(cacheKey('a'))?.record.serial, c.fresh(cacheKey('a', 1))?.record.serial]).toEqual([1, 1]);
  });
});

describe('bytes, not only entries', () => {
  const MAX_PAYLOAD = MAX_PAYLOAD_BYTES;
  test('payloads at the maximum size, escaped six-fold in JSON, stay within maxBytes', async () => {
    const maxBytes = 8 * 1024 * 1024;
    const c = new SecretCache({ ttlMs: 30_000, staleMs: 0, max: 10_000, maxBytes, now: clock });
    const payload = '\u0001'.repeat(MAX_PAYLOAD); // each becomes \u0001 in the JSON body
    const writes = Math.ceil((2 * maxBytes) / (6 * MAX_PAYLOAD)) + 1; // twice what fits: eviction must happen
    for (let i = 1; i <= writes; i++) {
      const got = await c.get(cacheKey(`big${i}`), async () => rec(`big${i}`, 1, true, payload));
      expect(got.entry.body.length).toBeGreaterThan(6 * MAX_PAYLOAD);
      expect(c.bytes).toBeLessThanOrEqual(maxBytes);
    }
    expect(c.size).toBeGreaterThan(0);
    // The count is honest: at least the bodies themselves.
    expect(c.bytes).toBeGreaterThanOrEqual(c.size * 6 * MAX_PAYLOAD);
  });

  test('entryBytes counts the body, the payload string and the key', () => {
    const r = rec('n', 1, true, 'xyz');
    const body = Buffer.from(JSON.stringify(r));
    expect(entryBytes('n', { record: r, body, fetchedAt: 0 })).toBeGreaterThanOrEqual(body.length + 2 * 3 + 1);
  });
});

test('the data-key cache stays within its bytes too', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-dk-'));
  try {
    const inner = new LocalKeyProvider(dir);
    const maxBytes = 20_000;
    const cached = withDataKeyCache(inner, { max: 100_000, ttlMs: 60_000, maxBytes });
    for (let i = 0; i < 200; i++) {
      const ctx = encryptionContext('app', `name.${'x'.repeat(200)}.${i}`);
      const dk = await inner.generateDataKey(ctx);
      expect((await cached.decryptDataKey(dk.encrypted, ctx)).equals(dk.plaintext)).toBe(true);
      expect(cached.cachedBytes()).toBeLessThanOrEqual(maxBytes);
    }
    expect(cached.cachedBytes()).toBeGreaterThan(maxBytes / 2); // it does cache, up to the bound
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
