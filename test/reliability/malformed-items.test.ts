/**
 * A malformed item in the table: a non-integer serial, a wrong attribute
 * type or a missing attribute is an integrity error (CLI exit 1, daemon HTTP 500 with a clear
 * message), never a wrong serial, a revoked version taken for active, or an "internal" error.
 * The items are written straight into the DynamoDB stand-in with the SDK, as a migration script
 * or a console edit would; the CLI and the daemon then read them.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GetItemCommand, PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { json, runCli } from '../helpers/cli';
import { type SpawnedDaemon, spawnDaemon } from '../helpers/daemon';
import { type StandIns, createAppResources, startStandIns } from '../standins';
import { adminDynamo, scanTable } from './support';

const APP = 'bad';
const TABLE = `ECS-Secrets-${APP}-Secrets`;
let s: StandIns;
let d: SpawnedDaemon;
let good: Record<string, AttributeValue>;

const cli = (args: string[]) => runCli(['--application-name', APP, ...args], { env: s.env });

/** A copy of a real item under another name, with some attributes replaced (undefined: removed). */
function variant(name: string, changes: Record<string, AttributeValue | undefined>): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue | undefined> = { ...good, Name: { S: name }, ...changes };
  for (const k of Object.keys(item)) if (item[k] === undefined) delete item[k];
  return item as Record<string, AttributeValue>;
}

// name → the attributes that are wrong, and what the message must say about them.
const CASES: Array<[string, Record<string, AttributeValue | undefined>, RegExp]> = [
  ['frac', { Serial: { N: '1.5' } }, /Serial 1\.5\): Serial is not a whole number from 1 up/],
  ['active-string', { Active: { S: 'true' } }, /attribute Active is S, expected BOOL/],
  ['data-number', { EncryptedData: { N: '5' } }, /attribute EncryptedData is N, expected S/],
  ['key-binary', { EncryptedDataKey: { B: Buffer.from('xyz') } }, /attribute EncryptedDataKey is B, expected S/],
  ['format-string', { Format: { S: '2' } }, /attribute Format is S, expected N/],
  ['no-active', { Active: undefined }, /attribute Active is missing/],
  ['no-data', { EncryptedData: undefined }, /attribute EncryptedData is missing/],
  ['no-key', { EncryptedDataKey: undefined }, /attribute EncryptedDataKey is missing/],
];

beforeAll(async () => {
  s = await startStandIns();
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
  expect((await cli(['create', '--name', 'fine', '--payload', 'v1'])).code).toBe(0);
  const ddb = adminDynamo(s.dynamo.endpoint);
  try {
    good = (await ddb.send(new GetItemCommand({ TableName: TABLE, Key: { Name: { S: 'fine' }, Serial: { N: '1' } } })))
      .Item!;
    for (const [name, changes] of CASES)
      await ddb.send(new PutItemCommand({ TableName: TABLE, Item: variant(name, changes) }));
    // The original's revoke of an unknown serial left phantom items: Name, Serial, Active=false.
    // They are not malformed: a revoked version is never decrypted.
    await ddb.send(
      new PutItemCommand({
        TableName: TABLE,
        Item: variant('fine', {
          Serial: { N: '9' },
          Active: { BOOL: false },
          EncryptedData: undefined,
          EncryptedDataKey: undefined,
          Format: undefined,
          CreatedAt: undefined,
        }),
      }),
    );
  } finally {
    ddb.destroy();
  }
  d = await spawnDaemon(['--application-name', APP, '--cache-ttl', '0'], { env: s.env, waitHealthy: true });
});
afterAll(async () => {
  await d?.stop();
  await s?.close();
});

// Serials below 1 are outside every version query (Serial 0 holds a name's labels): an item
// written there by hand is never taken for a version, so the name has none.
test.each([
  ['zero', '0'],
  ['negative', '-4'],
])('an item at serial %s is never read as a version', async (name, serial) => {
  const ddb = adminDynamo(s.dynamo.endpoint);
  try {
    await ddb.send(new PutItemCommand({ TableName: TABLE, Item: variant(`below-${name}`, { Serial: { N: serial } }) }));
  } finally {
    ddb.destroy();
  }
  const r = await cli(['fetch', '--name', `below-${name}`]);
  expect([r.code, r.stdout, r.stderr.trim().split('\n').length]).toEqual([1, '', 1]);
  expect(r.stderr).toMatch(/not found/);
  expect((await cli(['list'])).stdout).not.toContain(`below-${name}`);
});

describe.each(CASES)('item %s', (name, _changes, message) => {
  test('fetch: exit 1, one line naming the item and the attribute', async () => {
    // The latest (a bad serial is not reachable by --serial, which only takes whole numbers).
    const latest = await cli(['fetch', '--name', name]);
    expect({ code: latest.code, stdout: latest.stdout }).toEqual({ code: 1, stdout: '' });
    expect(latest.stderr).toMatch(
      new RegExp(`^ecs-secrets: integrity check failed: malformed item in table ${TABLE} \\(Name "${name}", `),
    );
    expect(latest.stderr).toMatch(message);
    expect(latest.stderr.trim().split('\n')).toHaveLength(1);
    expect(latest.stderr).not.toMatch(/unexpected|internal|\n\s+at /);
  });

  test('daemon: HTTP 500 with the same message as JSON, not an internal error', async () => {
    const res = await fetch(`${d.url}/latest/secrets/${name}`);
    const body = (await res.json()) as { error: string };
    expect(res.status).toBe(500);
    expect(body.error).toMatch(/^integrity check failed: malformed item/);
    expect(body.error).toMatch(message);
  });
});

test('history and list refuse a non-integer serial instead of printing it', async () => {
  for (const args of [['history', '--name', 'frac'], ['list']]) {
    const r = await cli(args);
    expect([r.code, r.stdout]).toEqual([1, '']);
    expect(r.stderr).toMatch(/integrity check failed: malformed item .*Serial is not a whole number/);
  }
  const h = await cli(['history', '--name', 'active-string']);
  expect([h.code, h.stderr]).toEqual([1, expect.stringMatching(/attribute Active is S, expected BOOL/)]);
});

test('create does not build a new serial on a malformed latest one (no serial 2.5 appears)', async () => {
  const r = await cli(['create', '--name', 'frac', '--payload', 'x']);
  expect([r.code, r.stdout]).toEqual([1, '']);
  expect(r.stderr).toMatch(/integrity check failed: malformed item .*"frac", Serial 1\.5/);
  const ddb = adminDynamo(s.dynamo.endpoint);
  try {
    const serials = (await scanTable(ddb, TABLE)).filter((i) => i.Name.S === 'frac').map((i) => i.Serial.N);
    expect(serials).toEqual(['1.5']);
  } finally {
    ddb.destroy();
  }
  const post = await fetch(`${d.url}/latest/secrets/frac`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"payload":"x"}',
  });
  expect(post.status).toBe(500);
});

test('import: a malformed item fails only its own name; the other secrets are imported', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-malformed-'));
  const file = path.join(dir, 'in.env');
  // "frac" has a malformed serial (the import must not build on it); the others are new names.
  fs.writeFileSync(file, 'imp.one=1\nimp.two=2\nfrac=3\n');
  try {
    const r = await cli(['import', 'dotenv', file]);
    expect(r.code).toBe(1);
    const out = json<{ imported: Array<{ name: string }>; failed: Array<{ name: string; error: string }> }>(r);
    expect(out.imported.map((i) => i.name).sort()).toEqual(['imp.one', 'imp.two']);
    expect(out.failed).toEqual([expect.objectContaining({ name: 'frac', error: 'integrity' })]);
    expect(json(await cli(['fetch', '--name', 'imp.two']))).toMatchObject({ serial: 1, payload: '2' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("well-formed items, and the original's phantom revoked items, still read", async () => {
  expect(json(await cli(['fetch', '--name', 'fine']))).toEqual({
    name: 'fine',
    serial: 1,
    payload: 'v1',
    active: true,
  });
  expect(json(await cli(['fetch', '--name', 'fine', '--serial', '9']))).toEqual({
    name: 'fine',
    serial: 9,
    payload: '',
    active: false,
  });
  expect(
    json<Array<{ serial: number; active: boolean }>>(await cli(['history', '--name', 'fine'])).map((v) => [
      v.serial,
      v.active,
    ]),
  ).toEqual([
    [1, true],
    [9, false],
  ]);
  const res = await fetch(`${d.url}/latest/secrets/fine`);
  expect([res.status, await res.json()]).toEqual([200, { name: 'fine', serial: 1, payload: 'v1', active: true }]);
});
