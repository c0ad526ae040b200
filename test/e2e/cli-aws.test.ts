/**
 * The CLI end to end on the AWS path: the built CLI, spawned as a user runs it, reaching dynalite
 * and the KMS stand-in through the real SDK clients via AWS_ENDPOINT_URL_*.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DynamoDBClient, GetItemCommand, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { seal } from '../../src/core/crypto';
import { openBackend } from '../../src/backends/open-backend';
import { type CliResult, json, runCli } from '../helpers/cli';
import { type StandIns, createAppResources, credentialsEnv, startStandIns } from '../standins';

const APP = 'shop';
const TABLE = `ECS-Secrets-${APP}-Secrets`;
let s: StandIns;
let ddb: DynamoDBClient;
let kms: KMSClient;
let env: Record<string, string>;

const cli = (args: string[], extra: { env?: Record<string, string>; input?: string } = {}) =>
  runCli(['--application-name', APP, ...args], { env: { ...env, ...extra.env }, input: extra.input });

beforeAll(async () => {
  s = await startStandIns();
  // Our CLI must quiet the SDK's Node-version warning itself; do not do it for it.
  env = { ...s.env };
  delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
  const cfg = { region: 'us-east-1', credentials: { accessKeyId: 'AKIDADMIN', secretAccessKey: 'x' } };
  ddb = new DynamoDBClient({ ...cfg, endpoint: s.dynamo.endpoint });
  kms = new KMSClient({ ...cfg, endpoint: s.kms.endpoint });
});
afterAll(async () => {
  ddb.destroy();
  kms.destroy();
  await s.close();
});

async function itemCount(name?: string): Promise<number> {
  const out = await ddb.send(new ScanCommand({ TableName: TABLE }));
  return (out.Items ?? []).filter((i) => name === undefined || i.Name.S === name).length;
}

function expectOneLineError(r: CliResult, code: number, pattern: RegExp): void {
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code, stdout: '' });
  const lines = r.stderr.trim().split('\n');
  expect(lines[0]).toMatch(/^ecs-secrets: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(lines).toHaveLength(1); // the error alone, usage errors included
}

test('create two versions, revoke 1, fetch latest and by serial, list, history', async () => {
  const c1 = await cli(['create', '--name', 'db.password', '--payload', 'first']);
  expect(c1.stderr).toBe(''); // quiet: in particular no SDK Node-version warning
  expect(json(c1)).toEqual({ name: 'db.password', serial: 1 });
  expect(json(await cli(['store', '--name', 'db.password', '--payload-location', '-'], { input: 'second' }))).toEqual({
    name: 'db.password',
    serial: 2,
  });
  expect(json(await cli(['revoke', '--name', 'db.password', '--serial', '1']))).toEqual({
    name: 'db.password',
    serial: 1,
    active: false,
  });
  const latest = await cli(['fetch', '--name', 'db.password']);
  expect([latest.code, latest.stderr]).toEqual([0, '']);
  expect(json(latest)).toEqual({ name: 'db.password', serial: 2, payload: 'second', active: true });
  expect(json(await cli(['get', '--name', 'db.password', '--serial', '1']))).toEqual({
    name: 'db.password',
    serial: 1,
    payload: '',
    active: false,
  });
  await cli(['create', '--name', 'api.key', '--payload', 'k']);
  expect(json(await cli(['list']))).toEqual([
    { name: 'api.key', latestSerial: 1 },
    { name: 'db.password', latestSerial: 2 },
  ]);
  const history = json<Array<{ serial: number; active: boolean; createdAt: string }>>(
    await cli(['history', '--name', 'db.password']),
  );
  expect(history.map((h) => [h.serial, h.active])).toEqual([
    [1, false],
    [2, true],
  ]);
  for (const h of history) expect(Date.parse(h.createdAt)).not.toBeNaN();
  // New versions say who wrote them (the stand-in's principal for the caller's access key).
  for (const h of history as Array<{ createdBy?: string }>) expect(h.createdBy).toMatch(/^arn:aws:/);
  // Stored as the contract says: format 2, the original's attributes, no plaintext.
  const item = await ddb.send(
    new GetItemCommand({ TableName: TABLE, Key: { Name: { S: 'db.password' }, Serial: { N: '2' } } }),
  );
  expect(Object.keys(item.Item ?? {}).sort()).toEqual([
    'Active',
    'CreatedAt',
    'CreatedBy',
    'EncryptedData',
    'EncryptedDataKey',
    'Format',
    'Name',
    'Serial',
  ]);
  expect(item.Item?.Format).toEqual({ N: '2' });
  expect(JSON.stringify(item.Item)).not.toContain('second');
});

test('the application name may come from ECS_SECRETS_APPLICATION_NAME', async () => {
  const r = await runCli(['create', '--name', 'from.env', '--payload', 'x'], {
    env: { ...env, ECS_SECRETS_APPLICATION_NAME: APP },
  });
  expect(json(r)).toEqual({ name: 'from.env', serial: 1 });
});

test('10 concurrent creates of one name get serials 1..10, every payload readable', async () => {
  // In-process, through the real SDK clients: 10 writers racing in one event loop. The clients
  // read their configuration lazily, so the environment stays set until they are done. 10, not
  // more: the losers of each serial retry, so n writers cost the stand-ins in this same event loop
  // about n²/2 conditional puts, and with 25 or 50 a machine running a CPU-bound process beside
  // the suite starved the KMS stand-in past the client's 2 s request timeout. Crowds of separate
  // processes are tested below and in the propagation suite.
  const saved = { ...process.env };
  Object.assign(process.env, env);
  const WRITERS = 10;
  const b = await openBackend({ app: APP, local: false });
  try {
    // Connections and credentials set up before the race, so its clock only counts the race.
    await b.service.create('race.warm-up', 'x');
    const created = await Promise.all(
      Array.from({ length: WRITERS }, (_, i) => b.service.create('race', `payload-${i}`)),
    );
    expect(created.map((c) => c.serial).sort((a, z) => a - z)).toEqual(
      Array.from({ length: WRITERS }, (_, i) => i + 1),
    );
    for (const [i, c] of created.entries())
      expect(await b.service.fetch('race', c.serial)).toEqual({
        name: 'race',
        serial: c.serial,
        payload: `payload-${i}`,
        active: true,
      });
    expect(await itemCount('race')).toBe(WRITERS);
  } finally {
    await b.close();
    process.env = saved;
  }
});

test('8 concurrent CLI processes creating one name lose nothing', async () => {
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) => cli(['create', '--name', 'procs', '--payload', `p${i}`])),
  );
  expect(results.map((r) => r.code)).toEqual(Array(8).fill(0));
  expect(results.map((r) => json<{ serial: number }>(r).serial).sort()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
});

test('a legacy record, written exactly as the original writes it, fetches correctly', async () => {
  // The original: KMS GenerateDataKey AES_256 on the alias with no EncryptionContext, payload sealed
  // with cryptopasta (nonce || ciphertext || tag, no AAD), both base64, and no Format attribute.
  const dk = await kms.send(
    new GenerateDataKeyCommand({ KeyId: `alias/ECSSecretsMaskerKey-${APP}`, KeySpec: 'AES_256' }),
  );
  await ddb.send(
    new PutItemCommand({
      TableName: TABLE,
      Item: {
        Name: { S: 'legacy.secret' },
        Serial: { N: '1' },
        EncryptedData: { S: seal(Buffer.from(dk.Plaintext!), Buffer.from('from-the-go-version'), undefined) },
        EncryptedDataKey: { S: Buffer.from(dk.CiphertextBlob!).toString('base64') },
        Active: { BOOL: true },
      },
    }),
  );
  expect(json(await cli(['fetch', '--name', 'legacy.secret']))).toEqual({
    name: 'legacy.secret',
    serial: 1,
    payload: 'from-the-go-version',
    active: true,
  });
  // And a new version of a legacy secret is written as format 2.
  expect(json(await cli(['create', '--name', 'legacy.secret', '--payload', 'new']))).toEqual({
    name: 'legacy.secret',
    serial: 2,
  });
  const item = await ddb.send(
    new GetItemCommand({ TableName: TABLE, Key: { Name: { S: 'legacy.secret' }, Serial: { N: '2' } } }),
  );
  expect(item.Item?.Format).toEqual({ N: '2' });
});

test('an item copied to another name or serial fails to decrypt, never returning the other secret', async () => {
  await cli(['create', '--name', 'victim', '--payload', 'VICTIM-PAYLOAD']);
  const src = await ddb.send(
    new GetItemCommand({ TableName: TABLE, Key: { Name: { S: 'victim' }, Serial: { N: '1' } } }),
  );
  for (const [name, serial] of [
    ['attacker', '1'],
    ['victim', '7'],
  ]) {
    await ddb.send(
      new PutItemCommand({ TableName: TABLE, Item: { ...src.Item!, Name: { S: name }, Serial: { N: serial } } }),
    );
    const r = await cli(['fetch', '--name', name, '--serial', serial]);
    expectOneLineError(r, 1, /integrity check failed/);
    expect(r.stdout + r.stderr).not.toContain('VICTIM-PAYLOAD');
  }
});

test('credentials that KMS allows only Decrypt: create is denied with one line, exit 1, table unchanged', async () => {
  s.kms.setPermissions('AKIDFETCH', ['Decrypt', 'DescribeKey']);
  const before = await itemCount();
  const r = await cli(['create', '--name', 'denied', '--payload', 'x'], { env: credentialsEnv('AKIDFETCH') });
  expectOneLineError(r, 1, /access denied/i);
  expect(r.stderr).toMatch(/GenerateDataKey/);
  expect(await itemCount()).toBe(before);
  // The same credentials can still read.
  const f = await cli(['fetch', '--name', 'db.password'], { env: credentialsEnv('AKIDFETCH') });
  expect(json(f)).toMatchObject({ serial: 2, payload: 'second' });
});

test('revoking a serial that does not exist: exit 1, not found, nothing written', async () => {
  const before = await itemCount();
  const r = await cli(['revoke', '--name', 'db.password', '--serial', '99']);
  // One conditional update on the item's key: a name never created fails the same condition.
  expectOneLineError(r, 1, /^ecs-secrets: secret db\.password has no serial 99$/);
  expect(await itemCount()).toBe(before);
});

test('fetching an unknown secret or serial: exit 1, not found', async () => {
  expectOneLineError(await cli(['fetch', '--name', 'nope']), 1, /secret nope not found/);
  expectOneLineError(await cli(['fetch', '--name', 'db.password', '--serial', '42']), 1, /has no serial 42/);
});

test('a --payload value that starts with "-" is the value, as getopt reads a required argument', async () => {
  const payloads = ['-x', '--debug', '-5', '-- x', '--payload'];
  for (const [i, payload] of payloads.entries()) {
    const created = await cli(['create', '--name', `dash.payload-${i}`, '--payload', payload]);
    expect({ payload, code: created.code, stderr: created.stderr }).toEqual({ payload, code: 0, stderr: '' });
  }
  // What was stored, read back for all five names by one process: the values are the point here,
  // and each is read by its own name, so a value stored under the wrong name shows too.
  const stored = await cli(['export', ...payloads.flatMap((_, i) => ['--name', `P${i}=dash.payload-${i}`])]);
  expect(json(stored)).toEqual(Object.fromEntries(payloads.map((payload, i) => [`P${i}`, payload])));
  // A repeat is still a repeat, whichever way it is spelt.
  const twice = await cli(['create', '--name', 'dash.twice', '--payload', '-a', '--payload=-b']);
  expectOneLineError(twice, 2, /--payload was given more than once/);
});

describe('bad input: one clear line, the right exit code, nothing written', () => {
  const big = 'x'.repeat(256 * 1024 + 1);
  const bigDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-big-'));
  const oneMiBFile = path.join(bigDir, 'one-mib');
  fs.writeFileSync(oneMiBFile, Buffer.alloc(1024 * 1024, 'z'));
  afterAll(() => fs.rmSync(bigDir, { recursive: true, force: true }));
  const cases: Array<[string, string[], number, RegExp, string]> = [
    [
      'invalid application name',
      ['--application-name', '1bad', 'create', '--name', 'a', '--payload', 'x'],
      2,
      /invalid application name/,
      '',
    ],
    ['invalid secret name', ['create', '--name', 'a/b', '--payload', 'x'], 2, /invalid secret name/, ''],
    ['name with spaces', ['fetch', '--name', 'a b'], 2, /invalid secret name/, ''],
    // A non-number and the value just below the range reach the one serial rule from both commands
    // that take --serial; every other bad value is the unit test's (test/unit/names.test.ts).
    ['serial abc', ['fetch', '--name', 'a', '--serial', 'abc'], 2, /invalid serial "abc"/, ''],
    ['serial 0', ['revoke', '--name', 'a', '--serial', '0'], 2, /invalid serial "0"/, ''],
    [
      'both payload flags',
      ['create', '--name', 'a', '--payload', 'x', '--payload-location', '/etc/hostname'],
      2,
      /only one of/,
      '',
    ],
    ['neither payload flag', ['create', '--name', 'a'], 2, /one of --payload or --payload-location/, ''],
    [
      'missing payload file',
      ['create', '--name', 'a', '--payload-location', '/nonexistent/file'],
      2,
      /cannot read payload file .*no such file/,
      '',
    ],
    // Linux caps one argv string at 128 KiB, so a payload over the limit cannot be passed with --payload: base64 and raw bytes on stdin.
    // --binary reads file and stdin through the same capped reader as text: its limit is
    // test/e2e/binary.test.ts's (262145 bytes on stdin, the exact line).
    [
      'payload over 256 KiB as base64',
      ['create', '--name', 'a', '--payload-encoding', 'base64', '--payload-location', '-'],
      2,
      /262145 bytes; the limit is 262144/,
      Buffer.from(big).toString('base64'),
    ],
    [
      'payload over 256 KiB on stdin',
      ['create', '--name', 'a', '--payload-location', '-'],
      2,
      /^ecs-secrets: the payload is 262145 bytes; the limit is 262144/,
      big,
    ],
    // The error names the input's real size, not the bytes read before giving up.
    [
      '1 MiB on stdin',
      ['create', '--name', 'a', '--payload-location', '-'],
      2,
      /^ecs-secrets: the payload is 1048576 bytes; the limit is 262144/,
      'y'.repeat(1024 * 1024),
    ],
    [
      '1 MiB file',
      ['create', '--name', 'a', '--payload-location', oneMiBFile],
      2,
      /^ecs-secrets: the payload is 1048576 bytes; the limit is 262144/,
      '',
    ],
    [
      'invalid base64',
      ['create', '--name', 'a', '--payload-encoding', 'base64', '--payload', 'not base64!'],
      2,
      /not valid base64/,
      '',
    ],
    [
      'unknown payload encoding',
      ['create', '--name', 'a', '--payload-encoding', 'hex', '--payload', 'ab'],
      2,
      /unknown --payload-encoding "hex"/,
      '',
    ],
    [
      '--binary with --payload',
      ['create', '--name', 'a', '--binary', '--payload', 'x'],
      2,
      /--binary reads the bytes of --payload-location/,
      '',
    ],
    ['missing --name', ['fetch'], 2, /Missing required argument: name/, ''],
    ['missing --serial on revoke', ['revoke', '--name', 'a'], 2, /Missing required argument: serial/, ''],
    ['unknown flag', ['fetch', '--name', 'a', '--nmae', 'b'], 2, /Unknown argument/, ''],
    ['unknown command', ['frobnicate'], 2, /Unknown argument: frobnicate/, ''],
    ['no command', [], 2, /name a command/, ''],
  ];
  test.each(cases)('%s', async (_label, args, code, pattern, input) => {
    const before = await itemCount();
    const withApp = args[0] === '--application-name' ? args : ['--application-name', APP, ...args];
    const r = await runCli(withApp, { env, input });
    expectOneLineError(r, code, pattern);
    expect(await itemCount()).toBe(before);
  });

  test('missing --application-name', async () => {
    const r = await runCli(['create', '--name', 'a', '--payload', 'x'], { env });
    expectOneLineError(r, 2, /missing application name/);
  });
});

test('backend down: exit 1 with one line, not a hang or a stack', async () => {
  const r = await runCli(['--application-name', APP, 'fetch', '--name', 'a'], {
    env: { ...env, AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9', AWS_ENDPOINT_URL_KMS: 'http://127.0.0.1:9' },
  });
  expectOneLineError(r, 1, /backend unavailable/);
});

test('a canary payload never appears in create output or logs, even with --debug', async () => {
  const canary = 'CANARY-7f3a9c-never-log-me';
  for (const args of [
    ['create', '--name', 'canary', '--payload', canary, '--debug'],
    ['create', '--name', 'canary', '--payload-location', '-', '--debug'],
    ['revoke', '--name', 'canary', '--serial', '1', '--debug'],
    ['history', '--name', 'canary', '--debug'],
    ['list', '--debug'],
  ]) {
    const r = await cli(args, { input: canary });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/debug|"level":20/i); // debug logs are on...
    expect(r.stdout + r.stderr).not.toContain(canary); // ...and hold no payload
  }
  // fetch prints it on stdout by design, and nowhere else.
  const f = await cli(['fetch', '--name', 'canary', '--debug']);
  expect(json(f)).toMatchObject({ payload: canary });
  expect(f.stderr).not.toContain(canary);
});

test('--debug adds the stack trace to an error', async () => {
  const r = await cli(['fetch', '--name', 'nope', '--debug']);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/^ecs-secrets: secret nope not found/m);
  expect(r.stderr).toMatch(/\n\s+at /);
});

test('--help and --version', async () => {
  const h = await runCli(['--help']);
  expect(h.code).toBe(0);
  for (const c of ['create', 'fetch', 'revoke', 'list', 'history', 'daemon']) expect(h.stdout).toContain(c);
  const v = await runCli(['--version']);
  expect([v.code, v.stdout.trim()]).toEqual([0, require('../../package.json').version]);
});
