import { SecretCache, cacheKey } from '../../src/cache';
import { AppError } from '../../src/errors';
import type { SecretRecord } from '../../src/service';

let now = 1_000_000;
const clock = () => now;
const rec = (serial: number, active = true): SecretRecord => ({ name: 'a', serial, payload: active ? `p${serial}` : '', active });

function cache(ttlMs = 30_000, staleMs = 300_000) {
  return new SecretCache({ ttlMs, staleMs, max: 100, now: clock });
}

test('fresh within the TTL, reloaded after it', async () => {
  const c = cache();
  let loads = 0;
  const load = async () => rec(++loads);
  expect((await c.get('a', load)).outcome).toBe('miss');
  expect((await c.get('a', load)).outcome).toBe('hit');
  now += 29_999;
  expect(c.fresh('a')?.record.serial).toBe(1);
  now += 2;
  expect(c.fresh('a')).toBeUndefined();
  const again = await c.get('a', load);
  expect([again.outcome, again.entry.record.serial, loads]).toEqual(['miss', 2, 2]);
});

test('concurrent misses share one load', async () => {
  const c = cache();
  let loads = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const load = async () => {
    loads++;
    await gate;
    return rec(1);
  };
  const all = Promise.all(Array.from({ length: 20 }, () => c.get('a', load)));
  release();
  const results = await all;
  expect(loads).toBe(1);
  expect(results.every((r) => r.entry.record.serial === 1)).toBe(true);
});

test('stale within the window only for "unavailable", never past it', async () => {
  const c = cache(1000, 5000);
  await c.get('a', async () => rec(1));
  now += 2000;
  const down = async (): Promise<SecretRecord> => {
    throw new AppError('unavailable', 'down');
  };
  const stale = await c.get('a', down);
  expect([stale.outcome, stale.entry.record.serial]).toEqual(['stale', 1]);
  await expect(c.get('a', async () => { throw new AppError('access_denied', 'no'); })).rejects.toMatchObject({ kind: 'access_denied' });
  now += 4001; // 6001 ms old: past TTL + stale window
  await expect(c.get('a', down)).rejects.toMatchObject({ kind: 'unavailable' });
});

test('a revoked version is never served again, fresh or stale', async () => {
  const c = cache(1000, 60_000);
  await c.get(cacheKey('a'), async () => rec(2));
  await c.get(cacheKey('a', 2), async () => rec(2));
  c.markRevoked('a', 2);
  expect(c.fresh(cacheKey('a'))).toBeUndefined();
  expect(c.fresh(cacheKey('a', 2))?.record).toEqual({ name: 'a', serial: 2, payload: '', active: false });
  now += 2000;
  const down = async (): Promise<SecretRecord> => {
    throw new AppError('unavailable', 'down');
  };
  await expect(c.get(cacheKey('a'), down)).rejects.toMatchObject({ kind: 'unavailable' });
});

test('learning of a revoke from a by-serial read retires the cached latest', async () => {
  const c = cache();
  await c.get(cacheKey('a'), async () => rec(3));
  await c.get(cacheKey('a', 3), async () => rec(3, false));
  expect(c.fresh(cacheKey('a'))).toBeUndefined();
});

test('a write invalidates the latest, even against a read that started before it', async () => {
  const c = cache();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const slowOld = c.get('a', async () => {
    await gate;
    return rec(1);
  });
  c.invalidateLatest('a'); // a POST landed while the read was in flight
  const fresh = await c.get('a', async () => rec(2));
  release();
  await slowOld;
  expect(fresh.entry.record.serial).toBe(2);
  expect(c.fresh('a')?.record.serial).toBe(2);
});

test('ttl 0 turns the cache off', async () => {
  const c = cache(0, 300_000);
  let loads = 0;
  await c.get('a', async () => rec(++loads));
  await c.get('a', async () => rec(++loads));
  expect(loads).toBe(2);
  await expect(c.get('a', async () => { throw new AppError('unavailable', 'x'); })).rejects.toBeInstanceOf(AppError);
});
