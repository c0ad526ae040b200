/**
 * Load: 2,000 reads and 200 writes, shuffled, from 32 concurrent keep-alive clients against one
 * daemon, several writers per name. Afterwards: zero 5xx, every write got its own serial, the
 * table holds serials 1..N per name with no gap and no duplicate, every payload is readable by
 * serial and is the one written there, and no read ever returned a payload that isn't the one
 * stored at the serial it named.
 */
import { randomBytes, randomInt } from 'node:crypto';
import * as http from 'node:http';
import type { SpawnedDaemon } from '../helpers/daemon';
import { type StandIns, createAppResources, startStandIns } from '../standins';
import {
  Witness,
  adminDynamo,
  get,
  isComplete,
  postJson,
  range,
  request,
  loggedErrors,
  scanTable,
  serialsByName,
  withService,
} from './support';

const APP = 'load';
const TABLE = `ECS-Secrets-${APP}-Secrets`;
const NAMES = range(0, 7).map((i) => `load.n${i}`);
const READS = 2000;
const WRITES = 200;
const CLIENTS = 32;

const w = new Witness('load');
let s: StandIns;
let d: SpawnedDaemon;

/** name#serial -> payload, from the seeds and from every 201. */
const written = new Map<string, string>();
const key = (name: string, serial: number) => `${name}#${serial}`;

beforeAll(async () => {
  s = await startStandIns();
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
  await withService(APP, s.env, async (svc) => {
    for (const name of NAMES) {
      const c = await svc.create(name, `seed-${name}`);
      written.set(key(name, c.serial), `seed-${name}`);
    }
  });
  // A short TTL and some no-cache reads, so the backend is read under load too, not only the cache.
  d = await w.daemon('load', ['--application-name', APP, '--cache-ttl', '1'], { env: s.env, waitHealthy: true });
}, 60_000);
afterAll(async () => {
  await w.finish();
  await s?.close();
});

type Op =
  | { kind: 'write'; name: string; payload: string }
  | { kind: 'read'; noCache: boolean; bySerial: boolean; name: string };

test(`${READS} reads and ${WRITES} writes from ${CLIENTS} clients: zero 5xx, nothing lost or duplicated, every payload readable`, async () => {
  const ops: Op[] = [
    ...range(1, WRITES).map((i): Op => {
      const name = NAMES[i % NAMES.length];
      const payload = i === 7 ? `${w.canary}-load` : `w${i}-${randomBytes(6).toString('hex')}-\u00e9\u6f22\u{1f511}`;
      return { kind: 'write', name, payload };
    }),
    ...range(1, READS).map(
      (): Op => ({
        kind: 'read',
        noCache: randomInt(4) === 0,
        bySerial: randomInt(2) === 0,
        name: NAMES[randomInt(NAMES.length)],
      }),
    ),
  ];
  for (let i = ops.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [ops[i], ops[j]] = [ops[j], ops[i]];
  }

  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const statuses = new Map<number, number>();
  const bad: string[] = [];
  const seen: Array<{ name: string; serial: number; payload: string }> = [];
  const writesDone: Array<{ name: string; serial: number }> = [];
  let next = 0;
  const count = (status: number) => statuses.set(status, (statuses.get(status) ?? 0) + 1);

  async function client(): Promise<void> {
    for (let op = ops[next++]; op; op = ops[next++]) {
      if (op.kind === 'write') {
        const r = await request(d.port, {
          method: 'POST',
          path: `/latest/secrets/${op.name}`,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ payload: op.payload }),
          agent,
        });
        count(r.status);
        if (r.status !== 201) bad.push(`POST ${op.name}: ${r.status} ${r.text}`);
        else {
          const { name, serial } = r.json() as { name: string; serial: number };
          if (name !== op.name || written.has(key(name, serial)))
            bad.push(`POST ${op.name}: got ${name}#${serial}, already taken`);
          written.set(key(name, serial), op.payload);
          writesDone.push({ name, serial });
          if (op.payload.includes(w.canary)) w.wrote();
        }
      } else {
        // By serial: one that is known to exist (a seed, or a write already answered).
        const mine = writesDone.filter((x) => x.name === op.name);
        const serial = op.bySerial ? (mine.length > 0 ? mine[randomInt(mine.length)].serial : 1) : undefined;
        const path = serial === undefined ? `/latest/secrets/${op.name}` : `/v1/secrets/${op.name}/${serial}`;
        const r = await request(d.port, { path, headers: op.noCache ? { 'cache-control': 'no-cache' } : {}, agent });
        count(r.status);
        w.checkHttpRead(r.status, r.text, `GET ${path}`);
        if (r.status !== 200) bad.push(`GET ${path}: ${r.status} ${r.text}`);
        else {
          const rec = r.json() as { name: string; serial: number; payload: string; active: boolean };
          if (rec.name !== op.name || (serial !== undefined && rec.serial !== serial) || rec.active !== true)
            bad.push(`GET ${path}: wrong record ${rec.name}#${rec.serial}`);
          seen.push(rec);
        }
      }
    }
  }

  try {
    await Promise.all(range(1, CLIENTS).map(() => client()));
  } finally {
    agent.destroy();
  }

  expect(bad).toEqual([]);
  expect([...statuses.keys()].filter((st) => st >= 500)).toEqual([]);
  expect(statuses.get(201)).toBe(WRITES);
  expect(statuses.get(200)).toBe(READS);

  // The table: per name, serials 1..N with no gap and no duplicate, every item complete.
  const ddb = adminDynamo(s.dynamo.endpoint);
  const items = await scanTable(ddb, TABLE).finally(() => ddb.destroy());
  expect(items.every(isComplete)).toBe(true);
  const expected = new Map(NAMES.map((n) => [n, range(1, 1 + WRITES / NAMES.length)]));
  const byName = serialsByName(items);
  expect(byName).toEqual(expected);
  expect(written.size).toBe(items.length);

  // Every payload is readable by serial and is the one written there, through the daemon and
  // through the service directly; each payload exists exactly once.
  const stored = await withService(APP, s.env, async (svc) => {
    const out = new Map<string, string>();
    for (const [name, serials] of byName)
      for (const serial of serials) out.set(key(name, serial), (await svc.fetch(name, serial)).payload);
    return out;
  });
  expect(stored).toEqual(written);
  expect(new Set(stored.values()).size).toBe(stored.size);
  for (const rec of seen)
    expect({ at: key(rec.name, rec.serial), payload: rec.payload }).toEqual({
      at: key(rec.name, rec.serial),
      payload: written.get(key(rec.name, rec.serial)),
    });
  const agent2 = new http.Agent({ keepAlive: true, maxSockets: 16 });
  try {
    const entries = [...written.entries()];
    for (let i = 0; i < entries.length; i += 16)
      await Promise.all(
        entries.slice(i, i + 16).map(async ([k, payload]) => {
          const [name, serial] = k.split('#');
          const r = await request(d.port, { path: `/latest/secrets/${name}/${serial}`, agent: agent2 });
          w.checkHttpRead(r.status, r.text, `GET ${k}`);
          expect({ k, status: r.status, payload: r.json().payload }).toEqual({ k, status: 200, payload });
        }),
      );
  } finally {
    agent2.destroy();
  }

  // The daemon counted no 5xx either, and is still healthy.
  const metrics = await get(d.port, '/metrics');
  expect(
    metrics.text
      .split('\n')
      .filter((l) => /^ecs_secrets_http_requests_total\{.*status="5\d\d"/.test(l) && !/route="\/health"/.test(l)),
  ).toEqual([]);
  expect((await get(d.port, '/health')).status).toBe(200);
}, 90_000);

test('secret hygiene: the canary was written and read under load; no daemon output holds it', async () => {
  const r = await postJson(d.port, '/latest/secrets/canary', { payload: w.canary });
  expect(r.status).toBe(201);
  w.wrote();
  const back = await get(d.port, '/latest/secrets/canary');
  w.checkHttpRead(back.status, back.text, 'GET canary');
  await w.finish();
  expect(w.canaryWrites).toBeGreaterThan(1);
  expect(w.canaryReads).toBeGreaterThan(1);
  expect(w.leaks()).toEqual([]);
  expect(loggedErrors(w.allText())).toEqual([]);
  expect(w.allText()).not.toMatch(/internal error/);
});
