import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AppError } from '../../src/core/errors';
import { type KeyProvider, LocalKeyProvider, encryptionContext, withDataKeyCache } from '../../src/core/keys';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-keys-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the local master key is created once, 32 bytes, mode 0600', async () => {
  const keys = new LocalKeyProvider(dir);
  await keys.describe();
  const file = path.join(dir, 'master.key');
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  expect(fs.readFileSync(file)).toHaveLength(32);
  const before = fs.readFileSync(file);
  await new LocalKeyProvider(dir).describe();
  expect(fs.readFileSync(file).equals(before)).toBe(true);
  expect(fs.readdirSync(dir)).toEqual(['master.key']); // no temporary file left behind
});

test('local data keys round-trip and are bound to their context', async () => {
  const keys = new LocalKeyProvider(dir);
  const ctx = encryptionContext('shop', 'db.pw');
  const dk = await keys.generateDataKey(ctx);
  expect(dk.plaintext).toHaveLength(32);
  expect((await keys.decryptDataKey(dk.encrypted, ctx)).equals(dk.plaintext)).toBe(true);
  // Same context, keys in another order: still the same context.
  const reordered = { 'ecs-secrets:name': 'db.pw', 'ecs-secrets:application': 'shop' };
  expect((await keys.decryptDataKey(dk.encrypted, reordered)).equals(dk.plaintext)).toBe(true);
  for (const other of [encryptionContext('shop', 'db.pw2'), encryptionContext('shop2', 'db.pw'), undefined])
    await expect(keys.decryptDataKey(dk.encrypted, other)).rejects.toMatchObject({ kind: 'integrity' });
  const tampered = Buffer.from(dk.encrypted);
  tampered[20] ^= 1;
  await expect(keys.decryptDataKey(tampered, ctx)).rejects.toMatchObject({ kind: 'integrity' });
});

test('a data key from another master key is refused', async () => {
  const dk = await new LocalKeyProvider(dir).generateDataKey({});
  const other = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-keys2-'));
  try {
    await expect(new LocalKeyProvider(other).decryptDataKey(dk.encrypted, {})).rejects.toMatchObject({
      kind: 'integrity',
    });
  } finally {
    fs.rmSync(other, { recursive: true, force: true });
  }
});

test('a master key readable by group or others is refused with a clear message', async () => {
  await new LocalKeyProvider(dir).describe();
  fs.chmodSync(path.join(dir, 'master.key'), 0o644);
  const err = await new LocalKeyProvider(dir).describe().catch((e) => e);
  expect(err).toBeInstanceOf(AppError);
  expect(err.message).toMatch(/readable by group or others \(mode 644\).*chmod 600/);
});

test('the data key cache asks once per (blob, context) and never across contexts', async () => {
  const inner = new LocalKeyProvider(dir);
  let calls = 0;
  const counting: KeyProvider = {
    generateDataKey: (c) => inner.generateDataKey(c),
    describe: () => inner.describe(),
    decryptDataKey: (b, c) => {
      calls++;
      return inner.decryptDataKey(b, c);
    },
  };
  const cached = withDataKeyCache(counting, { max: 10, ttlMs: 60_000 });
  const ctx = encryptionContext('shop', 'a');
  const dk = await inner.generateDataKey(ctx);
  for (let i = 0; i < 5; i++) expect((await cached.decryptDataKey(dk.encrypted, ctx)).equals(dk.plaintext)).toBe(true);
  expect(calls).toBe(1);
  await expect(cached.decryptDataKey(dk.encrypted, encryptionContext('shop', 'b'))).rejects.toMatchObject({
    kind: 'integrity',
  });
  expect(calls).toBe(2);
});
