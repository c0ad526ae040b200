/**
 * Reads decrypt a data key only under the application's own key: a version (format 2 or legacy)
 * or a configuration document whose data key was wrapped under another KMS key (anyone who may
 * write the table and use some key) is an integrity error, never served. Driven through the real
 * SDK client against the KMS stand-in, which refuses a Decrypt whose KeyId is not the blob's key
 * (IncorrectKeyException) as KMS does. --local: a blob from another master key is refused alike.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KMSClient } from '@aws-sdk/client-kms';
import { KmsConfigKeys } from '../../src/config/keysource';
import type { SopsMetadata } from '../../src/config/sops';
import { KmsKeyProvider, LocalKeyProvider, encryptionContext } from '../../src/core/keys';
import { ADMIN_ACCESS_KEY_ID, REGION } from '../standins';
import { type KmsStandIn, startKms } from '../standins/kms';

let kms: KmsStandIn;
let client: KMSClient;
const APP_ALIAS = 'alias/ECSSecretsMaskerKey-pinned';
const OTHER_ALIAS = 'alias/someone-elses-key';

beforeAll(async () => {
  kms = await startKms({ region: REGION });
  kms.createAlias(APP_ALIAS, kms.createKey({ description: 'the app key' }).KeyId as string);
  kms.createAlias(OTHER_ALIAS, kms.createKey({ description: 'another key' }).KeyId as string);
  client = new KMSClient({
    endpoint: kms.endpoint,
    region: REGION,
    credentials: { accessKeyId: ADMIN_ACCESS_KEY_ID, secretAccessKey: 'secret' },
  });
});
afterAll(async () => {
  client?.destroy();
  await kms?.close();
});

test('a data key wrapped under another KMS key is an integrity error, with a context or legacy', async () => {
  const mine = new KmsKeyProvider(client, APP_ALIAS);
  const theirs = new KmsKeyProvider(client, OTHER_ALIAS);
  const ctx = encryptionContext('pinned', 'db.pw');
  const own = await mine.generateDataKey(ctx);
  expect((await mine.decryptDataKey(own.encrypted, ctx)).equals(own.plaintext)).toBe(true);
  const forged = await theirs.generateDataKey(ctx);
  await expect(mine.decryptDataKey(forged.encrypted, ctx)).rejects.toMatchObject({ kind: 'integrity' });
  const legacy = await theirs.generateDataKey({});
  await expect(mine.decryptDataKey(legacy.encrypted, undefined)).rejects.toMatchObject({ kind: 'integrity' });
});

test('a configuration document whose data key another KMS key wrapped is an integrity error, whatever ARN it names', async () => {
  const mine = new KmsConfigKeys(client, APP_ALIAS);
  const theirs = new KmsConfigKeys(client, OTHER_ALIAS);
  const meta = (keys: Awaited<ReturnType<KmsConfigKeys['newDataKey']>>['keys']): SopsMetadata =>
    ({ ...keys, lastmodified: '2026-01-01T00:00:00Z', mac: '', version: '3.9.0' }) as SopsMetadata;
  const own = await mine.newDataKey('pinned', 'app.yaml');
  expect((await mine.dataKey(meta(own.keys), 'pinned', 'app.yaml')).equals(own.dataKey)).toBe(true);
  const forged = await theirs.newDataKey('pinned', 'app.yaml');
  await expect(mine.dataKey(meta(forged.keys), 'pinned', 'app.yaml')).rejects.toMatchObject({ kind: 'integrity' });
  // Naming our key's ARN in the entry changes nothing: the blob decides.
  const renamed = { kms: forged.keys.kms?.map((e) => ({ ...e, arn: own.keys.kms?.[0].arn as string })) };
  await expect(mine.dataKey(meta(renamed), 'pinned', 'app.yaml')).rejects.toMatchObject({ kind: 'integrity' });
});

test('--local: a data key from another master key is an integrity error', async () => {
  const dirs = [0, 1].map(() => fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-pin-')));
  try {
    const [mine, theirs] = dirs.map((d) => new LocalKeyProvider(d));
    const ctx = encryptionContext('pinned', 'db.pw');
    const forged = await theirs.generateDataKey(ctx);
    await expect(mine.decryptDataKey(forged.encrypted, ctx)).rejects.toMatchObject({ kind: 'integrity' });
  } finally {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
});
