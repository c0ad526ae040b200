/**
 * Configuration documents through the built CLI against the DynamoDB and KMS stand-ins: the
 * seed's example, read-secrets per path (a KMS condition on ecs-secrets:config), tamper, diff,
 * and an independent SOPS decoder (the sops-decoder npm package) opening what we stored.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { decrypt as sopsDecrypt } from 'sops-decoder';
import { json, runCli } from '../helpers/cli';
import { spawnDaemon } from '../helpers/daemon';
import { configAccessExamples } from '../../src/setup/policies';
import { keyPolicyPermissions } from '../standins/cloudformation';
import {
  ADMIN_ACCESS_KEY_ID,
  REGION,
  type StandIns,
  createAppResources,
  credentialsEnv,
  startStandIns,
} from '../standins';

const APP = 'cfgapp';
const SEED = '# team-a api\nplain: hello\nsecret_ecs_secret: my-secret\n';
let s: StandIns;
let dir: string;
let table: string;

beforeAll(async () => {
  s = await startStandIns();
  table = (await createAppResources(s.kms, s.dynamo.endpoint, APP)).tableName;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cfg-aws-'));
  fs.writeFileSync(path.join(dir, 'seed.yaml'), SEED);
});
afterAll(async () => {
  await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => s.kms.resetPermissions());

const cli = (args: string[], akid = ADMIN_ACCESS_KEY_ID, input?: string) =>
  runCli(['--application-name', APP, ...args], { env: { ...s.env, ...credentialsEnv(akid) }, input });

function docClient(): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(
    new DynamoDBClient({
      endpoint: s.dynamo.endpoint,
      region: REGION,
      credentials: { accessKeyId: ADMIN_ACCESS_KEY_ID, secretAccessKey: 'secret' },
    }),
  );
}

test('the seed example: pushed, built without privileges (no KMS call, ENC[] values), built with --show-secrets', async () => {
  const pushed = await cli(['config', 'push', '--path', 'team-a/api', '--file', path.join(dir, 'seed.yaml')]);
  expect(pushed.code).toBe(0);
  expect(json(pushed)).toEqual({ path: 'team-a/api', serial: 1 });

  s.kms.resetCounts();
  const plain = await cli(['config', 'build', '--path', 'team-a/api']);
  expect(plain.code).toBe(0);
  expect(s.kms.counts.total).toBe(0);
  expect(plain.stdout).toContain('plain: hello');
  expect(plain.stdout).toMatch(/secret_ecs_secret: ENC\[AES256_GCM,data:/);
  expect(plain.stdout).not.toContain('my-secret');
  expect(plain.stdout).not.toContain('sops:');

  const shown = await cli([
    'config',
    'build',
    '--path',
    'team-a/api',
    '--show-secrets',
    '--format',
    'json',
    '--strip-suffix',
  ]);
  expect(shown.code).toBe(0);
  expect(JSON.parse(shown.stdout)).toEqual({ plain: 'hello', secret: 'my-secret' });
  expect(s.kms.counts.Decrypt).toBe(1);

  // The item: Name config/PATH, the SOPS text in Document; the kms entry names the key ARN and the context.
  const item = (
    await docClient().send(new GetCommand({ TableName: table, Key: { Name: 'config/team-a/api', Serial: 1 } }))
  ).Item!;
  expect(item.Format).toBe(2);
  expect(item.Document).toMatch(/arn: arn:aws:kms:us-east-1:\d+:key\//);
  expect(item.Document).toContain('ecs-secrets:config: team-a/api');
  expect(item.Document).toContain('encrypted_suffix: _ecs_secret');
  expect(item.Document).not.toContain('my-secret');

  // Config paths are not secrets: the secret list stays clean.
  expect(json(await cli(['list']))).toEqual([]);
  expect(json(await cli(['config', 'list', '--prefix', 'team-a/']))).toEqual([{ path: 'team-a/api', latestSerial: 1 }]);
});

test('a principal whose KMS permission is conditioned on another path builds but is denied --show-secrets', async () => {
  s.kms.setPermissions('AKIDTEAMB', ['Decrypt', 'Encrypt', 'DescribeKey'], {
    contextLike: { 'ecs-secrets:config': 'team-b/*' },
  });
  const built = await cli(['config', 'build', '--path', 'team-a/api'], 'AKIDTEAMB');
  expect(built.code).toBe(0);
  const denied = await cli(['config', 'build', '--path', 'team-a/api', '--show-secrets'], 'AKIDTEAMB');
  expect(denied.code).toBe(1);
  expect(denied.stdout).toBe('');
  expect(denied.stderr).toMatch(/access denied/);
  expect(denied.stderr).not.toContain('my-secret');
  // Its own path works.
  expect((await cli(['config', 'push', '--path', 'team-b/api', '-'], 'AKIDTEAMB', 'x_ecs_secret: y\n')).code).toBe(0);
  expect((await cli(['config', 'build', '--path', 'team-b/api', '--show-secrets'], 'AKIDTEAMB')).stdout).toBe(
    // `y` is a boolean to YAML 1.1 readers: a decrypted secret string prints quoted.
    'x_ecs_secret: "y"\n',
  );
});

test("setup's example statement for read-secrets on team-a/ lets a role decrypt team-a's documents and no other path's", async () => {
  const example = configAccessExamples(APP, 'arn:aws:dynamodb:us-east-1:123456789012:table/x');
  // The key-policy statement, enforced by the KMS stand-in as this principal's only KMS permission.
  const p = keyPolicyPermissions(
    { Version: '2012-10-17', Statement: [example.readsConfigurationSecrets] } as never,
    example.role,
  );
  expect(p).toEqual({
    ops: ['Decrypt'],
    contextEquals: { 'ecs-secrets:application': APP },
    contextLike: { 'ecs-secrets:config': 'team-a/*' },
  });
  s.kms.setPermissions('AKIDTEAMA', p.ops, { contextEquals: p.contextEquals, contextLike: p.contextLike });
  expect(
    (await cli(['config', 'push', '--path', 'team-c/api', '-'], ADMIN_ACCESS_KEY_ID, 'k_ecs_secret: v\n')).code,
  ).toBe(0);
  expect((await cli(['config', 'build', '--path', 'team-a/api', '--show-secrets'], 'AKIDTEAMA')).stdout).toBe(SEED);
  const other = await cli(['config', 'build', '--path', 'team-c/api', '--show-secrets'], 'AKIDTEAMA');
  expect(other.code).toBe(1);
  expect(other.stderr).toMatch(/access denied/);
  expect(example.readsConfiguration.Statement[0].Condition).toEqual({
    'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['config/team-a/*'] },
  });
});

test('tampering with a stored encrypted value, plain value or MAC fails --show-secrets with exit 1 and no output', async () => {
  const text = (
    await docClient().send(new GetCommand({ TableName: table, Key: { Name: 'config/team-a/api', Serial: 1 } }))
  ).Item!.Document as string;
  const variants = [
    text.replace('plain: hello', 'plain: hellx'),
    text.replace(/(secret_ecs_secret: ENC\[AES256_GCM,data:)(.)/, (_m, a, c) => a + (c === 'A' ? 'B' : 'A')),
    text.replace(/(mac: ENC\[AES256_GCM,data:)(.)/, (_m, a, c) => a + (c === 'A' ? 'B' : 'A')),
  ];
  for (const [i, doc] of variants.entries()) {
    const serial = 100 + i;
    await docClient().send(
      new PutCommand({
        TableName: table,
        Item: { Name: 'config/team-a/api', Serial: serial, Document: doc, Active: true, Format: 2 },
      }),
    );
    const r = await cli(['config', 'build', '--path', 'team-a/api', '--serial', String(serial), '--show-secrets']);
    expect({ i, code: r.code, stdout: r.stdout, stderr: r.stderr }).toMatchObject({
      i,
      code: 1,
      stdout: '',
      stderr: expect.stringMatching(/integrity check failed/),
    });
  }
  // Out of the way of the later tests, which build the latest version: one by config revoke (kept
  // in the history, inactive), the others removed as they were put, by hand.
  for (const serial of [101, 102])
    await docClient().send(new DeleteCommand({ TableName: table, Key: { Name: 'config/team-a/api', Serial: serial } }));
  expect(json(await cli(['config', 'revoke', '--path', 'team-a/api', '--serial', '100']))).toEqual({
    path: 'team-a/api',
    serial: 100,
    active: false,
  });
  expect(
    json<Array<{ serial: number; active: boolean }>>(await cli(['config', 'history', '--path', 'team-a/api'])).map(
      (h) => [h.serial, h.active],
    ),
  ).toEqual([
    [1, true],
    [100, false],
  ]);
  // An item moved to another path: the data key's context names team-a/api.
  await docClient().send(
    new PutCommand({
      TableName: table,
      Item: { Name: 'config/team-a/moved', Serial: 1, Document: text, Active: true, Format: 2 },
    }),
  );
  const moved = await cli(['config', 'build', '--path', 'team-a/moved', '--show-secrets']);
  expect(moved.code).toBe(1);
  expect(moved.stdout).toBe('');
  expect(moved.stderr).toMatch(
    /integrity check failed: the document was encrypted for application "cfgapp" and path "team-a\/api", not application "cfgapp" and path "team-a\/moved"/,
  );
});

test('a document altered in the table in ways the SOPS MAC does not see is an integrity error (DocumentMac); one without the attribute is served with a warning', async () => {
  const plain = 'insecure: false\ntls_verify: true\nport: 443\ntoken_ecs_secret: t0p\n';
  const file = path.join(dir, 'structure.yaml');
  fs.writeFileSync(file, plain);
  expect((await cli(['config', 'push', '--path', 'team-s/api', '--file', file])).code).toBe(0);
  const item = (
    await docClient().send(new GetCommand({ TableName: table, Key: { Name: 'config/team-s/api', Serial: 1 } }))
  ).Item!;
  expect(item.DocumentMac).toMatch(/^[0-9a-f]{64}$/);
  const text = item.Document as string;
  // Kept in the item, never in the document (whose sops block stays as sops writes it).
  expect(text).not.toContain(item.DocumentMac);
  const variants: Array<[string, string]> = [
    ['plain keys swapped', text.replace('insecure: false\ntls_verify: true', 'tls_verify: false\ninsecure: true')],
    ['a null key added', text.replace('port: 443', 'port: 443\nverify_hostname: null')],
    ['a value wrapped in a list', text.replace('port: 443', 'port: [443]')],
  ];
  for (const [i, [what, doc]] of variants.entries()) {
    expect(doc).not.toBe(text);
    const serial = 10 + i;
    // The attacker copies the genuine MAC along: it cannot make one for the altered text.
    await docClient().send(
      new PutCommand({
        TableName: table,
        Item: { ...item, Serial: serial, Document: doc },
      }),
    );
    const r = await cli(['config', 'build', '--path', 'team-s/api', '--serial', String(serial), '--show-secrets']);
    expect({ what, code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
      what,
      code: 1,
      stdout: '',
      stderr: expect.stringMatching(/^ecs-secrets: integrity check failed: .*does not match its DocumentMac/),
    });
  }
  // Written before the attribute existed: served, with a warning naming the version.
  const { DocumentMac: _dropped, ...legacy } = item;
  await docClient().send(new PutCommand({ TableName: table, Item: { ...legacy, Serial: 20 } }));
  const old = await cli(['config', 'build', '--path', 'team-s/api', '--serial', '20', '--show-secrets']);
  expect(old.code).toBe(0);
  expect(old.stdout).toContain('t0p');
  expect(old.stderr).toMatch(/configuration team-s\/api serial 20 has no DocumentMac/);
  expect(old.stderr).not.toContain('t0p');
  // The genuine version builds cleanly.
  const genuine = await cli(['config', 'build', '--path', 'team-s/api', '--serial', '1', '--show-secrets']);
  expect([genuine.code, genuine.stderr]).toEqual([0, '']);
});

test('diff: added, removed and changed key paths, exit 3; exit 0 when equal; never a value', async () => {
  const same = await cli(['config', 'diff', '--path', 'team-a/api', '--file', path.join(dir, 'seed.yaml')]);
  expect(same.code).toBe(0);
  expect(json(same)).toMatchObject({ added: [], removed: [], changed: [], notCompared: [] });
  fs.writeFileSync(path.join(dir, 'drift.yaml'), 'secret_ecs_secret: other-secret\nnew_key: 1\n');
  const drift = await cli(['config', 'diff', '--path', 'team-a/api', '--file', path.join(dir, 'drift.yaml')]);
  expect(drift.code).toBe(3);
  expect(json(drift)).toMatchObject({ added: ['new_key'], removed: ['plain'], changed: ['secret_ecs_secret'] });
  expect(drift.stdout + drift.stderr).not.toMatch(/other-secret|my-secret|hello/);
  // Without read-secrets the secret field is "not compared", not drift.
  s.kms.setPermissions('AKIDNOKMS', []);
  const blind = await cli(
    ['config', 'diff', '--path', 'team-a/api', '--file', path.join(dir, 'seed.yaml')],
    'AKIDNOKMS',
  );
  expect(blind.code).toBe(0);
  expect(json(blind)).toMatchObject({ changed: [], notCompared: ['secret_ecs_secret'] });
});

test('a file encrypted for another path or application is refused at push with a clear error; no subcommand is a usage error', async () => {
  const forB = await cli(['config', 'encrypt', '-', '--path', 'team-b/api'], ADMIN_ACCESS_KEY_ID, SEED);
  expect(forB.code).toBe(0);
  expect(forB.stdout).toContain('ecs-secrets:config: team-b/api');
  const r = await cli(['config', 'push', '--path', 'team-a/api', '-'], ADMIN_ACCESS_KEY_ID, forB.stdout);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(
    /encrypted for application "cfgapp" and path "team-b\/api", not application "cfgapp" and path "team-a\/api"/,
  );
  const otherApp = forB.stdout
    .replace('ecs-secrets:application: cfgapp', 'ecs-secrets:application: otherapp')
    .replace('ecs-secrets:config: team-b/api', 'ecs-secrets:config: team-a/api');
  const r2 = await cli(['config', 'push', '--path', 'team-a/api', '-'], ADMIN_ACCESS_KEY_ID, otherApp);
  expect(r2.code).toBe(2);
  expect(r2.stderr).toMatch(/encrypted for application "otherapp"/);
  const none = await cli(['config']);
  expect(none.code).toBe(2);
  expect(none.stderr).toMatch(/name a config subcommand/);
});

test('bad input: path rule, malformed file, document over the limit', async () => {
  const bad = await cli(['config', 'push', '--path', '../etc', '-'], ADMIN_ACCESS_KEY_ID, 'a: 1\n');
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/invalid configuration path/);
  const malformed = await cli(['config', 'push', '--path', 'x', '-'], ADMIN_ACCESS_KEY_ID, 'a: [my-secret\n');
  expect(malformed.code).toBe(2);
  expect(malformed.stderr).toMatch(/malformed YAML document at line/);
  expect(malformed.stderr).not.toContain('my-secret');
  const big = `big_ecs_secret: ${'x'.repeat(200 * 1024)}\nother_ecs_secret: ${'y'.repeat(200 * 1024)}\n`;
  const tooBig = await cli(['config', 'push', '--path', 'big', '-'], ADMIN_ACCESS_KEY_ID, big);
  expect(tooBig.code).toBe(2);
  expect(tooBig.stderr).toMatch(/the encrypted document is \d+ bytes; the limit is 262144 bytes/);
});

test('an independent SOPS decoder (npm sops-decoder) opens a JSON document ecs-secrets stored', async () => {
  const pushed = await cli(
    ['config', 'push', '--path', 'team-a/json', '-'],
    ADMIN_ACCESS_KEY_ID,
    '{"plain": "p", "token_ecs_secret": "t0k3n", "n_ecs_secret": 42, "nested": {"2": true}}',
  );
  expect(pushed.code).toBe(0);
  const text = (
    await docClient().send(new GetCommand({ TableName: table, Key: { Name: 'config/team-a/json', Serial: 1 } }))
  ).Item!.Document as string;
  const saved = { ...process.env };
  Object.assign(process.env, s.env);
  try {
    expect(await sopsDecrypt(JSON.parse(text))).toEqual({
      plain: 'p',
      token_ecs_secret: 't0k3n',
      n_ecs_secret: 42,
      nested: { 2: true },
    });
    // And it notices a changed plain value (its own MAC check).
    await expect(sopsDecrypt(JSON.parse(text.replace('"p"', '"q"')))).rejects.toThrow(/mismatch/i);
  } finally {
    process.env = saved;
  }
});

test('daemon: GET /config/*path is cached like secrets: one backend read for concurrent misses, no-cache bypasses, stale during an outage', async () => {
  expect(
    (
      await cli(
        ['config', 'push', '--path', 'team-c/cached', '-'],
        ADMIN_ACCESS_KEY_ID,
        'plain: p\nkey_ecs_secret: k1\n',
      )
    ).code,
  ).toBe(0);
  const d = await spawnDaemon(['--application-name', APP, '--cache-ttl', '1', '--stale-if-error', '60'], {
    env: s.env,
    waitHealthy: true,
  });
  const get = async (headers: Record<string, string> = {}) => {
    const r = await fetch(`${d.url}/v1/config/team-c/cached`, { headers });
    return {
      status: r.status,
      cache: r.headers.get('x-ecs-secrets-cache'),
      warning: r.headers.get('warning'),
      body: await r.text(),
    };
  };
  try {
    s.dynamo.resetCounts();
    s.kms.resetCounts();
    await s.dynamo.setFault({ delayMs: 200 }); // keep the first read in flight while the others arrive
    let cold;
    try {
      cold = await Promise.all(Array.from({ length: 10 }, () => get()));
    } finally {
      await s.dynamo.setFault(null);
    }
    expect(cold.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(JSON.parse(cold[0].body)).toEqual({ plain: 'p', key_ecs_secret: 'k1' });
    expect({ query: s.dynamo.counts.Query, decrypt: s.kms.counts.Decrypt }).toEqual({ query: 1, decrypt: 1 });
    expect((await get()).cache).toBe('hit');

    s.dynamo.resetCounts();
    const bypass = await get({ 'cache-control': 'no-cache' });
    expect([bypass.status, bypass.cache, s.dynamo.counts.Query]).toEqual([200, 'bypass', 1]);

    await s.dynamo.stop();
    await new Promise((r) => setTimeout(r, 1100)); // past the TTL
    const stale = await get();
    expect([stale.status, stale.cache, stale.body]).toEqual([200, 'stale', cold[0].body]);
    expect(stale.warning).toMatch(/^110 /);
    await d.waitForLog(/serving a stale cached configuration/);
    const metrics = await (await fetch(`${d.url}/metrics`)).text();
    expect(metrics).toMatch(/ecs_secrets_cache_events_total\{outcome="stale"\} [1-9]/);
  } finally {
    if (!s.dynamo.listening) await s.dynamo.start();
    await d.stop();
  }
});
