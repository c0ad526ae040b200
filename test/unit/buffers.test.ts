/**
 * What the caches keep for long has memory of its own (core/buffers.ts): a small Buffer.from() is a
 * slice of a shared 8 KiB slab, and a cached slice would keep the whole slab alive.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ownedBytes } from '../../src/core/buffers';
import { LocalKeyProvider, encryptionContext, withDataKeyCache } from '../../src/core/keys';
import { SecretCache, cacheKey } from '../../src/daemon/cache';

/** True when the Buffer's memory is its own, not a slice of a larger ArrayBuffer. */
const owned = (b: Buffer) => b.byteOffset === 0 && b.buffer.byteLength === b.length;

test('ownedBytes copies text and bytes into memory of their own (Buffer.from would slice the pool)', () => {
  expect(owned(Buffer.from('{"name":"a"}'))).toBe(false); // the premise: small Buffers share a slab
  const text = '{"name":"a","payload":"é ✓ 𝄞"}';
  expect(ownedBytes(text).toString('utf8')).toBe(text);
  expect(owned(ownedBytes(text))).toBe(true);
  const bytes = Buffer.from([1, 2, 3, 250]);
  expect([...ownedBytes(bytes)]).toEqual([1, 2, 3, 250]);
  expect(owned(ownedBytes(bytes))).toBe(true);
  expect(ownedBytes('').length).toBe(0);
});

test("the read cache's bodies and the data-key cache's keys are owned", async () => {
  const cache = new SecretCache({ ttlMs: 60_000, staleMs: 0, max: 10 });
  const { entry } = await cache.get(cacheKey('a'), async () => ({ name: 'a', serial: 1, payload: 'v', active: true }));
  expect(owned(entry.body)).toBe(true);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-buffers-'));
  try {
    const inner = new LocalKeyProvider(dir);
    const ctx = encryptionContext('shop', 'a');
    const dk = await inner.generateDataKey(ctx);
    expect(owned(await inner.decryptDataKey(dk.encrypted, ctx))).toBe(false); // what the provider returns
    const key = await withDataKeyCache(inner, { max: 10, ttlMs: 60_000 }).decryptDataKey(dk.encrypted, ctx);
    expect(key.equals(dk.plaintext)).toBe(true);
    expect(owned(key)).toBe(true);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
