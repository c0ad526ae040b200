import { DocumentCache, FAILING_HOLD_MS, SecretCache, cacheKey } from '../../src/daemon/cache';
import { AppError } from '../../src/core/errors';
import type { SecretRecord } from '../../src/core/secrets-service';

let now = 1_000_000;
const clock = () => now;
const rec = (serial: number, active = true): SecretRecord => ({
  name: 'a',
  serial,
  payload: active ? `p${serial}` : '',
  active,
});

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
  const c = cache(1000, 60_000);
  await c.get('a', async () => rec(1));
  now += 2000;
  const down = async (): Promise<SecretRecord> => {
    throw new AppError('unavailable', 'down');
  };
  const stale = await c.get('a', down);
  expect([stale.outcome, stale.entry.record.serial]).toEqual(['stale', 1]);
  now += FAILING_HOLD_MS; // past the hold: the next read asks the backend again
  const denied = async (): Promise<SecretRecord> => {
    throw new AppError('access_denied', 'no');
  };
  await expect(c.get('a', denied)).rejects.toMatchObject({ kind: 'access_denied' });
  now += 60_000; // past TTL + stale window
  await expect(c.get('a', down)).rejects.toMatchObject({ kind: 'unavailable' });
});

test('an answer other than "unavailable" ends the hold: access denied surfaces on the next read', async () => {
  const c = cache(1000, 60_000);
  await c.get('a', async () => rec(1));
  now += 2000;
  await c.get('a', async () => {
    throw new AppError('unavailable', 'down');
  });
  const denied = async (): Promise<SecretRecord> => {
    throw new AppError('access_denied', 'no');
  };
  expect((await c.get('a', denied)).outcome).toBe('stale'); // inside the hold: served, and probed
  await new Promise((r) => setImmediate(r));
  await expect(c.get('a', denied)).rejects.toMatchObject({ kind: 'access_denied' });
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
  await expect(
    c.get('a', async () => {
      throw new AppError('unavailable', 'x');
    }),
  ).rejects.toBeInstanceOf(AppError);
});

test('while the backend is failing, stale values are served at once and refreshed in the background', async () => {
  const c = cache(1000, 60_000);
  await c.get('a', async () => rec(1));
  now += 2000;
  const down = async (): Promise<SecretRecord> => {
    throw new AppError('unavailable', 'down');
  };
  expect((await c.get('a', down)).outcome).toBe('stale'); // waited for the failure once
  let probes = 0;
  let release!: (r: SecretRecord) => void;
  const hanging = () => {
    probes++;
    return new Promise<SecretRecord>((r) => (release = r)); // a backend that does not answer
  };
  // Without the hold these would wait on the hanging load; with it they answer from the cache.
  for (let i = 0; i < 5; i++) expect((await c.get('a', hanging)).outcome).toBe('stale');
  expect(probes).toBe(1); // one background probe, shared
  release(rec(2)); // the backend is back
  await new Promise((r) => setImmediate(r));
  expect((await c.get('a', down)).entry.record.serial).toBe(2);
  // A success ends the hold: an expired entry waits for the backend again.
  now += 2000;
  let waited = false;
  await c.get('a', async () => {
    waited = true;
    return rec(3);
  });
  expect(waited).toBe(true);
});

test('documents are cached as themselves: the body is the document, with the same TTL and stale rules', async () => {
  const c = new DocumentCache({ ttlMs: 30_000, staleMs: 300_000, max: 10, maxBytes: 100_000, now: clock });
  let loads = 0;
  const load = async () => `doc: ${++loads}\n`;
  const first = await c.get('yaml\0team/api', load);
  expect([first.outcome, first.entry.record, first.entry.body.toString()]).toEqual(['miss', 'doc: 1\n', 'doc: 1\n']);
  expect((await c.get('yaml\0team/api', load)).outcome).toBe('hit');
  expect(c.bytes).toBeGreaterThanOrEqual(first.entry.body.length + 2 * 'doc: 1\n'.length);
  now += 30_001;
  const down = async (): Promise<string> => {
    throw new AppError('unavailable', 'down');
  };
  const stale = await c.get('yaml\0team/api', down);
  expect([stale.outcome, stale.entry.record]).toEqual(['stale', 'doc: 1\n']);
});
