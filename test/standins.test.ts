/**
 * The stand-ins, exercised only through the real SDK v3 clients (and raw HTTP for protocol details),
 * so that other tests can trust them.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  KMSClient,
} from '@aws-sdk/client-kms';
import { CreateTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  createAppResources,
  credentialsEnv,
  startDynamo,
  startKms,
  startStandIns,
  type DynamoStandIn,
  type KmsStandIn,
  waitForActiveTable,
} from './standins';

// Read when the first client is built; keeps jest output free of the SDK's Node 20 notice.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const REGION = 'us-east-1';
const CTX = { 'ecs-secrets:application': 'demo', 'ecs-secrets:name': 'team-a.db' };

const clients: { destroy(): void }[] = [];
function kmsClient(kms: KmsStandIn, accessKeyId = 'AKIDADMIN', maxAttempts = 1): KMSClient {
  const c = new KMSClient({
    endpoint: kms.endpoint,
    region: REGION,
    maxAttempts,
    credentials: { accessKeyId, secretAccessKey: 'secret' },
  });
  clients.push(c);
  return c;
}
function dynamoClient(endpoint: string, maxAttempts = 1): DynamoDBClient {
  const c = new DynamoDBClient({
    endpoint,
    region: REGION,
    maxAttempts,
    credentials: { accessKeyId: 'AKIDADMIN', secretAccessKey: 'secret' },
  });
  clients.push(c);
  return c;
}
afterAll(() => {
  for (const c of clients) c.destroy();
});

/** The network error code of a failed SDK call. Under jest, node's errors come from another realm,
 * fail the SDK's `instanceof Error` check and get re-wrapped as "AWS SDK error wrapper for Error:
 * connect ECONNREFUSED ..." without `code`; outside jest the SDK passes node's error through. */
async function networkErrorCode(p: Promise<unknown>): Promise<string | undefined> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  const { code, message } = err as { code?: string; message: string };
  return code ?? /\b(E[A-Z]{4,})\b/.exec(message)?.[1];
}

describe('KMS stand-in', () => {
  let kms: KmsStandIn;
  let admin: KMSClient;
  let keyArn: string;
  let keyId: string;

  beforeAll(async () => {
    kms = await startKms();
    admin = kmsClient(kms);
    const created = await admin.send(new CreateKeyCommand({ Description: 'test key' }));
    keyId = created.KeyMetadata!.KeyId!;
    keyArn = created.KeyMetadata!.Arn!;
    await admin.send(new CreateAliasCommand({ AliasName: 'alias/ECSSecretsMaskerKey-demo', TargetKeyId: keyId }));
  });
  afterAll(() => kms.close());
  afterEach(async () => {
    await kms.setFault(null);
    if (!kms.listening) await kms.start(); // don't let one failed outage test cascade
    kms.resetPermissions();
  });

  test('CreateKey returns real-looking metadata', async () => {
    expect(keyId).toMatch(/^[0-9a-f-]{36}$/);
    expect(keyArn).toBe(`arn:aws:kms:us-east-1:123456789012:key/${keyId}`);
    const { KeyMetadata } = await admin.send(new DescribeKeyCommand({ KeyId: keyId }));
    expect(KeyMetadata).toMatchObject({
      Enabled: true,
      KeyState: 'Enabled',
      KeyUsage: 'ENCRYPT_DECRYPT',
      Description: 'test key',
    });
    // Epoch seconds on the wire, parsed back into a Date by the SDK.
    expect(KeyMetadata!.CreationDate).toBeInstanceOf(Date);
    expect(Math.abs(KeyMetadata!.CreationDate!.getTime() - Date.now())).toBeLessThan(60_000);
  });

  test('DescribeKey resolves key id, key ARN, alias name and alias ARN', async () => {
    const ids = [
      keyId,
      keyArn,
      'alias/ECSSecretsMaskerKey-demo',
      'arn:aws:kms:us-east-1:123456789012:alias/ECSSecretsMaskerKey-demo',
    ];
    for (const id of ids) {
      const { KeyMetadata } = await admin.send(new DescribeKeyCommand({ KeyId: id }));
      expect(KeyMetadata!.Arn).toBe(keyArn);
    }
    for (const id of [
      'alias/nope',
      'arn:aws:kms:eu-west-1:123456789012:alias/ECSSecretsMaskerKey-demo',
      '00000000-0000-0000-0000-000000000000',
    ]) {
      await expect(admin.send(new DescribeKeyCommand({ KeyId: id }))).rejects.toMatchObject({
        name: 'NotFoundException',
      });
    }
  });

  test('CreateAlias rejects taken names, unknown keys and names without alias/', async () => {
    const send = (AliasName: string, TargetKeyId: string) =>
      admin.send(new CreateAliasCommand({ AliasName, TargetKeyId }));
    await expect(send('alias/ECSSecretsMaskerKey-demo', keyId)).rejects.toMatchObject({
      name: 'AlreadyExistsException',
    });
    await expect(send('alias/other', 'no-such-key')).rejects.toMatchObject({ name: 'NotFoundException' });
    await expect(send('other', keyId)).rejects.toMatchObject({ name: 'InvalidAliasNameException' });
    expect(kms.aliases.has('alias/other')).toBe(false);
  });

  test('GenerateDataKey + Decrypt round trip with EncryptionContext', async () => {
    const dk = await admin.send(
      new GenerateDataKeyCommand({
        KeyId: 'alias/ECSSecretsMaskerKey-demo',
        KeySpec: 'AES_256',
        EncryptionContext: CTX,
      }),
    );
    expect(dk.Plaintext).toHaveLength(32);
    expect(dk.KeyId).toBe(keyArn);
    expect(Buffer.from(dk.CiphertextBlob!).toString('latin1')).not.toContain(
      Buffer.from(dk.Plaintext!).toString('latin1'),
    );
    // Context key order does not matter, as in KMS.
    const reversed = Object.fromEntries(Object.entries(CTX).reverse());
    const out = await admin.send(
      new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: reversed }),
    );
    expect(Buffer.from(out.Plaintext!)).toEqual(Buffer.from(dk.Plaintext!));
    expect(out.KeyId).toBe(keyArn);
    expect(out.EncryptionAlgorithm).toBe('SYMMETRIC_DEFAULT');

    const n = await admin.send(new GenerateDataKeyCommand({ KeyId: keyId, NumberOfBytes: 16 }));
    expect(n.Plaintext).toHaveLength(16);
  });

  test('Encrypt + Decrypt without context (legacy format)', async () => {
    const enc = await admin.send(new EncryptCommand({ KeyId: keyArn, Plaintext: Buffer.from('hello') }));
    const dec = await admin.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }));
    expect(Buffer.from(dec.Plaintext!).toString()).toBe('hello');
  });

  test('Decrypt fails on wrong or missing context, tampering, unknown keys and a mismatched KeyId', async () => {
    const dk = await admin.send(
      new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: CTX }),
    );
    const blob = Buffer.from(dk.CiphertextBlob!);
    const decrypt = (CiphertextBlob: Uint8Array, EncryptionContext?: Record<string, string>, KeyId?: string) =>
      admin.send(new DecryptCommand({ CiphertextBlob, EncryptionContext, KeyId }));
    const invalid = { name: 'InvalidCiphertextException' };

    await expect(decrypt(blob, { ...CTX, 'ecs-secrets:name': 'team-a.other' })).rejects.toMatchObject(invalid);
    await expect(decrypt(blob, { ...CTX, extra: 'x' })).rejects.toMatchObject(invalid);
    await expect(decrypt(blob)).rejects.toMatchObject(invalid);
    const tampered = Buffer.from(blob);
    tampered[tampered.length - 1] ^= 1;
    await expect(decrypt(tampered, CTX)).rejects.toMatchObject(invalid);
    await expect(decrypt(Buffer.from('not a blob at all'), CTX)).rejects.toMatchObject(invalid);

    const other = await startKms();
    try {
      const otherClient = kmsClient(other);
      const otherKey = await otherClient.send(new CreateKeyCommand({}));
      const foreign = await otherClient.send(
        new EncryptCommand({ KeyId: otherKey.KeyMetadata!.KeyId, Plaintext: Buffer.from('x') }),
      );
      await expect(decrypt(foreign.CiphertextBlob!)).rejects.toMatchObject(invalid);
    } finally {
      await other.close();
    }

    const second = kms.createKey();
    await expect(decrypt(blob, CTX, second.KeyId)).rejects.toMatchObject({ name: 'IncorrectKeyException' });
    // The untouched blob with the right context and KeyId still works: the failures above are specific.
    await expect(decrypt(blob, CTX, 'alias/ECSSecretsMaskerKey-demo')).resolves.toMatchObject({ KeyId: keyArn });
  });

  test('a restricted access key may Decrypt but not GenerateDataKey', async () => {
    const dk = await admin.send(
      new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: CTX }),
    );
    kms.setPermissions('AKIDREADER', ['Decrypt', 'DescribeKey']);
    const reader = kmsClient(kms, 'AKIDREADER');

    const out = await reader.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: CTX }));
    expect(Buffer.from(out.Plaintext!)).toEqual(Buffer.from(dk.Plaintext!));
    const err: unknown = await reader
      .send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: CTX }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'AccessDeniedException' });
    expect((err as Error).message).toContain(
      `User: AKIDREADER is not authorized to perform: kms:GenerateDataKey on resource: ${keyArn}`,
    );
    // Others are unaffected, and lifting the restriction restores access.
    await expect(admin.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }))).resolves.toBeDefined();
    kms.setPermissions('AKIDREADER', null);
    await expect(reader.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }))).resolves.toBeDefined();
  });

  test('context conditions: name glob and exact pairs', async () => {
    kms.setPermissions('AKIDTEAMA', ['GenerateDataKey', 'Decrypt'], {
      contextNameLike: 'team-a.*',
      contextEquals: { 'ecs-secrets:application': 'demo' },
    });
    const teamA = kmsClient(kms, 'AKIDTEAMA');
    const gdk = (EncryptionContext?: Record<string, string>) =>
      teamA.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext }));
    const denied = { name: 'AccessDeniedException' };

    const ok = await gdk(CTX);
    await expect(
      teamA.send(new DecryptCommand({ CiphertextBlob: ok.CiphertextBlob, EncryptionContext: CTX })),
    ).resolves.toBeDefined();
    await expect(gdk({ ...CTX, 'ecs-secrets:name': 'team-b.db' })).rejects.toMatchObject(denied);
    await expect(gdk({ ...CTX, 'ecs-secrets:name': 'team-a' })).rejects.toMatchObject(denied); // glob needs the dot
    await expect(gdk({ ...CTX, 'ecs-secrets:application': 'other' })).rejects.toMatchObject(denied);
    await expect(gdk()).rejects.toMatchObject(denied);
    // A blob made for team-b cannot be decrypted by team-a even with team-b's context.
    const teamB = { ...CTX, 'ecs-secrets:name': 'team-b.db' };
    const b = await admin.send(
      new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: teamB }),
    );
    await expect(
      teamA.send(new DecryptCommand({ CiphertextBlob: b.CiphertextBlob, EncryptionContext: teamB })),
    ).rejects.toMatchObject(denied);
  });

  test('counts requests per operation', async () => {
    kms.resetCounts();
    expect(kms.counts).toMatchObject({ total: 0, GenerateDataKey: 0, Decrypt: 0, Encrypt: 0 });
    const a = await admin.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }));
    await admin.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }));
    await admin.send(new DecryptCommand({ CiphertextBlob: a.CiphertextBlob }));
    await admin.send(new DescribeKeyCommand({ KeyId: 'alias/nope' })).catch(() => undefined); // failures count too
    expect(kms.counts).toMatchObject({ total: 4, GenerateDataKey: 2, Decrypt: 1, DescribeKey: 1, Encrypt: 0 });
  });

  test('throttle fault answers ThrottlingException, which the SDK retries', async () => {
    await kms.setFault({ throttle: true });
    kms.resetCounts();
    const err: unknown = await admin.send(new DescribeKeyCommand({ KeyId: keyId })).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ThrottlingException', message: 'Rate exceeded' });
    expect(kms.counts.DescribeKey).toBe(1);

    const retrying = kmsClient(kms, 'AKIDADMIN', 2);
    await expect(retrying.send(new DescribeKeyCommand({ KeyId: keyId }))).rejects.toMatchObject({
      name: 'ThrottlingException',
    });
    expect(kms.counts.DescribeKey).toBe(3);

    await kms.setFault(null);
    await expect(admin.send(new DescribeKeyCommand({ KeyId: keyId }))).resolves.toBeDefined();
  });

  test('delay fault slows responses down', async () => {
    await kms.setFault({ delayMs: 300 });
    const t0 = Date.now();
    await admin.send(new DescribeKeyCommand({ KeyId: keyId }));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
  });

  test('stop() refuses connections at once; start() serves the same keys on the same port', async () => {
    const dk = await admin.send(
      new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: CTX }),
    );
    const endpoint = kms.endpoint;
    await kms.stop();
    // The client's kept-alive connection was cut, so this is a fresh connection attempt.
    expect(await networkErrorCode(admin.send(new DescribeKeyCommand({ KeyId: keyId })))).toBe('ECONNREFUSED');
    await kms.start();
    expect(kms.endpoint).toBe(endpoint);
    const out = await admin.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: CTX }));
    expect(Buffer.from(out.Plaintext!)).toEqual(Buffer.from(dk.Plaintext!));

    await kms.setFault({ down: true });
    expect(await networkErrorCode(admin.send(new DescribeKeyCommand({ KeyId: keyId })))).toBe('ECONNREFUSED');
    await kms.setFault(null);
    await expect(admin.send(new DescribeKeyCommand({ KeyId: keyId }))).resolves.toBeDefined();
  });

  test('protocol details: unknown operation and error headers', async () => {
    const res = await fetch(kms.endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'TrentService.Nope' },
      body: '{}',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('x-amzn-errortype')).toBe('UnknownOperationException');
    expect(await res.json()).toMatchObject({ __type: 'UnknownOperationException' });
  });
});

describe('DynamoDB stand-in', () => {
  let kms: KmsStandIn;
  let dynamo: DynamoStandIn;
  let db: DynamoDBClient;
  let tableName: string;
  const key = { Name: { S: 'db-password' }, Serial: { N: '1' } };

  beforeAll(async () => {
    kms = await startKms();
    dynamo = await startDynamo();
    db = dynamoClient(dynamo.endpoint);
    const res = await createAppResources(kms, dynamo.endpoint, 'demo');
    tableName = res.tableName;
    expect(res).toMatchObject({ tableName: 'ECS-Secrets-demo-Secrets', aliasName: 'alias/ECSSecretsMaskerKey-demo' });
    expect(kms.resolveKey(res.aliasName)?.arn).toBe(res.keyArn);
    await db.send(new PutItemCommand({ TableName: tableName, Item: { ...key, Payload: { S: 'v1' } } }));
  });
  afterAll(async () => {
    await dynamo.close();
    await kms.close();
  });
  afterEach(async () => {
    await dynamo.setFault(null);
    if (!dynamo.listening) await dynamo.start();
  });

  test('put and get through the stand-in, counted by operation', async () => {
    dynamo.resetCounts();
    await db.send(
      new PutItemCommand({
        TableName: tableName,
        Item: { Name: { S: 'other' }, Serial: { N: '1' }, Payload: { S: 'x' } },
      }),
    );
    const got = await db.send(new GetItemCommand({ TableName: tableName, Key: key, ConsistentRead: true }));
    await db.send(new GetItemCommand({ TableName: tableName, Key: { Name: { S: 'other' }, Serial: { N: '1' } } }));
    expect(got.Item?.Payload).toEqual({ S: 'v1' });
    expect(dynamo.counts).toMatchObject({ total: 3, PutItem: 1, GetItem: 2, Query: 0 });
  });

  test('throttle fault answers ThrottlingException', async () => {
    await dynamo.setFault({ throttle: true });
    await expect(db.send(new GetItemCommand({ TableName: tableName, Key: key }))).rejects.toMatchObject({
      name: 'ThrottlingException',
      message: 'Rate of requests exceeds the allowed throughput.',
    });
    await dynamo.setFault(null);
    await expect(db.send(new GetItemCommand({ TableName: tableName, Key: key }))).resolves.toMatchObject({
      Item: { Payload: { S: 'v1' } },
    });
  });

  test('stop() refuses connections; start() keeps the data and the port', async () => {
    const endpoint = dynamo.endpoint;
    await dynamo.stop();
    expect(await networkErrorCode(db.send(new GetItemCommand({ TableName: tableName, Key: key })))).toBe(
      'ECONNREFUSED',
    );
    await dynamo.start();
    expect(dynamo.endpoint).toBe(endpoint);
    const got = await db.send(new GetItemCommand({ TableName: tableName, Key: key }));
    expect(got.Item?.Payload).toEqual({ S: 'v1' });
  });

  test('with a path, data survives close() and the directory can be reopened', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'standins-dynalite-'));
    try {
      const first = await startDynamo({ path: dir });
      try {
        const c1 = dynamoClient(first.endpoint);
        await c1.send(
          new CreateTableCommand({
            TableName: 'tbl',
            KeySchema: [{ AttributeName: 'Name', KeyType: 'HASH' }],
            AttributeDefinitions: [{ AttributeName: 'Name', AttributeType: 'S' }],
            BillingMode: 'PAY_PER_REQUEST',
          }),
        );
        await waitForActiveTable(c1, 'tbl');
        await c1.send(new PutItemCommand({ TableName: 'tbl', Item: { Name: { S: 'k' }, V: { S: 'persisted' } } }));
      } finally {
        await first.close();
      }

      // Opening the same LevelDB directory fails while the first database still holds its lock.
      const second = await startDynamo({ path: dir });
      try {
        const got = await dynamoClient(second.endpoint).send(
          new GetItemCommand({ TableName: 'tbl', Key: { Name: { S: 'k' } } }),
        );
        expect(got.Item?.V).toEqual({ S: 'persisted' });
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('startStandIns env for a spawned process', () => {
  // A child using SDK defaults only: everything must come from the environment.
  const script = `
    const { KMSClient, DescribeKeyCommand, GenerateDataKeyCommand } = require('@aws-sdk/client-kms');
    const { DynamoDBClient, ListTablesCommand } = require('@aws-sdk/client-dynamodb');
    (async () => {
      const kms = new KMSClient({ maxAttempts: 1 });
      const out = {};
      out.describe = (await kms.send(new DescribeKeyCommand({ KeyId: 'alias/ECSSecretsMaskerKey-app' }))).KeyMetadata.Arn;
      out.tables = (await new DynamoDBClient({ maxAttempts: 1 }).send(new ListTablesCommand({}))).TableNames;
      out.gdk = await kms.send(new GenerateDataKeyCommand({ KeyId: 'alias/ECSSecretsMaskerKey-app', KeySpec: 'AES_256' }))
        .then(() => 'ok', (e) => e.name + ': ' + e.message);
      console.log(JSON.stringify(out));
    })().catch((e) => { console.error(e); process.exit(1); });`;

  function runChild(env: NodeJS.ProcessEnv): Promise<{ describe: string; tables: string[]; gdk: string }> {
    return new Promise((resolve, reject) => {
      execFile(process.execPath, ['-e', script], { env, cwd: path.resolve(__dirname, '..') }, (err, stdout, stderr) => {
        if (err) reject(new Error(`child failed: ${stderr}`));
        else resolve(JSON.parse(stdout) as { describe: string; tables: string[]; gdk: string });
      });
    });
  }

  test('reaches both stand-ins with the admin key, ignoring leaked AWS settings; credentialsEnv swaps keys', async () => {
    const s = await startStandIns();
    try {
      const res = await createAppResources(s.kms, s.dynamo.endpoint, 'app');
      s.kms.resetCounts();
      // What a developer's shell might carry: none of it may reach the stand-ins' users.
      const leaky = {
        ...process.env,
        AWS_PROFILE: 'leaky',
        AWS_SESSION_TOKEN: 'leaky',
        AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      };

      const asAdmin = await runChild({ ...leaky, ...s.env });
      expect(asAdmin).toEqual({ describe: res.keyArn, tables: [res.tableName], gdk: 'ok' });
      expect(s.kms.counts).toMatchObject({ DescribeKey: 1, GenerateDataKey: 1 });

      s.kms.setPermissions('AKIDREADER', ['DescribeKey', 'Decrypt']);
      const asReader = await runChild({ ...leaky, ...s.env, ...credentialsEnv('AKIDREADER') });
      expect(asReader.describe).toBe(res.keyArn);
      expect(asReader.gdk).toMatch(/^AccessDeniedException: User: AKIDREADER is not authorized/);
    } finally {
      await s.close();
    }
  });
});
