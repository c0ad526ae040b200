/**
 * `ecs-secrets import` end to end: the built CLI reads SSM, Secrets Manager (our JSON 1.1 stand-ins)
 * and credstash tables (dynalite + the KMS stand-in, items written by nodecredstash and one by hand)
 * through the real SDK clients, and writes into either backend. Promises: history kept in order,
 * each source version written once however often the import runs or is killed, planning refuses
 * bad names before any write, and no value ever reaches stdout, stderr or an error.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateTableCommand, DynamoDBClient, PutItemCommand, ScanCommand } from '@aws-sdk/client-dynamodb';
import { EncryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { CLI, type CliResult, baseEnv, json, runCli } from '../helpers/cli';
import { loadCredStash } from '../helpers/nodecredstash';
import { type StandIns, createAppResources, startStandIns, waitForActiveTable } from '../standins';
import { withService } from '../reliability/support';

jest.setTimeout(180_000);

const APP = 'shop';
const TABLE = `ECS-Secrets-${APP}-Secrets`;
let s: StandIns;
let ddb: DynamoDBClient;
let kms: KMSClient;
let dir: string;

const aws = (args: string[], input?: string) => runCli(['--application-name', APP, ...args], { env: s.env, input });
const local = (args: string[], input?: string) =>
  runCli(['--local', '--data-dir', dir, '--application-name', APP, ...args], { env: s.env, input });

interface Summary {
  imported: Array<{ source: string; name: string; serials: number[] }>;
  skipped: Array<{ source: string; name: string }>;
  failed: Array<{ source: string; name: string; error: string; message: string }>;
}
interface HistoryEntry {
  serial: number;
  source?: string;
  sourceAuthor?: string;
  sourceCreatedAt?: string;
}

beforeAll(async () => {
  s = await startStandIns();
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
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-import-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function ok(r: CliResult): Summary {
  expect({ code: r.code, stderr: r.stderr.split('\n').filter((l) => !l.startsWith('import ')) }).toEqual({
    code: 0,
    stderr: [''],
  });
  return json<Summary>(r);
}

function expectOneLineError(r: CliResult, code: number, pattern: RegExp): void {
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code, stdout: '' });
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^ecs-secrets: /);
  expect(lines[0]).toMatch(pattern);
}

async function itemCount(prefix: string): Promise<number> {
  const out = await ddb.send(new ScanCommand({ TableName: TABLE }));
  return (out.Items ?? []).filter((i) => i.Name.S?.startsWith(prefix)).length;
}

const payload = async (run: typeof aws, name: string, serial?: number) =>
  json<{ payload: string }>(await run(['fetch', '--name', name, ...(serial ? ['--serial', String(serial)] : [])]))
    .payload;
/** The latest payload of each name, read by one export process instead of one fetch per name. */
async function latest(run: typeof aws, names: string[]): Promise<Record<string, string>> {
  const r = await run(['export', ...names.flatMap((n, i) => ['--name', `V${i}=${n}`])]);
  const vars = json<Record<string, string>>(r);
  return Object.fromEntries(names.map((n, i) => [n, vars[`V${i}`]]));
}

test('ssm --history: every version oldest first with its source, author and date; a re-run writes nothing; a new version is added alone', async () => {
  s.ssm.put('/prod/app/db/password', 'pw-one', { type: 'SecureString', user: 'arn:aws:iam::1:user/alice' });
  s.ssm.put('/prod/app/db/password', 'pw-two', { type: 'SecureString', user: 'arn:aws:iam::1:user/bob' });
  s.ssm.put('/prod/app/db/password', 'pw-three', { type: 'SecureString' });
  s.ssm.put('/prod/app/hosts', 'a,b,c', { type: 'StringList' });
  for (let i = 0; i < 5; i++) s.ssm.put(`/prod/app/k${i}`, `v${i}`); // more than a page
  s.ssm.put('/prod-other/x', 'not under /prod/');

  const dry = await aws(['import', 'ssm', '--path', '/prod/', '--recursive', '--history', '--dry-run']);
  expect(dry.code).toBe(0);
  const plan = json<{ plan: Array<{ source: string; name: string; versions: string[] }>; skipped: unknown[] }>(dry);
  expect(plan.plan.find((p) => p.name === 'app.db.password')).toEqual({
    source: 'ssm:/prod/app/db/password',
    name: 'app.db.password',
    versions: ['ssm:/prod/app/db/password#1', 'ssm:/prod/app/db/password#2', 'ssm:/prod/app/db/password#3'],
  });
  expect(plan.plan).toHaveLength(7);
  expect(await itemCount('app.')).toBe(0);
  expect(dry.stdout).not.toMatch(/pw-/);

  s.ssm.resetCounts();
  s.dynamo.resetCounts();
  const r = await aws(['import', 'ssm', '--path', '/prod/', '--recursive', '--history']);
  const sum = ok(r);
  // A run that writes reads each parameter's history once, with the values (the plan's listing
  // does not read it again); names the store does not have yet are found by one scan of the keys,
  // not read one by one.
  expect(s.ssm.counts.GetParameterHistory).toBe(7);
  expect({ scan: s.dynamo.counts.Scan, query: s.dynamo.counts.Query }).toEqual({ scan: 1, query: 0 });
  expect(sum.failed).toEqual([]);
  expect(sum.imported.find((i) => i.name === 'app.db.password')?.serials).toEqual([1, 2, 3]);
  expect(sum.imported).toHaveLength(7);
  expect(r.stdout + r.stderr).not.toMatch(/pw-|a,b,c/);
  expect(r.stderr).toMatch(
    /^import \d+\/7: ssm:\/prod\/app\/db\/password -> app\.db\.password: 3 version\(s\) written$/m,
  );
  expect(await latest(aws, ['app.db.password', 'app.hosts'])).toEqual({
    'app.db.password': 'pw-three',
    'app.hosts': 'a,b,c',
  });
  expect(await payload(aws, 'app.db.password', 1)).toBe('pw-one');
  const history = json<HistoryEntry[]>(await aws(['history', '--name', 'app.db.password']));
  expect(history.map((h) => [h.serial, h.source, h.sourceAuthor, h.sourceCreatedAt])).toEqual([
    [1, 'ssm:/prod/app/db/password#1', 'arn:aws:iam::1:user/alice', '2024-01-01T00:00:00.000Z'],
    [2, 'ssm:/prod/app/db/password#2', 'arn:aws:iam::1:user/bob', '2024-01-02T00:00:00.000Z'],
    [3, 'ssm:/prod/app/db/password#3', 'arn:aws:iam::123456789012:user/alice', '2024-01-03T00:00:00.000Z'],
  ]);

  s.ssm.resetCounts();
  const again = ok(await aws(['import', 'ssm', '--path', '/prod/', '--recursive', '--history']));
  expect([again.imported, again.skipped.length]).toEqual([[], 7]);
  // Every version from 1 to the current one is recorded: no history is read, nothing decrypted.
  expect(s.ssm.counts.GetParameterHistory).toBe(0);
  expect(await itemCount('app.')).toBe(3 + 1 + 5);

  s.ssm.put('/prod/app/db/password', 'pw-four', { type: 'SecureString' });
  const more = ok(await aws(['import', 'ssm', '--path', '/prod/', '--recursive', '--history']));
  expect(more.imported).toEqual([{ source: 'ssm:/prod/app/db/password', name: 'app.db.password', serials: [4] }]);
  expect(await payload(aws, 'app.db.password')).toBe('pw-four');

  // Without --history, into --local: the current version only; --prefix in front.
  const cur = ok(await local(['import', 'ssm', '--path', '/prod/app/db', '--prefix', 'legacy.']));
  expect(cur.imported).toEqual([{ source: 'ssm:/prod/app/db/password', name: 'legacy.password', serials: [1] }]);
  expect(await payload(local, 'legacy.password')).toBe('pw-four');
});

test('each imported version is one conditional put after one read of the name; a serial taken meanwhile moves a version on, never over', async () => {
  for (const p of ['before-1', 'before-2'])
    expect((await aws(['create', '--name', 'seq.token', '--payload', p])).code).toBe(0);
  for (const v of ['t1', 't2', 't3']) s.ssm.put('/seq/token', v, { type: 'SecureString' });
  s.dynamo.resetCounts();
  const sum = ok(await aws(['import', 'ssm', '--path', '/seq/', '--history', '--prefix', 'seq.']));
  expect(sum.imported).toEqual([{ source: 'ssm:/seq/token', name: 'seq.token', serials: [3, 4, 5] }]);
  // The name's end is read once (with the sources already imported), not before every version;
  // three version puts and one change-record entry for the secret, not one per version.
  expect({ query: s.dynamo.counts.Query, put: s.dynamo.counts.PutItem }).toEqual({ query: 1, put: 4 });
  expect(await payload(aws, 'seq.token', 2)).toBe('before-2');
  expect(await payload(aws, 'seq.token')).toBe('t3');

  // A guess at the next serial that another writer took: the conditional put refuses it and the
  // version goes after the end instead.
  s.dynamo.conditionalCheckFailures = 0;
  const created = await withService(APP, s.env, (svc) => svc.create('seq.token', 'late', { nextSerial: 4 }));
  expect(created.serial).toBe(6);
  expect(s.dynamo.conditionalCheckFailures).toBe(1);
  expect(await payload(aws, 'seq.token', 4)).toBe('t2');
});

test('ssm throttling is retried with backoff; a source that is down is one line, exit 1', async () => {
  s.ssm.put('/throttle/a', 'x1');
  s.ssm.put('/throttle/b', 'x2');
  s.ssm.throttleNext(3);
  const r = ok(await local(['import', 'ssm', '--path', '/throttle/', '--history']));
  expect(r.imported.map((i) => i.name)).toEqual(['a', 'b']);
  expect(s.ssm.counts.GetParametersByPath).toBeGreaterThan(1);

  await s.ssm.setFault({ down: true });
  try {
    expectOneLineError(await local(['import', 'ssm', '--path', '/throttle/']), 1, /unavailable.*SSM/i);
  } finally {
    await s.ssm.setFault(null);
  }
});

test('planning: an invalid name or a collision stops the import before any write, naming the sources (exit 2)', async () => {
  s.ssm.put('/plan/good', 'v');
  s.ssm.put('/plan/bad name', 'v');
  expectOneLineError(
    await local(['import', 'ssm', '--path', '/plan/']),
    2,
    /invalid secret names.*ssm:\/plan\/bad name/,
  );
  s.ssm.put('/coll/a/b', 'v');
  s.ssm.put('/coll/a.b', 'v');
  expectOneLineError(
    await local(['import', 'ssm', '--path', '/coll/', '--recursive']),
    2,
    /a\.b ← ssm:\/coll\/a\.b and ssm:\/coll\/a\/b|a\.b ← ssm:\/coll\/a\/b and ssm:\/coll\/a\.b/,
  );
  // Nothing written, not even a store: a read finds none.
  expectOneLineError(await local(['list']), 1, /no embedded store at /);
  expectOneLineError(await local(['import', 'ssm', '--path', '/nothing-here/']), 1, /nothing to import/);
  expectOneLineError(await local(['import', 'vault']), 2, /unknown import source "vault"/);
  expectOneLineError(await local(['import', 'ssm']), 2, /needs --path/);
});

test('chamber: /<service>/<key> becomes <key>, with chamber:/svc/key#version sources', async () => {
  s.ssm.put('/billing/stripe_key', 'sk-1');
  s.ssm.put('/billing/stripe_key', 'sk-2');
  s.ssm.put('/billing/nested/ignored', 'n');
  const r = ok(await aws(['import', 'chamber', '--service', 'billing', '--history']));
  expect(r.imported).toEqual([{ source: 'chamber:/billing/stripe_key', name: 'stripe_key', serials: [1, 2] }]);
  const history = json<HistoryEntry[]>(await aws(['history', '--name', 'stripe_key']));
  expect(history.map((h) => h.source)).toEqual(['chamber:/billing/stripe_key#1', 'chamber:/billing/stripe_key#2']);
  // Into --local, the current version only.
  const cur = ok(await local(['import', 'chamber', '--service', 'billing']));
  expect(cur.imported).toEqual([{ source: 'chamber:/billing/stripe_key', name: 'stripe_key', serials: [1] }]);
  expect(await payload(local, 'stripe_key')).toBe('sk-2');
});

test('secretsmanager: AWSPREVIOUS then AWSCURRENT (never AWSPENDING), SecretBinary stays binary, --name maps the whole name', async () => {
  s.secretsManager.put('prod/app/stripe', 'old-stripe');
  s.secretsManager.put('prod/app/stripe', 'mid-stripe');
  const current = s.secretsManager.put('prod/app/stripe', 'cur-stripe');
  s.secretsManager.put('prod/app/stripe', 'pending-stripe', { pending: true });
  s.secretsManager.put('prod/app/cert', Buffer.from([0, 1, 2, 255]));
  s.secretsManager.put('prod/other', 'o');
  s.secretsManager.put('production-not-prefix', 'p');

  const r = ok(await aws(['import', 'secretsmanager', '--name-prefix', 'prod/app/', '--history']));
  const arn = s.secretsManager.arnOf('prod/app/stripe');
  expect(r.imported).toEqual([
    { source: `secretsmanager:${s.secretsManager.arnOf('prod/app/cert')}`, name: 'cert', serials: [1] },
    { source: `secretsmanager:${arn}`, name: 'stripe', serials: [1, 2] },
  ]);
  expect(await payload(aws, 'stripe', 1)).toBe('mid-stripe');
  expect(await payload(aws, 'stripe')).toBe('cur-stripe');
  const cert = json<{ payload: string; encoding: string }>(await aws(['fetch', '--name', 'cert']));
  expect(cert).toMatchObject({ payload: Buffer.from([0, 1, 2, 255]).toString('base64'), encoding: 'base64' });
  const history = json<HistoryEntry[]>(await aws(['history', '--name', 'stripe']));
  expect(history[1].source).toBe(`secretsmanager:${arn}#${current}`);

  const byName = ok(await local(['import', 'secretsmanager', '--name', 'prod/app/stripe', '--name', 'prod/other']));
  expect(byName.imported.map((i) => [i.name, i.serials])).toEqual([
    ['prod.app.stripe', [1]],
    ['prod.other', [1]],
  ]);
  expectOneLineError(
    await local(['import', 'secretsmanager', '--name', 'no/such']),
    1,
    /no Secrets Manager secret no\/such/,
  );
});

test('credstash: nodecredstash items and a hand-computed one; a tampered item fails alone with "integrity", nothing of it written', async () => {
  const table = 'credential-store';
  await ddb.send(
    new CreateTableCommand({
      TableName: table,
      KeySchema: [
        { AttributeName: 'name', KeyType: 'HASH' },
        { AttributeName: 'version', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'name', AttributeType: 'S' },
        { AttributeName: 'version', AttributeType: 'S' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  await waitForActiveTable(ddb, table);
  const key = s.kms.createKey({ description: 'credstash' });
  s.kms.createAlias('alias/credstash', key.KeyId as string);

  const cfg = { region: 'us-east-1', credentials: { accessKeyId: 'AKIDADMIN', secretAccessKey: 'x' } };
  const CredStash = loadCredStash({ ...cfg, endpoint: s.kms.endpoint });
  const cs = new CredStash({ dynamoOpts: { ...cfg, endpoint: s.dynamo.endpoint } });
  const context = { env: 'prod' };
  await cs.putSecret({ name: 'db.password', secret: 'cs-one', version: 1, context });
  await cs.putSecret({ name: 'db.password', secret: 'cs-two', version: 2, context });
  await cs.putSecret({ name: 'db.password', secret: 'cs-ten', version: 10, context });
  await cs.putSecret({ name: 'api/token', secret: 'tok', context });
  await cs.putSecret({ name: 'tampered', secret: 'evil', context });
  // Flip one byte of the tampered item's ciphertext: its HMAC no longer matches.
  const scanned = await ddb.send(new ScanCommand({ TableName: table }));
  const bad = (scanned.Items ?? []).find((i) => i.name.S === 'tampered');
  const contents = Buffer.from(bad?.contents.S as string, 'base64');
  contents[0] ^= 1;
  await ddb.send(
    new PutItemCommand({ TableName: table, Item: { ...bad, contents: { S: contents.toString('base64') } } }),
  );

  // Known answer, computed with openssl from credstash's rules: the 64-byte key 00..3f, AES-256-CTR
  // with the first 32 bytes from counter 0..01, HMAC-SHA256 with the last 32, hmac as a binary
  // attribute holding the hex text (as Python 3 credstash writes it).
  const rawKey = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
  const wrapped = await kms.send(
    new EncryptCommand({ KeyId: 'alias/credstash', Plaintext: rawKey, EncryptionContext: { env: 'prod' } }),
  );
  await ddb.send(
    new PutItemCommand({
      TableName: table,
      Item: {
        name: { S: 'known.answer' },
        version: { S: '0000000000000000001' },
        key: { S: Buffer.from(wrapped.CiphertextBlob as Uint8Array).toString('base64') },
        contents: { S: 'mzMZ2SSZ/ovVgf5DcuJFDm3OhqqR' },
        hmac: { B: Buffer.from('36fce1400518aa57b2ed760cc5ea8198efe5282055b000b33b6fe2ac4fb4c482', 'latin1') },
        digest: { S: 'SHA256' },
      },
    }),
  );

  const r = await aws(['import', 'credstash', '--context', 'env=prod', '--history', '--prefix', 'cs.']);
  expect(r.code).toBe(1);
  const sum = json<Summary>(r);
  expect(sum.failed).toEqual([
    {
      source: 'credstash:credential-store/tampered',
      name: 'cs.tampered',
      error: 'integrity',
      message: expect.stringMatching(/HMAC mismatch/),
    },
  ]);
  expect(sum.imported.map((i) => [i.name, i.serials])).toEqual([
    ['cs.api.token', [1]],
    ['cs.db.password', [1, 2, 3]],
    ['cs.known.answer', [1]],
  ]);
  expect(r.stdout + r.stderr).not.toMatch(/cs-one|cs-two|cs-ten|evil|tok"|s3cr3t/);
  expect(await latest(aws, ['cs.known.answer', 'cs.db.password'])).toEqual({
    'cs.known.answer': 'known answer: s3cr3t$',
    'cs.db.password': 'cs-ten',
  });
  expect(await payload(aws, 'cs.db.password', 1)).toBe('cs-one');
  expect(await itemCount('cs.tampered')).toBe(0);
  const history = json<HistoryEntry[]>(await aws(['history', '--name', 'cs.db.password']));
  expect(history.map((h) => h.source)).toEqual([
    'credstash:credential-store/db.password#0000000000000000001',
    'credstash:credential-store/db.password#0000000000000000002',
    'credstash:credential-store/db.password#0000000000000000010',
  ]);

  // Into --local without --history: the newest version of each; the tampered one fails alone there too.
  const cur = await local(['import', 'credstash', '--context', 'env=prod', '--prefix', 'cs.']);
  expect(cur.code).toBe(1);
  expect(json<Summary>(cur).failed.map((f) => [f.name, f.error])).toEqual([['cs.tampered', 'integrity']]);
  expect(json<Summary>(cur).imported.map((i) => [i.name, i.serials])).toEqual([
    ['cs.api.token', [1]],
    ['cs.db.password', [1]],
    ['cs.known.answer', [1]],
  ]);
  expect(await payload(local, 'cs.db.password')).toBe('cs-ten');
  expect(json<HistoryEntry[]>(await local(['history', '--name', 'cs.db.password']))[0].source).toBe(
    'credstash:credential-store/db.password#0000000000000000010',
  );

  // Without the context the keys do not decrypt: every secret fails, named, and nothing is written.
  const noCtx = await local(['import', 'credstash']);
  expect(noCtx.code).toBe(1);
  expect(json<Summary>(noCtx).imported).toEqual([]);
  expect(json<Summary>(noCtx).failed.map((f) => f.error)).toEqual(Array(4).fill('integrity'));
});

test('dotenv with quotes, export, comments, $ and multi-line values round-trips with export --format dotenv; json and yaml', async () => {
  const file = path.join(dir, 'app.env');
  fs.writeFileSync(
    file,
    [
      '# a comment',
      '',
      'export PLAIN=value # trailing comment',
      "SINGLE='it'\\''s $HOME'",
      'DOUBLE="line1\\nline2 \\"q\\" \\$NOT"',
      "MULTI='first",
      "second'",
      'DOLLAR=a$b',
      '',
    ].join('\n'),
  );
  const want = {
    PLAIN: 'value',
    SINGLE: "it's $HOME",
    DOUBLE: 'line1\nline2 "q" $NOT',
    MULTI: 'first\nsecond',
    DOLLAR: 'a$b',
  };
  const r = ok(await local(['import', 'dotenv', file]));
  expect(r.imported.map((i) => i.name)).toEqual(Object.keys(want));
  const exported = await local(['export', '--name', ...Object.keys(want), '--format', 'dotenv']);
  expect(exported.code).toBe(0);
  // Round trip: what export writes imports back to the same values, so a second import skips all.
  const back = path.join(dir, 'back.env');
  fs.writeFileSync(back, exported.stdout);
  const again = ok(await local(['import', 'dotenv', back]));
  expect([again.imported, again.skipped.length]).toEqual([[], 5]);
  expect(await latest(local, Object.keys(want))).toEqual(want);
  // The same file into AWS.
  expect(ok(await aws(['import', 'dotenv', file])).imported.map((i) => i.name)).toEqual(Object.keys(want));
  expect(await latest(aws, Object.keys(want))).toEqual(want);

  const viaStdin = ok(await local(['import', 'json', '-'], JSON.stringify({ PLAIN: 'changed', NEW: 'n' })));
  expect(viaStdin.imported.map((i) => [i.name, i.serials])).toEqual([
    ['PLAIN', [2]],
    ['NEW', [1]],
  ]);
  const yml = path.join(dir, 'a.yaml');
  fs.writeFileSync(yml, 'NEW: n\nYAML_ONE: "1"\n');
  expect(ok(await local(['import', 'yaml', yml])).imported.map((i) => i.name)).toEqual(['YAML_ONE']);
  expect(ok(await aws(['import', 'yaml', yml])).imported.map((i) => i.name)).toEqual(['NEW', 'YAML_ONE']);
  expect(ok(await aws(['import', 'json', '-'], '{"NEW":"n"}')).skipped).toHaveLength(1);
  fs.writeFileSync(yml, 'NUM: 1\n');
  expectOneLineError(await local(['import', 'yaml', yml]), 2, /NUM.*not a string/);
  fs.writeFileSync(file, "BROKEN='never closed\n");
  expectOneLineError(await local(['import', 'dotenv', file]), 2, /line 1: unterminated ' quote/);
});

test('kill -9 in the middle of an import, then a re-run: every source version written exactly once, in order', async () => {
  for (let i = 0; i < 40; i++) for (let v = 1; v <= 3; v++) s.ssm.put(`/kill/p${i}`, `p${i}-v${v}`);
  const args = [
    '--local',
    '--data-dir',
    dir,
    '--application-name',
    APP,
    'import',
    'ssm',
    '--path',
    '/kill/',
    '--history',
  ];
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...baseEnv(), ...s.env }, stdio: 'pipe' });
  await new Promise<void>((resolve, reject) => {
    let seen = 0;
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      seen += d.split('\n').filter((l) => l.startsWith('import ')).length;
      if (seen >= 5) {
        child.kill('SIGKILL');
        resolve();
      }
    });
    child.on('exit', () => reject(new Error('the import finished before it could be killed')));
  });
  await new Promise((r) => child.once('close', r));

  const r = ok(await local(['import', 'ssm', '--path', '/kill/', '--history']));
  expect(r.failed).toEqual([]);
  expect(r.imported.length + r.skipped.length).toBe(40);
  const sampled = Array.from({ length: 6 }, (_, k) => `p${k * 7}`);
  for (const name of sampled) {
    const history = json<HistoryEntry[]>(await local(['history', '--name', name]));
    expect(history.map((h) => [h.serial, h.source])).toEqual([1, 2, 3].map((v) => [v, `ssm:/kill/${name}#${v}`]));
  }
  expect(await latest(local, sampled)).toEqual(Object.fromEntries(sampled.map((n) => [n, `${n}-v3`])));
  const list = json<Array<{ name: string; latestSerial: number }>>(await local(['list']));
  expect(list.filter((n) => n.name.startsWith('p')).every((n) => n.latestSerial === 3)).toBe(true);
});
