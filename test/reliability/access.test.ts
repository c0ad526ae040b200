/**
 * Access boundaries. The fetch role's credentials cannot write (KMS denies GenerateDataKey), in
 * the CLI and in a daemon running with them; an EncryptionContext condition confines a role to a
 * namespace; a token-protected daemon answers 401 to a missing or wrong token on every route but
 * /health (property-based, cold and warm cache); a --read-only daemon refuses every write and
 * makes no write call to DynamoDB or KMS.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import type { SpawnedDaemon } from '../helpers/daemon';
import { json } from '../helpers/cli';
import { type StandIns, createAppResources, credentialsEnv, startStandIns } from '../standins';
import {
  Witness,
  adminDynamo,
  expectCleanFailure,
  get,
  loggedErrors,
  postJson,
  rawExchange,
  request,
  scanTable,
  serialsByName,
  statusesOf,
} from './support';

const APP = 'acl';
const TABLE = `ECS-Secrets-${APP}-Secrets`;
const FETCH_AKID = 'AKIDFETCHROLE';
const TEAM_A_AKID = 'AKIDTEAMA';
const TOKEN = `tok-${Math.random().toString(36).slice(2)}-${'s'.repeat(8)}`;

const w = new Witness('access');
let s: StandIns;
let tmp: string;

const cli = (args: string[], opts: { input?: string; akid?: string } = {}) =>
  w.cli(['--application-name', APP, ...args], {
    env: { ...s.env, ...(opts.akid ? credentialsEnv(opts.akid) : {}) },
    input: opts.input,
    killAfterMs: 30_000,
  });
const daemon = (label: string, args: string[], akid?: string, env: Record<string, string> = {}) =>
  w.daemon(label, ['--application-name', APP, ...args], {
    env: { ...s.env, ...(akid ? credentialsEnv(akid) : {}), ...env },
    waitHealthy: true,
  });

async function tableKeys() {
  const ddb = adminDynamo(s.dynamo.endpoint);
  try {
    return serialsByName(await scanTable(ddb, TABLE));
  } finally {
    ddb.destroy();
  }
}

beforeAll(async () => {
  s = await startStandIns();
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
  // The fetch role, as setup's policy grants it: read the table, Decrypt and DescribeKey only.
  s.kms.setPermissions(FETCH_AKID, ['Decrypt', 'DescribeKey']);
  // A role confined to one namespace by an EncryptionContext condition.
  s.kms.setPermissions(TEAM_A_AKID, ['Decrypt', 'GenerateDataKey', 'DescribeKey'], { contextNameLike: 'team-a.*' });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-access-'));
  const created = await Promise.all([
    cli(['create', '--name', 'db.password', '--payload-location', '-'], { input: w.canary }),
    cli(['create', '--name', 'team-b.key', '--payload', 'team-b-secret']),
  ]);
  expect(created.map((r) => r.code)).toEqual([0, 0]);
}, 60_000);
afterAll(async () => {
  await w.finish();
  await s?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the fetch role cannot write', () => {
  test('CLI create with its credentials: access denied naming GenerateDataKey, exit 1, nothing stored; reading works', async () => {
    const before = await tableKeys();
    const r = await cli(['create', '--name', 'db.password', '--payload-location', '-'], {
      input: `${w.canary}-denied`,
      akid: FETCH_AKID,
    });
    expectCleanFailure(r, 1, /access denied .*GenerateDataKey/);
    expect(await tableKeys()).toEqual(before);
    const f = await cli(['fetch', '--name', 'db.password'], { akid: FETCH_AKID });
    expect(json(f)).toEqual({ name: 'db.password', serial: 1, payload: w.canary, active: true });
  });

  test('a daemon with its credentials: POST is 403 access denied, nothing stored; GET works', async () => {
    const d = await daemon('fetch-role', [], FETCH_AKID);
    const before = await tableKeys();
    for (const p of ['/latest/secrets/db.password', '/v1/secrets/new.name']) {
      const r = await postJson(d.port, p, { payload: `${w.canary}-denied` });
      expect([r.status, r.json()]).toEqual([403, { error: expect.stringMatching(/access denied .*GenerateDataKey/) }]);
      expect(r.text).not.toContain(w.canary);
    }
    expect(await tableKeys()).toEqual(before);
    const g = await get(d.port, '/latest/secrets/db.password');
    w.checkHttpRead(g.status, g.text, 'fetch-role GET');
    expect(g.json()).toEqual({ name: 'db.password', serial: 1, payload: w.canary, active: true });
    await w.stopDaemon(d);
  });
});

describe('an EncryptionContext condition confines a role to its namespace', () => {
  test('team-a credentials write and read team-a.*, and are denied team-b.* both ways', async () => {
    expect(
      json(await cli(['create', '--name', 'team-a.key', '--payload', 'team-a-secret'], { akid: TEAM_A_AKID })),
    ).toEqual({ name: 'team-a.key', serial: 1 });
    expect(json(await cli(['fetch', '--name', 'team-a.key'], { akid: TEAM_A_AKID }))).toMatchObject({
      payload: 'team-a-secret',
    });
    const write = await cli(['create', '--name', 'team-b.key', '--payload', 'intruder'], { akid: TEAM_A_AKID });
    expectCleanFailure(write, 1, /access denied/);
    const read = await cli(['fetch', '--name', 'team-b.key'], { akid: TEAM_A_AKID });
    expectCleanFailure(read, 1, /access denied/);
    expect(read.stderr).not.toContain('team-b-secret');

    const d = await daemon('team-a', [], TEAM_A_AKID);
    const r = await get(d.port, '/latest/secrets/team-b.key');
    expect([r.status, r.json()]).toEqual([403, { error: expect.stringMatching(/access denied/) }]);
    expect((await get(d.port, '/latest/secrets/team-a.key')).json()).toMatchObject({ payload: 'team-a-secret' });
    await w.stopDaemon(d);
  });

  test("team-b's item copied under a team-a name fails to decrypt, never returning team-b's secret", async () => {
    const ddb = adminDynamo(s.dynamo.endpoint);
    try {
      const src = await ddb.send(
        new GetItemCommand({ TableName: TABLE, Key: { Name: { S: 'team-b.key' }, Serial: { N: '1' } } }),
      );
      await ddb.send(new PutItemCommand({ TableName: TABLE, Item: { ...src.Item!, Name: { S: 'team-a.stolen' } } }));
    } finally {
      ddb.destroy();
    }
    const r = await cli(['fetch', '--name', 'team-a.stolen'], { akid: TEAM_A_AKID });
    expectCleanFailure(r, 1, /integrity check failed/);
    expect(r.stderr).not.toContain('team-b-secret');
    // A daemon that has read team-b.key (its data key is cached) still refuses the copy.
    const d = await daemon('admin-for-copy', []);
    expect((await get(d.port, '/latest/secrets/team-b.key')).json()).toMatchObject({ payload: 'team-b-secret' });
    const copy = await get(d.port, '/latest/secrets/team-a.stolen');
    expect(copy.status).toBe(500); // a tampered table is the server's problem (errors.ts: integrity)
    expect(copy.json()).toEqual({ error: expect.stringMatching(/integrity check failed/) });
    expect(copy.text).not.toContain('team-b-secret');
    await w.stopDaemon(d);
  });
});

describe('a token-protected daemon', () => {
  let d: SpawnedDaemon;
  beforeAll(async () => {
    const file = path.join(tmp, 'token');
    fs.writeFileSync(file, `${TOKEN}\n`, { mode: 0o600 });
    d = await daemon('token', ['--token-file', file]);
    // Warm the cache with the right token, so the hot path is exercised too.
    for (const p of ['/latest/secrets/db.password', '/v1/secrets/db.password/1']) {
      const r = await get(d.port, p, { 'x-ecs-secrets-token': TOKEN });
      w.checkHttpRead(r.status, r.text, `token GET ${p}`);
      expect(r.status).toBe(200);
    }
  });

  const HEALTH = /^(?:\/(?:latest|v1))?\/health\/?(?:\?.*)?$/;
  const pathArb = fc.oneof(
    fc.constantFrom(
      '/latest/secrets/db.password',
      '/v1/secrets/db.password/1',
      '/latest/secrets/db.password?x=1',
      '/latest/secrets/nope',
      '/latest/secrets/version',
      '/v1/version',
      '/version',
      '/metrics',
      '/latest/metrics',
      '/latest/revoke/db.password/1',
      '/v1/secrets/new',
      '/nothing',
      '/',
      '/health',
      '/health/',
      '/latest/health',
      '/v1/health?x',
      '/HEALTH',
      '/health/../latest/secrets/db.password',
      '//health',
      '/health%2F..%2Flatest%2Fsecrets%2Fdb.password',
      '/latest/secrets/db.password#/health',
      '/latest/secrets/db.password?/health',
    ),
    fc
      .tuple(
        fc.constantFrom('/latest', '/v1', ''),
        fc.constantFrom('secrets', 'revoke', 'health', 'metrics', 'version'),
        fc.stringMatching(/^[A-Za-z0-9._%-]{0,20}$/),
      )
      .map(([p, r, n]) => `${p}/${r}${n ? `/${n}` : ''}`),
  );
  const wrongToken = fc.oneof(
    // (Not " TOKEN ": HTTP trims a header value's surrounding whitespace, so that is the right token.)
    fc.constantFrom(
      undefined,
      '',
      ' ',
      TOKEN.slice(0, -1),
      `${TOKEN}x`,
      `x${TOKEN}`,
      TOKEN.toUpperCase(),
      `${TOKEN} ${TOKEN}`,
      'null',
      TOKEN.replace(/.$/, 'X'),
    ),
    fc
      .string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 })
      .filter((t) => t !== TOKEN),
  );
  const methodArb = fc.constantFrom('GET', 'GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS');

  test('a missing or wrong token is 401 on every route but /health, cold or warm, any method; the right one gets in', async () => {
    await fc.assert(
      fc.asyncProperty(
        methodArb,
        pathArb,
        wrongToken,
        fc.constantFrom('header', 'authorization', 'query'),
        async (method, p, token, where) => {
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          let target = p;
          if (token !== undefined && where === 'header') headers['x-ecs-secrets-token'] = token;
          // The right token in the wrong place does not count either.
          if (where === 'authorization') headers.authorization = `Bearer ${TOKEN}`;
          if (where === 'query') target = `${p}${p.includes('?') ? '&' : '?'}token=${TOKEN}`;
          const r = await request(d.port, {
            method,
            path: target,
            headers,
            body: method === 'POST' ? JSON.stringify({ payload: w.canary }) : undefined,
          });
          expect(r.text).not.toContain(w.canary);
          expect(r.text).not.toContain(TOKEN);
          if (HEALTH.test(target))
            expect({ method, target, status: r.status, ok: r.status !== 401 && r.status < 500 }).toMatchObject({
              ok: true,
            });
          else {
            expect({ method, target, token, status: r.status }).toEqual({ method, target, token, status: 401 });
            if (method !== 'HEAD') expect(r.json()).toEqual({ error: expect.stringMatching(/X-ECS-Secrets-Token/i) });
          }
        },
      ),
      { numRuns: 300 },
    );
    // Raw requests too: a token header repeated, or with odd bytes.
    for (const extra of [
      `X-ECS-Secrets-Token: wrong\r\nX-ECS-Secrets-Token: ${TOKEN}\r\n`,
      `X-ECS-Secrets-Token: ${TOKEN}\u00ff\r\n`,
      `x-ecs-secrets-token:\r\n`,
    ]) {
      const { reply } = await rawExchange(
        d.port,
        Buffer.from(
          `GET /latest/secrets/db.password HTTP/1.1\r\nHost: x\r\n${extra}Connection: close\r\n\r\n`,
          'latin1',
        ),
        { quietMs: 3_000 },
      );
      const statuses = statusesOf(reply);
      expect(statuses.length).toBe(1);
      expect([400, 401]).toContain(statuses[0]);
      expect(reply).not.toContain(w.canary);
    }
    // The right token still works, on the hot path and through express.
    for (const p of ['/latest/secrets/db.password', '/v1/secrets/db.password/1', '/metrics']) {
      const r = await get(d.port, p, { 'x-ecs-secrets-token': TOKEN });
      w.checkHttpRead(r.status, r.text, `token GET ${p}`);
      expect({ p, status: r.status }).toEqual({ p, status: 200 });
    }
  }, 60_000);

  test('on one keep-alive connection, a right token first does not let a wrong or missing one through later', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    let connections = 0;
    const a = agent as unknown as { createConnection: (...args: unknown[]) => unknown };
    const create = a.createConnection.bind(agent);
    a.createConnection = (...args: unknown[]) => (connections++, create(...args));
    try {
      const seq: Array<[string | undefined, number]> = [
        [TOKEN, 200],
        ['wrong', 401],
        [undefined, 401],
        [TOKEN, 200],
        [TOKEN.slice(0, -1), 401],
        [`${TOKEN}x`, 401],
        [TOKEN, 200],
      ];
      for (const [token, status] of seq) {
        const r = await request(d.port, {
          path: '/latest/secrets/db.password',
          headers: token === undefined ? {} : { 'x-ecs-secrets-token': token },
          agent,
        });
        w.checkHttpRead(r.status, r.text, 'keep-alive token');
        expect({ token, status: r.status }).toEqual({ token, status });
      }
      expect(connections).toBe(1); // one connection throughout
    } finally {
      agent.destroy();
    }
  });

  test('the token never appears in its logs', async () => {
    await w.stopDaemon(d);
    expect(d.logs()).not.toContain(TOKEN);
    expect(d.logs()).toMatch(/"tokenRequired":true/);
  });
});

test('a --read-only daemon refuses every write with 403 and calls no write operation', async () => {
  const d = await daemon('read-only', ['--read-only']);
  const before = await tableKeys();
  s.kms.resetCounts();
  s.dynamo.resetCounts();
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(
        '/latest/secrets/db.password',
        '/v1/secrets/db.password',
        '/latest/secrets/new.one',
        '/latest/revoke/db.password/1',
        '/v1/revoke/db.password/1',
        '/v1/revoke/nope/9',
      ),
      fc.constantFrom(JSON.stringify({ payload: w.canary }), '', '{"payload":', 'x'.repeat(100_000)),
      fc.constantFrom('application/json', 'text/plain', undefined),
      async (p, body, type) => {
        const r = await request(d.port, {
          method: 'POST',
          path: p,
          headers: type ? { 'content-type': type } : {},
          body,
        });
        expect({ p, status: r.status }).toEqual({ p, status: 403 });
        expect(r.json()).toEqual({ error: expect.stringMatching(/read-only/) });
      },
    ),
    { numRuns: 60 },
  );
  expect({
    GenerateDataKey: s.kms.counts.GenerateDataKey,
    PutItem: s.dynamo.counts.PutItem,
    UpdateItem: s.dynamo.counts.UpdateItem,
  }).toEqual({
    GenerateDataKey: 0,
    PutItem: 0,
    UpdateItem: 0,
  });
  expect(await tableKeys()).toEqual(before);
  const g = await get(d.port, '/latest/secrets/db.password');
  w.checkHttpRead(g.status, g.text, 'read-only GET');
  expect(g.json()).toMatchObject({ serial: 1, active: true });
  await w.stopDaemon(d);
});

test('secret hygiene: the canary was written and read; no output holds it; the only 5xx is the tampered record', async () => {
  await w.finish();
  expect(w.canaryWrites).toBeGreaterThan(0);
  expect(w.canaryReads).toBeGreaterThan(0);
  expect(w.leaks()).toEqual([]);
  // One 5xx only: the tampered record (integrity failures are the server's problem, not the client's: 500).
  expect(loggedErrors(w.allText()).map((l) => JSON.parse(l).status)).toEqual([500]);
  expect(w.allText()).not.toContain(TOKEN);
});
