/** SecretCache.refresh, the cache side of refresh-ahead (daemon/prefetch.ts), on a fake clock. */
import { SecretCache, cacheKey } from '../../src/daemon/cache';
import { AppError } from '../../src/core/errors';
import type { SecretRecord } from '../../src/core/secrets-service';

let now = 1_000_000;
const rec = (serial: number): SecretRecord => ({ name: 'a', serial, payload: `p${serial}`, active: true });
const cache = () => new SecretCache({ ttlMs: 10_000, staleMs: 60_000, max: 100, now: () => now });

test('a refreshed entry stays fresh for the longer time it was given, then is stale-servable as usual', async () => {
  const c = cache();
  await c.refresh('a', async () => rec(1), 18_000);
  now += 17_999;
  expect(c.fresh('a')?.record.serial).toBe(1); // past the 10 s TTL, still fresh: the next refresh is under way
  now += 2;
  expect(c.fresh('a')).toBeUndefined();
  // The backend failing now: the entry is served stale, within the stale window after its own freshness.
  const r = await c.get('a', async () => {
    throw new AppError('unavailable', 'down');
  });
  expect([r.outcome, r.entry.record.serial]).toEqual(['stale', 1]);
});

test('each refresh replaces the entry and restarts its freshness; an ordinary miss keeps the plain TTL', async () => {
  const c = cache();
  await c.refresh('a', async () => rec(1), 18_000);
  now += 10_000;
  await c.refresh('a', async () => rec(2), 18_000);
  now += 17_000;
  expect(c.fresh('a')?.record.serial).toBe(2);
  await c.get('b', async () => ({ ...rec(1), name: 'b' }));
  now += 10_001;
  expect(c.fresh('b')).toBeUndefined();
});

test('a write through the daemon during a refresh wins: the refreshed value is neither cached nor extended', async () => {
  const c = cache();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const pending = c.refresh(
    'a',
    async () => {
      await gate;
      return rec(1);
    },
    18_000,
  );
  c.invalidateLatest('a');
  release();
  expect((await pending).record.serial).toBe(1);
  expect(c.fresh(cacheKey('a'))).toBeUndefined();
});

test('a refresh that fails leaves the previous entry in place', async () => {
  const c = cache();
  await c.refresh('a', async () => rec(1), 18_000);
  await expect(
    c.refresh(
      'a',
      async () => {
        throw new AppError('unavailable', 'down');
      },
      18_000,
    ),
  ).rejects.toThrow('down');
  expect(c.fresh('a')?.record.serial).toBe(1);
});

test('a prefetched entry whose refresh is late is served at once, never a miss that waits on the backend', async () => {
  const c = cache();
  await c.refresh('a', async () => rec(1), 18_000);
  now += 18_001; // the prefetcher's next read is late (a stalled event loop, a slow backend)
  let release!: (r: SecretRecord) => void;
  let loads = 0;
  const slow = () => {
    loads++;
    return new Promise<SecretRecord>((resolve) => (release = resolve));
  };
  const served = await Promise.race([
    c.get('a', slow),
    new Promise<'waited'>((resolve) => setImmediate(() => resolve('waited'))),
  ]);
  expect(served === 'waited' ? served : [served.outcome, served.entry.record.serial]).toEqual(['stale', 1]);
  // One backend read started in the background, shared by further readers, who are served at once too.
  const again = await c.get('a', slow);
  expect([again.outcome, loads]).toEqual(['stale', 1]);
  release(rec(2));
  await new Promise((r) => setImmediate(r));
  expect(c.fresh('a')?.record.serial).toBe(2);
});
