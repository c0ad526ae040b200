/**
 * End to end: contention is cheap, caching is per secret.
 * - 50 concurrent POSTs to one name through one daemon get serials 1..50, each once, and the table
 *   never refuses a conditional put: the daemon queues writes per name instead of letting them race
 *   (the DynamoDB stand-in counts ConditionalCheckFailedException answers);
 * - a write to one name leaves another name's cached read in place (still a cache hit, no backend read).
 */
import * as http from 'node:http';
import type { SpawnedDaemon } from '../helpers/daemon';
import { type StandIns, createAppResources, startStandIns } from '../standins';
import { Witness, adminDynamo, get, range, request, scanTable, serialsByName } from './support';

const APP = 'contention';
const TABLE = `ECS-Secrets-${APP}-Secrets`;
const w = new Witness('contention');
let s: StandIns;
let d: SpawnedDaemon;

beforeAll(async () => {
  s = await startStandIns();
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
  d = await w.daemon('contention', ['--application-name', APP], { env: s.env, waitHealthy: true });
}, 60_000);
afterAll(async () => {
  await w.finish();
  await s?.close();
});

test('50 concurrent POSTs to one name: serials 1..50, no conflict retry at the table', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
  s.dynamo.conditionalCheckFailures = 0;
  const results = await Promise.all(
    range(1, 50).map((i) =>
      request(d.port, {
        method: 'POST',
        path: '/latest/secrets/busy',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ payload: `version-${i}` }),
        agent,
      }),
    ),
  );
  agent.destroy();
  expect(results.map((r) => r.status)).toEqual(range(1, 50).map(() => 201));
  const serials = results.map((r) => r.json().serial as number).sort((a, b) => a - b);
  expect(serials).toEqual(range(1, 50));
  expect(s.dynamo.conditionalCheckFailures).toBe(0);
  // Each response's serial holds that request's payload.
  for (const [i, r] of results.entries()) {
    const back = await get(d.port, `/latest/secrets/busy/${r.json().serial as number}`);
    expect(back.json().payload).toBe(`version-${i + 1}`);
  }
  const ddb = adminDynamo(s.dynamo.endpoint);
  try {
    expect(serialsByName(await scanTable(ddb, TABLE)).get('busy')).toEqual(range(1, 50));
  } finally {
    ddb.destroy();
  }
}, 60_000);

test('a write to one name keeps another name cached (a hit, no backend read)', async () => {
  const post = (name: string) =>
    request(d.port, {
      method: 'POST',
      path: `/latest/secrets/${name}`,
      headers: { 'content-type': 'application/json' },
      body: '{"payload":"x"}',
    });
  expect((await post('calm')).status).toBe(201);
  expect((await get(d.port, '/latest/secrets/calm')).headers['x-ecs-secrets-cache']).toBe('miss');
  expect((await post('busy')).status).toBe(201);
  const queries = s.dynamo.counts.Query;
  const again = await get(d.port, '/latest/secrets/calm');
  expect(again.headers['x-ecs-secrets-cache']).toBe('hit');
  expect(s.dynamo.counts.Query).toBe(queries);
});
