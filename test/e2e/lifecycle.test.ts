/**
 * Lifecycle end to end, on both backends (design.md "Lifecycle"): who wrote and revoked each
 * version, labels that pin a version (and never fall back to another), reads through NAME@LABEL
 * and NAME@previous, rollback, generated values and rotation with a hook. The built CLI and
 * daemon, spawned as users run them, against the stand-ins (AWS) or an embedded data dir (--local).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { GenerateDataKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { seal } from '../../src/core/crypto';
import { type CliResult, json, runCli } from '../helpers/cli';
import { type SpawnedDaemon, spawnDaemon } from '../helpers/daemon';
import { type StandIns, createAppResources, credentialsEnv, principalArn, startStandIns } from '../standins';

const APP = 'life';
let s: StandIns;
const dirs: string[] = [];

beforeAll(async () => {
  s = await startStandIns();
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
}, 60_000);
afterAll(async () => {
  await s?.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

interface Backend {
  cli(args: string[], opts?: { env?: Record<string, string>; input?: string }): Promise<CliResult>;
  daemonArgs: string[];
  env(): Record<string, string>;
  who: string;
}

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-lifecycle-'));
  dirs.push(d);
  return d;
}

const backends: Array<[string, () => Backend]> = [
  [
    'aws',
    () => ({
      cli: (args, opts = {}) =>
        runCli(['--application-name', APP, ...args], { env: { ...s.env, ...opts.env }, input: opts.input }),
      daemonArgs: ['--application-name', APP],
      env: () => s.env,
      who: principalArn('AKIDADMIN'),
    }),
  ],
  [
    'local',
    () => {
      const dir = path.join(tmpDir(), 'data');
      const flags = ['--local', '--data-dir', dir, '--application-name', APP];
      return {
        cli: (args, opts = {}) => runCli([...flags, ...args], { env: opts.env, input: opts.input }),
        daemonArgs: flags,
        env: () => ({}),
        who: `local:${os.userInfo().username}`,
      };
    },
  ],
];

function expectFailure(r: CliResult, code: number, pattern: RegExp): void {
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code, stdout: '' });
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

/** Processes racing to move one label: each of the four versions is the target of several. */
const MOVERS = 10;

/** A unique secret name per test, so the backends' tables can be shared by the tests. */
let counter = 0;
const fresh = (base: string) => `${base}-${++counter}`;

describe.each(backends)('%s backend', (_label, make) => {
  let b: Backend;
  beforeAll(() => {
    b = make();
  });

  test('who, labels, pinned reads, revoke of a labelled version, rollback, history', async () => {
    const n = fresh('db');
    for (const p of ['one', 'two', 'three'])
      expect((await b.cli(['create', '--name', n, '--payload', p])).code).toBe(0);
    expect(json(await b.cli(['label', 'set', '--name', n, '--label', 'prod', '--serial', '2']))).toEqual({
      name: n,
      label: 'prod',
      serial: 2,
    });
    expect(json(await b.cli(['fetch', '--name', n, '--label', 'prod']))).toEqual({
      name: n,
      serial: 2,
      payload: 'two',
      active: true,
    });
    expect(json<{ serial: number }>(await b.cli(['fetch', '--name', n, '--label', 'previous'])).serial).toBe(2);
    // Latest is still the newest active version: labels change nothing about it.
    expect(json<{ serial: number }>(await b.cli(['fetch', '--name', n])).serial).toBe(3);
    expectFailure(await b.cli(['fetch', '--name', n, '--label', 'canary']), 1, /has no label canary/);

    // Revoking the labelled version works at once and names the label left on it ...
    expect(json(await b.cli(['revoke', '--name', n, '--serial', '2']))).toEqual({
      name: n,
      serial: 2,
      active: false,
      labels: ['prod'],
    });
    // ... which then fails, naming the revoked serial, never falling back to another version.
    expectFailure(await b.cli(['fetch', '--name', n, '--label', 'prod']), 1, /points at serial 2, which is revoked/);
    expectFailure(await b.cli(['label', 'set', '--name', n, '--label', 'prod', '--serial', '2']), 2, /revoked/);
    // previous skips the revoked version.
    expect(json<{ serial: number }>(await b.cli(['fetch', '--name', n, '--label', 'previous'])).serial).toBe(1);

    // Rollback to previous: a NEW version with serial 1's payload.
    expect(json(await b.cli(['rollback', '--name', n]))).toEqual({ name: n, serial: 4, restoredFrom: 1 });
    expect(json(await b.cli(['fetch', '--name', n]))).toMatchObject({ serial: 4, payload: 'one' });
    expect(json(await b.cli(['rollback', '--name', n, '--to', '3']))).toEqual({ name: n, serial: 5, restoredFrom: 3 });
    expectFailure(await b.cli(['rollback', '--name', n, '--to', '2']), 2, /revoked/);

    expect(json(await b.cli(['label', 'set', '--name', n, '--label', 'prod', '--serial', '5']))).toMatchObject({
      from: 2,
    });
    const history = json<Array<Record<string, unknown>>>(await b.cli(['history', '--name', n]));
    expect(history.map((h) => h.serial)).toEqual([1, 2, 3, 4, 5]);
    for (const h of history) expect(h.createdBy).toBe(b.who);
    expect(history[1]).toMatchObject({ active: false, revokedBy: b.who, revokedAt: expect.any(String) });
    expect(history[3].restoredFrom).toBe(1);
    expect(history[4]).toMatchObject({ restoredFrom: 3, labels: ['prod'] });
    expect(history[0]).not.toHaveProperty('labels');
    expect(history[0]).not.toHaveProperty('revokedBy');

    const listed = json<{ labels: Record<string, number>; events: Array<Record<string, unknown>> }>(
      await b.cli(['label', 'list', '--name', n]),
    );
    expect(listed.labels).toEqual({ prod: 5 });
    expect(listed.events.map((e) => [e.from, e.to, e.by])).toEqual([
      [undefined, 2, b.who],
      [2, 5, b.who],
    ]);
    expect(Object.keys(listed.events[1])).toEqual(['label', 'from', 'to', 'at', 'by']);
    expect(json(await b.cli(['label', 'rm', '--name', n, '--label', 'prod']))).toEqual({
      name: n,
      label: 'prod',
      from: 5,
    });
    expectFailure(await b.cli(['label', 'rm', '--name', n, '--label', 'prod']), 1, /has no label prod/);

    // The label item (Serial 0) is no version: list still shows the newest serial only.
    const all = json<Array<{ name: string; latestSerial: number }>>(await b.cli(['list']));
    expect(all.find((x) => x.name === n)).toEqual({ name: n, latestSerial: 5 });
  }, 180_000);

  test(`${MOVERS} processes moving one label at once lose no move and end on one of the targets`, async () => {
    const n = fresh('race');
    for (let i = 1; i <= 4; i++) await b.cli(['create', '--name', n, '--payload', `v${i}`]);
    const targets = Array.from({ length: MOVERS }, (_, i) => (i % 4) + 1);
    const results = await Promise.all(
      targets.map((t) => b.cli(['label', 'set', '--name', n, '--label', 'prod', '--serial', String(t)])),
    );
    expect(results.filter((r) => r.code !== 0).map((r) => r.stderr)).toEqual([]);
    const listed = json<{ labels: Record<string, number>; events: Array<{ from?: number; to: number }> }>(
      await b.cli(['label', 'list', '--name', n]),
    );
    expect(listed.events).toHaveLength(MOVERS);
    expect(targets).toContain(listed.labels.prod);
    // The moves form one chain: each starts where the one before it ended.
    for (let i = 1; i < MOVERS; i++) expect(listed.events[i].from).toBe(listed.events[i - 1].to);
    expect(listed.events[MOVERS - 1].to).toBe(listed.labels.prod);
  }, 240_000);

  test('label moves racing a revoke never leave a readable label on the revoked version', async () => {
    const n = fresh('revrace');
    for (let i = 1; i <= 3; i++) await b.cli(['create', '--name', n, '--payload', `v${i}`]);
    const labels = ['a', 'b', 'c', 'd', 'e', 'f'];
    await Promise.all([
      ...labels.map((l) => b.cli(['label', 'set', '--name', n, '--label', l, '--serial', '2'])),
      b.cli(['revoke', '--name', n, '--serial', '2']),
    ]);
    const { labels: now } = json<{ labels: Record<string, number> }>(await b.cli(['label', 'list', '--name', n]));
    for (const l of labels) {
      const r = await b.cli(['fetch', '--name', n, '--label', l]);
      if (now[l] === undefined) expectFailure(r, 1, new RegExp(`has no label ${l}`));
      else expectFailure(r, 1, /serial 2, which is revoked/);
    }
  }, 180_000);

  test('rotate: the hook gets the values on stdin only; a failing hook stores nothing and its code is ours', async () => {
    const n = fresh('rot');
    await b.cli(['create', '--name', n, '--payload', 'old-value']);
    await b.cli(['label', 'set', '--name', n, '--label', 'prod', '--serial', '1']);
    const dir = tmpDir();
    const hook = path.join(dir, 'hook.sh');
    fs.writeFileSync(
      hook,
      `#!/bin/sh\ncat > "${dir}/stdin.json"\necho "$0 $*" > "${dir}/argv"\nenv > "${dir}/env"\nexit "\${HOOK_EXIT:-0}"\n`,
      { mode: 0o755 },
    );
    const ok = await b.cli([
      'rotate',
      '--name',
      n,
      '--generate',
      '--length',
      '40',
      '--move-label',
      'prod',
      '--',
      hook,
      'x',
    ]);
    expect(ok.code).toBe(0);
    expect(json(ok)).toEqual({ name: n, serial: 2, labels: ['prod'] });
    const input = JSON.parse(fs.readFileSync(path.join(dir, 'stdin.json'), 'utf8'));
    expect(input).toEqual({
      name: n,
      serial: 2,
      payload: expect.stringMatching(/^[A-Za-z0-9]{40}$/),
      previousPayload: 'old-value',
    });
    expect(`${ok.stdout}${ok.stderr}`).not.toContain(input.payload);
    for (const f of ['argv', 'env']) {
      const text = fs.readFileSync(path.join(dir, f), 'utf8');
      expect(text).not.toContain(input.payload);
      expect(text).not.toContain('old-value');
    }
    expect(json(await b.cli(['fetch', '--name', n, '--label', 'prod']))).toMatchObject({
      serial: 2,
      payload: input.payload,
    });

    const bad = await b.cli(['rotate', '--name', n, '--generate', '--move-label', 'prod', '--', hook], {
      env: { HOOK_EXIT: '7' },
    });
    expect({ code: bad.code, stdout: bad.stdout }).toEqual({ code: 7, stdout: '' });
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'stdin.json'), 'utf8'))).toMatchObject({
      serial: 3,
      previousPayload: input.payload,
    });
    expect(json<unknown[]>(await b.cli(['history', '--name', n]))).toHaveLength(2);
    expect(json(await b.cli(['label', 'list', '--name', n]))).toMatchObject({ labels: { prod: 2 } });
  }, 180_000);

  test('create --generate: never printed, per charset, different each time', async () => {
    const n = fresh('gen');
    const rules = {
      hex: /^[0-9a-f]{64}$/,
      base64url: /^[A-Za-z0-9_-]{64}$/,
      printable: /^[\x21-\x7e]{64}$/,
      alnum: /^[A-Za-z0-9]{64}$/,
      default: /^[A-Za-z0-9]{32}$/,
    };
    // One name per charset, all read back by one export: what is checked is each stored value.
    const printed: string[] = [];
    for (const charset of Object.keys(rules)) {
      const flags = charset === 'default' ? [] : ['--length', '64', '--charset', charset];
      const r = await b.cli(['create', '--name', `${n}.${charset}`, '--generate', ...flags]);
      expect(json(r)).toEqual({ name: `${n}.${charset}`, serial: 1 });
      printed.push(r.stdout + r.stderr);
    }
    const values = json<Record<string, string>>(
      await b.cli(['export', ...Object.keys(rules).flatMap((c) => ['--name', `${c.toUpperCase()}=${n}.${c}`])]),
    );
    for (const [charset, rule] of Object.entries(rules)) {
      const value = values[charset.toUpperCase()];
      expect([charset, value]).toEqual([charset, expect.stringMatching(rule)]);
      for (const out of printed) expect(out).not.toContain(value);
    }
    expect(new Set(Object.values(values)).size).toBe(5);
  }, 180_000);

  test('daemon: ?label= on both prefixes, 404 for unknown or revoked labels; unlabelled answers unchanged', async () => {
    const n = fresh('web');
    await b.cli(['create', '--name', n, '--payload', 'p1']);
    await b.cli(['create', '--name', n, '--payload', 'p2']);
    await b.cli(['label', 'set', '--name', n, '--label', 'prod', '--serial', '1']);
    const d: SpawnedDaemon = await spawnDaemon(b.daemonArgs, { env: b.env(), waitHealthy: true });
    try {
      const get = async (p: string) => {
        const r = await fetch(`${d.url}${p}`);
        return { status: r.status, text: await r.text() };
      };
      // Names without labels answer exactly as before, byte for byte.
      expect(await get(`/latest/secrets/${n}`)).toEqual({
        status: 200,
        text: `{"name":"${n}","serial":2,"payload":"p2","active":true}`,
      });
      for (const prefix of ['/latest', '/v1']) {
        expect(await get(`${prefix}/secrets/${n}?label=prod`)).toEqual({
          status: 200,
          text: `{"name":"${n}","serial":1,"payload":"p1","active":true}`,
        });
        expect((await get(`${prefix}/secrets/${n}?label=previous`)).text).toContain('"serial":1');
        expect(await get(`${prefix}/secrets/${n}?label=nope`)).toEqual({
          status: 404,
          text: `{"error":"secret ${n} has no label nope"}`,
        });
        expect((await get(`${prefix}/secrets/${n}?label=BAD`)).status).toBe(400);
      }
      // A revoke through the daemon: the cached pinned read is dropped and the label now 404s.
      const revoked = await fetch(`${d.url}/v1/revoke/${n}/1`, { method: 'POST' });
      expect(await revoked.json()).toEqual({ name: n, serial: 1, active: false, labels: ['prod'] });
      const after = await get(`/v1/secrets/${n}?label=prod`);
      expect(after.status).toBe(404);
      expect(after.text).toMatch(/serial 1, which is revoked/);
      expect((await get(`/v1/secrets/${n}`)).text).toContain('"serial":2');
      // A write through the daemon records the daemon's principal.
      expect(
        (
          await fetch(`${d.url}/v1/secrets/${n}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: '{"payload":"p3"}',
          })
        ).status,
      ).toBe(201);
    } finally {
      await d.stop();
    }
    const history = json<Array<{ createdBy?: string; revokedBy?: string }>>(await b.cli(['history', '--name', n]));
    expect(history[0].revokedBy).toBe(b.who);
    expect(history[2].createdBy).toBe(b.who);
    // export and exec take NAME@LABEL and NAME@previous too.
    const exported = await b.cli(['export', '--name', `PINNED=${n}@previous`, '--name', n]);
    expect(json(exported)).toEqual({ PINNED: 'p2', [n.toUpperCase().replace(/-/g, '_')]: 'p3' });
  }, 180_000);

  test('daemon --prefetch and --render take NAME@LABEL: the pinned version, not the latest', async () => {
    const n = fresh('pin');
    await b.cli(['create', '--name', n, '--payload', 'pinned']);
    await b.cli(['create', '--name', n, '--payload', 'newest']);
    await b.cli(['label', 'set', '--name', n, '--label', 'prod', '--serial', '1']);
    const file = path.join(tmpDir(), 'value');
    const d = await spawnDaemon(
      [...b.daemonArgs, '--read-only', '--prefetch', `${n}@previous`, '--render', `${file}=${n}@prod`],
      { env: b.env(), waitHealthy: true },
    );
    try {
      expect(fs.readFileSync(file, 'utf8')).toBe('pinned');
      const r = await fetch(`${d.url}/v1/secrets/${n}?label=previous`);
      expect(r.headers.get('x-ecs-secrets-cache')).toBe('hit');
      expect(await r.json()).toMatchObject({ serial: 1, payload: 'pinned' });
    } finally {
      await d.stop();
    }
  }, 120_000);
});

/**
 * Usage errors are found from the command line alone, before any backend is opened, so once is
 * enough: against a data dir that does not exist, which must still not exist afterwards.
 */
test('usage errors before any store is opened: reserved and invalid labels, rotate without a value, bad --length and --charset', async () => {
  const dir = path.join(tmpDir(), 'never-created');
  const cli = (args: string[]) => runCli(['--local', '--data-dir', dir, '--application-name', APP, ...args]);
  expectFailure(await cli(['label', 'set', '--name', 'x', '--label', 'latest', '--serial', '1']), 2, /reserved/);
  expectFailure(await cli(['label', 'set', '--name', 'x', '--label', 'Prod', '--serial', '1']), 2, /invalid label/);
  expectFailure(await cli(['rotate', '--name', 'x', '--', '/bin/true']), 2, /--generate or --payload-location/);
  // Just below and above the range, not a number, and a value that looks like a flag.
  for (const length of ['7', '4097', 'x', '-1'])
    expectFailure(await cli(['create', '--name', 'x', '--generate', '--length', length]), 2, /invalid --length/);
  expectFailure(await cli(['create', '--name', 'x', '--generate', '--charset', 'emoji']), 2, /invalid --charset/);
  expect(fs.existsSync(dir)).toBe(false);
}, 120_000);

describe('aws only', () => {
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runCli(['--application-name', APP, ...args], { env: { ...s.env, ...env } });

  test('two writers show two ARNs', async () => {
    const n = fresh('two');
    expect((await cli(['create', '--name', n, '--payload', 'a'], credentialsEnv('AKIDALICE'))).code).toBe(0);
    expect((await cli(['create', '--name', n, '--payload', 'b'], credentialsEnv('AKIDBOB'))).code).toBe(0);
    expect((await cli(['revoke', '--name', n, '--serial', '1'], credentialsEnv('AKIDBOB'))).code).toBe(0);
    const history = json<Array<{ createdBy: string; revokedBy?: string }>>(await cli(['history', '--name', n]));
    expect(history.map((h) => h.createdBy)).toEqual([principalArn('AKIDALICE'), principalArn('AKIDBOB')]);
    expect(history[0].revokedBy).toBe(principalArn('AKIDBOB'));
  }, 60_000);

  test("the original's records read, list and show history exactly as before", async () => {
    const cfg = { region: 'us-east-1', credentials: { accessKeyId: 'AKIDADMIN', secretAccessKey: 'x' } };
    const ddb = new DynamoDBClient({ ...cfg, endpoint: s.dynamo.endpoint });
    const kms = new KMSClient({ ...cfg, endpoint: s.kms.endpoint });
    try {
      const dk = await kms.send(
        new GenerateDataKeyCommand({ KeyId: `alias/ECSSecretsMaskerKey-${APP}`, KeySpec: 'AES_256' }),
      );
      for (const [serial, active] of [
        [1, true],
        [2, false],
      ] as const)
        await ddb.send(
          new PutItemCommand({
            TableName: `ECS-Secrets-${APP}-Secrets`,
            Item: {
              Name: { S: 'go.legacy' },
              Serial: { N: String(serial) },
              EncryptedData: { S: seal(Buffer.from(dk.Plaintext!), Buffer.from(`go-${serial}`), undefined) },
              EncryptedDataKey: { S: Buffer.from(dk.CiphertextBlob!).toString('base64') },
              Active: { BOOL: active },
            },
          }),
        );
    } finally {
      ddb.destroy();
      kms.destroy();
    }
    expect((await cli(['fetch', '--name', 'go.legacy'])).stdout).toBe(
      '{"name":"go.legacy","serial":1,"payload":"go-1","active":true}\n',
    );
    expect((await cli(['history', '--name', 'go.legacy'])).stdout).toBe(
      '[{"serial":1,"active":true,"createdAt":null},{"serial":2,"active":false,"createdAt":null}]\n',
    );
    expect(json<Array<{ name: string }>>(await cli(['list'])).filter((x) => x.name === 'go.legacy')).toEqual([
      { name: 'go.legacy', latestSerial: 2 },
    ]);
    expect((await cli(['fetch', '--name', 'go.legacy', '--label', 'previous'])).code).toBe(1);
  }, 60_000);
});
