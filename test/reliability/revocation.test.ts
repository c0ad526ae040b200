/**
 * End to end: a daemon never serves what it knows is revoked, on any route,
 * fresh or stale, even after its LRU evicted the version (--cache-size 1) and even when the table
 * is later changed to say the version is active again.
 */
import { UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { SpawnedDaemon } from '../helpers/daemon';
import { type StandIns, createAppResources, startStandIns } from '../standins';
import { type HttpResult, Witness, adminDynamo, get, postJson } from './support';

const APP = 'revocation';
const TABLE = `ECS-Secrets-${APP}-Secrets`;
const w = new Witness('revocation');
let s: StandIns;
let d: SpawnedDaemon;
const SECRET_V2 = `${w.canary}-v2`;

beforeAll(async () => {
  s = await startStandIns();
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
  d = await w.daemon('revocation', ['--application-name', APP, '--cache-size', '1', '--cache-ttl', '600'], {
    env: s.env,
    waitHealthy: true,
  });
}, 60_000);
afterAll(async () => {
  await w.finish();
  await s?.close();
  expect(w.leaks()).toEqual([]);
});

function neverV2(r: HttpResult, label: string): void {
  expect({ label, leaked: r.text.includes(SECRET_V2) }).toEqual({ label, leaked: false });
}

test('revoked through this daemon, evicted, then re-activated in the table: never served again', async () => {
  expect((await postJson(d.port, '/latest/secrets/r', { payload: 'v1' })).status).toBe(201);
  expect((await postJson(d.port, '/latest/secrets/r', { payload: SECRET_V2 })).status).toBe(201);
  w.wrote();
  const before = await get(d.port, '/latest/secrets/r');
  expect(before.json()).toMatchObject({ serial: 2 });
  w.checkHttpRead(before.status, before.text, 'before the revoke');
  expect((await postJson(d.port, '/latest/revoke/r/2', '')).status).toBe(200);
  expect((await get(d.port, '/latest/secrets/r')).json()).toMatchObject({ serial: 1, payload: 'v1' });
  // Evict everything about r (the cache holds one entry).
  await postJson(d.port, '/latest/secrets/other', { payload: 'o' });
  await get(d.port, '/latest/secrets/other');

  // Someone with table access flips the version back to active.
  const ddb = adminDynamo(s.dynamo.endpoint);
  try {
    await ddb.send(
      new UpdateItemCommand({
        TableName: TABLE,
        Key: { Name: { S: 'r' }, Serial: { N: '2' } },
        UpdateExpression: 'SET Active = :t REMOVE RevokedAt',
        ExpressionAttributeValues: { ':t': { BOOL: true } },
      }),
    );
  } finally {
    ddb.destroy();
  }

  for (const prefix of ['/latest', '/v1']) {
    for (const headers of [{}, { 'cache-control': 'no-cache' }] as Array<Record<string, string>>) {
      const bySerial = await get(d.port, `${prefix}/secrets/r/2`, headers);
      neverV2(bySerial, `${prefix} by serial ${JSON.stringify(headers)}`);
      expect(bySerial.status).toBe(200);
      expect(bySerial.json()).toEqual({ name: 'r', serial: 2, payload: '', active: false });
      const latest = await get(d.port, `${prefix}/secrets/r`, headers);
      neverV2(latest, `${prefix} latest ${JSON.stringify(headers)}`);
      expect(latest.status).toBe(500);
      expect(latest.json().error).toMatch(/this daemon saw it revoked/);
    }
  }

  // And during an outage, stale or not.
  await s.dynamo.setFault({ down: true });
  try {
    for (const p of ['/latest/secrets/r', '/latest/secrets/r/2', '/v1/secrets/r']) {
      const r = await get(d.port, p);
      neverV2(r, `${p} during the outage`);
      expect([200, 500, 503]).toContain(r.status);
      if (r.status === 200) expect(r.json()).toMatchObject({ active: false, payload: '' });
    }
  } finally {
    await s.dynamo.setFault(null);
  }
}, 60_000);
