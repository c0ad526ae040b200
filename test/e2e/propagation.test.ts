/**
 * Change propagation (design.md "Change propagation"): two daemons and the CLI on one table. Every
 * kind of change made by the CLI (a version, a label move, a rollback, a revoke, a configuration
 * push) is served by both daemons within the watch interval, with no TTL expiring; long-polls
 * answer on the change or with 304; 500 waiting readers cost one backend read; 10 writers in
 * separate processes advance the change record by exactly 10. Waits are bounded by the interval
 * plus a generous margin (a busy machine), never measured.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
import { openBackend } from '../../src/backends/open-backend';
import { CHANGES_NAME, type ChangeLog, parseChangeItem } from '../../src/core/changes';
import { CLI, type CliResult, baseEnv, json, runCli } from '../helpers/cli';
import { type SpawnedDaemon, spawnDaemon } from '../helpers/daemon';
import { until } from '../helpers/wait';
import { adminDynamo, request } from '../reliability/support';
import { type StandIns, createAppResources, startStandIns } from '../standins';

const APP = 'propagate';
const TABLE = `ECS-Secrets-${APP}-Secrets`;
const INTERVAL_S = 1;
/** The interval, plus one read, plus room for a loaded machine with two daemons and the CLI running. */
const DEADLINE_MS = INTERVAL_S * 1000 + 20_000;
let s: StandIns;
const daemons: SpawnedDaemon[] = [];
let d1: SpawnedDaemon;
let d2: SpawnedDaemon;

const cli = (args: string[], input?: string) => runCli(['--application-name', APP, ...args], { env: s.env, input });
const read = async (d: SpawnedDaemon, p: string) => request(d.port, { path: p });
const serialAt = async (d: SpawnedDaemon, p: string) => {
  const r = await read(d, p);
  return r.status === 200 ? (r.json().serial as number) : r.status;
};
async function bothServe(p: string, serial: number): Promise<void> {
  for (const d of [d1, d2])
    await until(`${p} at serial ${serial}`, async () => (await serialAt(d, p)) === serial, DEADLINE_MS);
}
/** The change record as a daemon reads it, fetched with the admin client. */
async function changeRecord(): Promise<ChangeLog> {
  const ddb = adminDynamo(s.dynamo.endpoint);
  try {
    const out = await ddb.send(
      new GetItemCommand({
        TableName: TABLE,
        Key: { Name: { S: CHANGES_NAME }, Serial: { N: '0' } },
        ConsistentRead: true,
      }),
    );
    return parseChangeItem(out.Item && unmarshall(out.Item));
  } finally {
    ddb.destroy();
  }
}

beforeAll(async () => {
  s = await startStandIns();
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
  const args = ['--application-name', APP, '--watch-interval', String(INTERVAL_S)];
  d1 = await spawnDaemon(args, { env: s.env, waitHealthy: true });
  daemons.push(d1);
  d2 = await spawnDaemon(args, { env: s.env, waitHealthy: true });
  daemons.push(d2);
}, 60_000);
afterAll(async () => {
  for (const d of daemons) await d.stop();
  await s?.close();
});

test('versions, label moves, rollback, revoke and configuration pushes by the CLI reach both daemons within the interval', async () => {
  expect((await cli(['create', '--name', 'db', '--payload', 'one'])).code).toBe(0);
  await bothServe('/latest/secrets/db', 1);
  // Cached from now on (600 s TTL): only the change record can make them see what follows. (The
  // creation's own change may still drop the entry once, when a watcher reads the record after
  // the first fill: on a busy machine that read can come late, so wait for a hit, not assume one.)
  await until(
    'db cached by the first daemon',
    async () => (await read(d1, '/latest/secrets/db')).headers['x-ecs-secrets-cache'] === 'hit',
    DEADLINE_MS,
  );

  expect((await cli(['create', '--name', 'db', '--payload', 'two'])).code).toBe(0);
  await bothServe('/latest/secrets/db', 2);

  expect((await cli(['label', 'set', '--name', 'db', '--label', 'prod', '--serial', '1'])).code).toBe(0);
  await bothServe('/latest/secrets/db?label=prod', 1);
  expect((await cli(['label', 'set', '--name', 'db', '--label', 'prod', '--serial', '2'])).code).toBe(0);
  await bothServe('/latest/secrets/db?label=prod', 2);

  expect(json(await cli(['rollback', '--name', 'db', '--to', '1']))).toMatchObject({ serial: 3, restoredFrom: 1 });
  await bothServe('/v1/secrets/db', 3);
  expect((await read(d2, '/v1/secrets/db')).json().payload).toBe('one');

  expect((await cli(['revoke', '--name', 'db', '--serial', '3'])).code).toBe(0);
  await bothServe('/latest/secrets/db', 2);
  for (const d of [d1, d2]) expect((await read(d, '/latest/secrets/db/3')).json().active).toBe(false);

  expect((await cli(['config', 'push', '--path', 'team/app', '-'], 'level: 1\n')).code).toBe(0);
  for (const d of [d1, d2])
    await until(
      'config v1',
      async () => /"level": ?1\b/.test((await read(d, '/latest/config/team/app')).text),
      DEADLINE_MS,
    );
  expect((await cli(['config', 'push', '--path', 'team/app', '-'], 'level: 2\n')).code).toBe(0);
  for (const d of [d1, d2])
    await until(
      'config v2',
      async () => /"level": ?2\b/.test((await read(d, '/latest/config/team/app')).text),
      DEADLINE_MS,
    );

  const record = await changeRecord();
  const kinds = record.changes.map((c) => `${c.kind}:${c.name}`);
  expect(kinds).toEqual(expect.arrayContaining(['version:db', 'label:db', 'revoke:db', 'config:config/team/app']));
  // Names and kinds only: never a value.
  expect(JSON.stringify(record.changes.map(({ id, ...c }) => c))).not.toMatch(/one|two|level/);
  const metrics = (await read(d1, '/metrics')).text;
  expect(metrics).toMatch(/ecs_secrets_change_record_reads_total\{result="ok"\} [1-9]/);
  expect(metrics).toMatch(/ecs_secrets_invalidations_total\{kind="revoke"\} [1-9]/);
  expect(metrics).toMatch(/ecs_secrets_change_record_age_seconds [0-9.]+/);
}, 120_000);

test('long-poll: answered on the change, 304 when the wait ends, 400 past 60 s', async () => {
  expect((await cli(['create', '--name', 'poll', '--payload', 'x'])).code).toBe(0);
  await bothServe('/latest/secrets/poll', 1);
  expect((await read(d1, '/latest/secrets/poll?wait=1&after=1')).status).toBe(304);
  expect((await read(d1, '/latest/secrets/poll?wait=61&after=1')).status).toBe(400);
  expect((await read(d1, '/latest/secrets/poll?wait=5')).status).toBe(400);
  // A serial other than the reader's is answered at once.
  expect((await read(d1, '/latest/secrets/poll?wait=30&after=0')).json().serial).toBe(1);

  // 500 readers waiting on one name cost one backend read when it changes.
  const agent = new http.Agent({ keepAlive: false, maxSockets: 500 });
  const waiting = Array.from({ length: 500 }, () =>
    request(d1.port, { path: '/v1/secrets/poll?wait=60&after=1', agent, timeoutMs: 90_000 }),
  );
  const queriesBefore = s.dynamo.counts.Query ?? 0;
  expect((await cli(['create', '--name', 'poll', '--payload', 'y'])).code).toBe(0);
  const answers = await Promise.all(waiting);
  agent.destroy();
  expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
  expect(new Set(answers.map((a) => a.json().serial))).toEqual(new Set([2]));
  // The CLI's own read of the latest serial, and at most one read by the daemon for all 500.
  expect((s.dynamo.counts.Query ?? 0) - queriesBefore).toBeLessThanOrEqual(2);
}, 120_000);

test('a revoke learnt from the change record is never served stale: the backend then down, the read is 503', async () => {
  expect((await cli(['create', '--name', 'leak', '--payload', 'old-value'])).code).toBe(0);
  expect((await cli(['create', '--name', 'leak', '--payload', 'leaked-value'])).code).toBe(0);
  await bothServe('/latest/secrets/leak', 2);
  const revokes = async () =>
    Number(
      /ecs_secrets_invalidations_total\{kind="revoke"\} ([0-9]+)/.exec((await read(d1, '/metrics')).text)?.[1] ?? 0,
    );
  const before = await revokes();
  expect((await cli(['revoke', '--name', 'leak', '--serial', '2'])).code).toBe(0);
  await until('the revoke seen', async () => (await revokes()) > before, DEADLINE_MS);
  await s.dynamo.setFault({ down: true });
  try {
    const latest = await read(d1, '/latest/secrets/leak');
    expect(latest.status).toBe(503);
    expect(latest.text).not.toContain('leaked-value');
    const bySerial = await read(d1, '/latest/secrets/leak/2');
    expect([bySerial.status, bySerial.json().active, bySerial.json().payload]).toEqual([200, false, '']);
  } finally {
    await s.dynamo.setFault(null);
  }
  // Both watchers read the record again before the next test (which counts their log lines).
  for (const d of [d1, d2]) {
    const ok = async () =>
      Number(
        /ecs_secrets_change_record_reads_total\{result="ok"\} ([0-9]+)/.exec((await read(d, '/metrics')).text)?.[1] ??
          0,
      );
    const now = await ok();
    await until('a good read of the record', async () => (await ok()) > now, DEADLINE_MS);
  }
}, 120_000);

test('shutting down answers waiting long-polls with 304 at once, not a cut connection after the grace period', async () => {
  expect((await cli(['create', '--name', 'waited', '--payload', 'w'])).code).toBe(0);
  const d = await spawnDaemon(['--application-name', APP, '--watch-interval', String(INTERVAL_S)], {
    env: s.env,
    waitHealthy: true,
  });
  const waiting = request(d.port, { path: '/v1/secrets/waited?wait=60&after=1', timeoutMs: 90_000 }).catch(
    (err: Error) => ({ status: err.message }),
  );
  await until(
    'the secret read',
    async () => /backend_calls_total\{service="kms",operation="Decrypt"\} [1-9]/.test((await read(d, '/metrics')).text),
    DEADLINE_MS,
  );
  expect(await d.stop()).toBe(0);
  expect((await waiting).status).toBe(304);
}, 120_000);

test('a rendered file follows a change made by the CLI within the interval (its TTL is 600 s)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-propagation-render-'));
  const file = path.join(dir, 'key.txt');
  let d3: SpawnedDaemon | undefined;
  try {
    expect((await cli(['create', '--name', 'rendered.key', '--payload', 'first-value'])).code).toBe(0);
    d3 = await spawnDaemon(
      ['--application-name', APP, '--watch-interval', String(INTERVAL_S), '--render', `${file}=rendered.key`],
      { env: s.env, waitHealthy: true },
    );
    expect(fs.readFileSync(file, 'utf8')).toBe('first-value');
    expect((await cli(['create', '--name', 'rendered.key', '--payload', 'second-value'])).code).toBe(0);
    await until('the file rewritten', () => fs.readFileSync(file, 'utf8') === 'second-value', DEADLINE_MS);
  } finally {
    await d3?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);

test('exec --watch through a daemon follows a change made elsewhere at once: the long-poll, not its 60 s timer', async () => {
  expect((await cli(['create', '--name', 'app.key', '--payload', 'k1'])).code).toBe(0);
  await bothServe('/latest/secrets/app.key', 1);
  const args = [
    ...[CLI, '--application-name', APP, 'exec', '--daemon-url', d2.url, '--name', 'KEY=app.key'],
    ...['--watch', '60', '--on-change', 'exit', '--', process.execPath, '-e'],
    "console.log('up ' + process.env.KEY); setInterval(() => {}, 1000);",
  ];
  // Nothing but the daemon: the backend is unreachable for exec itself.
  const env = {
    ...baseEnv(),
    ...s.env,
    AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9',
    AWS_ENDPOINT_URL_KMS: 'http://127.0.0.1:9',
  };
  const child = spawn(process.execPath, args, { env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  try {
    // Started with serial 1: a change from now on is answered to its long-poll, whenever it arrives.
    await until('the command started', () => out.includes('up k1') || child.exitCode !== null, DEADLINE_MS);
    expect((await cli(['create', '--name', 'app.key', '--payload', 'k2'])).code).toBe(0);
    // Well inside the 60 s its timer would have waited.
    const code = await Promise.race([exited, new Promise((r) => setTimeout(r, 45_000, 'still running').unref())]);
    expect([code, err]).toEqual([0, expect.stringMatching(/secrets changed/)]);
  } finally {
    child.kill('SIGKILL');
  }
}, 120_000);

test('exec --watch through a daemon, a new version too large for the environment: refused once, then no long-poll loop on the daemon', async () => {
  expect((await cli(['create', '--name', 'app.big', '--payload', 'small'])).code).toBe(0);
  await bothServe('/latest/secrets/app.big', 1);
  const args = [
    ...[CLI, '--application-name', APP, 'exec', '--daemon-url', d2.url, '--name', 'BIG=app.big'],
    ...['--watch', '5', '--', process.execPath, '-e'],
    "console.log('up ' + process.env.BIG); setInterval(() => {}, 1000);",
  ];
  const child = spawn(process.execPath, args, {
    env: { ...baseEnv(), ...s.env } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  /** Every request d2 has answered, from its own metrics (each scrape counts itself too). */
  const answered = async () =>
    [...(await read(d2, '/metrics')).text.matchAll(/^ecs_secrets_http_requests_total\{[^}]*\} (\d+)$/gm)].reduce(
      (n, m) => n + Number(m[1]),
      0,
    );
  try {
    await until('the command started', () => out.includes('up small') || child.exitCode !== null, DEADLINE_MS);
    expect((await cli(['create', '--name', 'app.big', '--payload-location', '-'], 'x'.repeat(140_000))).code).toBe(0);
    await until('the refusal logged', () => /cannot be delivered/.test(err) || child.exitCode !== null, DEADLINE_MS);
    expect(child.exitCode).toBeNull();
    // With --watch 5, a refused version is looked at again after a full interval: a few requests
    // at most in any 2 s (a wait, a read, the scrapes), never a loop of immediate long-polls.
    const before = await answered();
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await answered()) - before).toBeLessThanOrEqual(6);
    expect(err.match(/cannot be delivered/g)).toHaveLength(1);
  } finally {
    // SIGTERM: exec stops CMD's process group before it exits (SIGKILL would orphan CMD).
    child.kill('SIGTERM');
    await exited;
  }
}, 120_000);

test('a change record that cannot be read: cached secrets still served, /health 200, logged once, and once on recovery', async () => {
  expect((await cli(['create', '--name', 'steady', '--payload', 's'])).code).toBe(0);
  await bothServe('/latest/secrets/steady', 1);
  const good = await changeRecord();
  const logs = () => d1.logs().slice(logsBefore);
  const logsBefore = d1.logs().length;
  const recordReads = async (result: 'ok' | 'error') =>
    Number(
      new RegExp(`ecs_secrets_change_record_reads_total\\{result="${result}"\\} ([0-9]+)`).exec(
        (await read(d1, '/metrics')).text,
      )?.[1] ?? 0,
    );
  const errorReads = () => recordReads('error');
  // The creation's own change may reach d1's watcher after the reads above cached the secret, and
  // drop it once: two whole reads of the record later that has happened, and one read caches it again.
  const okBefore = await recordReads('ok');
  await until('two more reads of the record', async () => (await recordReads('ok')) >= okBefore + 2, DEADLINE_MS);
  await read(d1, '/latest/secrets/steady');
  const ddb = adminDynamo(s.dynamo.endpoint);
  const repaired = marshall({ Name: CHANGES_NAME, Serial: 0, ChangeSeq: good.seq + 1, Changes: [] });
  let broken = true;
  try {
    await ddb.send(
      new PutItemCommand({
        TableName: TABLE,
        Item: { Name: { S: CHANGES_NAME }, Serial: { N: '0' }, ChangeSeq: { S: 'broken' } },
      }),
    );
    await until('three failed reads', async () => (await errorReads()) >= 3, DEADLINE_MS);
    expect(logs().match(/cannot read the change record/g)).toHaveLength(1);
    expect((await read(d1, '/health')).status).toBe(200);
    const steady = await read(d1, '/latest/secrets/steady');
    expect([steady.status, steady.headers['x-ecs-secrets-cache']]).toEqual([200, 'hit']);

    await ddb.send(new PutItemCommand({ TableName: TABLE, Item: repaired }));
    broken = false;
    await until('the recovery logged', () => /the change record can be read again/.test(logs()), DEADLINE_MS);
  } finally {
    // Never left broken for the next tests, whatever failed above.
    if (broken) await ddb.send(new PutItemCommand({ TableName: TABLE, Item: repaired }));
    ddb.destroy();
  }
  // Followed again: a change made now reaches both daemons.
  expect((await cli(['create', '--name', 'steady', '--payload', 't'])).code).toBe(0);
  await bothServe('/latest/secrets/steady', 2);
  expect(logs().match(/cannot read the change record/g)).toHaveLength(1);
  expect(logs().match(/the change record can be read again/g)).toHaveLength(1);
}, 120_000);

/**
 * WRITERS writers at once, each its own CLI process, all racing for the one change record. On an
 * overloaded machine a process may time out reaching its backend before it writes anything: such a writer stores nothing and records nothing.
 * Every writer that stored its version is counted exactly once, and none is lost. Ten processes on
 * a machine of a few cores already collide on the record again and again; more only cost CPU.
 */
const WRITERS = 10;

async function crowd(run: (args: string[]) => Promise<CliResult>, record: () => Promise<ChangeLog>): Promise<void> {
  const before = (await record()).seq;
  const names = Array.from({ length: WRITERS }, (_, i) => `crowd-${i}`);
  const results = await Promise.all(names.map((n) => run(['create', '--name', n, '--payload', 'v'])));
  const failed = results.filter((r) => r.code !== 0);
  for (const r of failed) expect(r.stderr).toMatch(/backend unavailable|timed out/);
  // Every process that stored its version noted it: no "could not be updated" warning.
  for (const r of results) expect(r.stderr).not.toMatch(/change record could not be updated/);
  const stored = names.filter((_, i) => results[i].code === 0);
  expect(stored.length).toBeGreaterThan(failed.length);
  const after = await record();
  expect(after.seq - before).toBe(stored.length);
  const recorded = new Set(after.changes.map((c) => c.name));
  for (const n of stored) expect(recorded.has(n)).toBe(true);
}

test(`${WRITERS} writers in separate processes advance the change record by exactly ${WRITERS}, every name in it`, async () => {
  await crowd(cli, changeRecord);
}, 240_000);

test(`the embedded store (--local): ${WRITERS} writer processes advance it by exactly ${WRITERS} too`, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-propagation-'));
  try {
    const local = (args: string[]) => runCli(['--local', '--data-dir', dir, '--application-name', APP, ...args]);
    await crowd(local, async () => {
      const b = await openBackend({ app: APP, local: true, dataDir: dir });
      try {
        return await b.service.store.readChanges();
      } finally {
        await b.close();
      }
    });
    // The record is no secret: `list` shows exactly the writers' names.
    const listed = json<Array<{ name: string }>>(await local(['list'])).map((n) => n.name);
    expect(listed.every((n) => n.startsWith('crowd-'))).toBe(true);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 240_000);
