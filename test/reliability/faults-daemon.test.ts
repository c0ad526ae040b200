/**
 * Faults, seen from the daemon: DynamoDB and KMS stopped, slower than the client timeout, or
 * throttling. Cached reads keep being served (flagged stale) within the stale window and not
 * after it, uncached reads answer 503 within the deadline, writes answer 503 and leave nothing
 * behind, a revoked version is never served stale, lost write answers never duplicate a version,
 * and everything recovers when the stand-in comes back.
 */
import type { SpawnedDaemon } from '../helpers/daemon';
import { type StandIns, createAppResources, startStandIns } from '../standins';
import type { Fault } from '../standins';
import {
  type HttpResult,
  LostResponseProxy,
  Witness,
  adminDynamo,
  get,
  isComplete,
  postJson,
  range,
  scanTable,
  serialsByName,
  sleep,
  timed,
  withService,
} from './support';

const APP = 'fltd';
const TABLE = `ECS-Secrets-${APP}-Secrets`;
const SLOW_MS = 25_000;
/** The daemon's read deadline is 4 s (src/daemon.ts); with slack for a busy machine, far below SLOW_MS. */
const READ_BOUND_MS = 7_000;
/** Writes are bounded by the SDK limits (3 attempts of 2 s, src/aws.ts); with slack. */
const WRITE_BOUND_MS = 12_000;
const TTL_S = 1;

const w = new Witness('faults-daemon');
let s: StandIns;
let s2: StandIns;
let d: SpawnedDaemon;
let d2: SpawnedDaemon;

type Target = 'dynamo' | 'kms';
const FAULTS: Array<[string, Fault]> = [
  ['stopped', { down: true }],
  ['slower than the client timeout', { delayMs: SLOW_MS }],
  ['throttling', { throttle: true }],
];
const tagOf = (target: Target, label: string) => `${target}-${label.split(' ')[0]}`;

async function tableItems(set: StandIns) {
  const client = adminDynamo(set.dynamo.endpoint);
  try {
    return await scanTable(client, TABLE);
  } finally {
    client.destroy();
  }
}

const startDaemon = (set: StandIns, label: string, args: string[], env: Record<string, string> = {}) =>
  w.daemon(label, ['--application-name', APP, ...args], { env: { ...set.env, ...env }, waitHealthy: true });

beforeAll(async () => {
  [s, s2] = await Promise.all([startStandIns(), startStandIns()]);
  for (const set of [s, s2]) {
    await createAppResources(set.kms, set.dynamo.endpoint, APP);
    await withService(APP, set.env, async (svc) => {
      await svc.create('stable', 'stable-v1');
      await svc.create('canary.secret', w.canary);
      for (const [label] of FAULTS)
        for (const t of ['dynamo', 'kms'] as Target[]) {
          await svc.create(`cold.${tagOf(t, label)}`, 'cold');
          await svc.create(`rv.${tagOf(t, label)}`, 'r');
        }
    });
  }
  w.wrote();
  [d, d2] = await Promise.all([
    startDaemon(s, 'dynamo-faults', ['--cache-ttl', String(TTL_S), '--stale-if-error', '60']),
    startDaemon(s2, 'kms-faults', ['--cache-ttl', String(TTL_S), '--stale-if-error', '60', '--debug']),
  ]);
}, 60_000);
afterAll(async () => {
  await w.finish();
  await s?.close();
  await s2?.close();
});

function readCanary(r: HttpResult, label: string) {
  w.checkHttpRead(r.status, r.text, label);
  expect([r.status, r.json()]).toEqual([200, { name: 'canary.secret', serial: 1, payload: w.canary, active: true }]);
}

async function scenario(set: StandIns, dm: SpawnedDaemon, target: Target, label: string, fault: Fault): Promise<void> {
  const tag = tagOf(target, label);
  const where = `${target} ${label}`;
  // Warm the cache, then let the entries pass their TTL: from here on only the stale window serves them.
  expect((await get(dm.port, '/latest/secrets/stable')).status).toBe(200);
  readCanary(await get(dm.port, '/v1/secrets/canary.secret/1'), `${where} warm`);
  await sleep(TTL_S * 1000 + 150);
  const before = await tableItems(set);

  await set[target].setFault(fault);
  let r: Record<string, { value: HttpResult; ms: number }>;
  try {
    const runs = {
      latest: timed(get(dm.port, '/latest/secrets/stable')),
      latestAgain: timed(get(dm.port, '/latest/secrets/stable')),
      canary: timed(get(dm.port, '/v1/secrets/canary.secret/1')),
      cold: timed(get(dm.port, `/latest/secrets/cold.${tag}`)),
      create: timed(postJson(dm.port, `/latest/secrets/new.${tag}`, { payload: `${w.canary}-${tag}` })),
      revoke: timed(postJson(dm.port, `/v1/revoke/rv.${tag}/1`, '')),
      health: timed(get(dm.port, '/health')),
    };
    r = Object.fromEntries(await Promise.all(Object.entries(runs).map(async ([k, p]) => [k, await p] as const)));
  } finally {
    await set[target].setFault(null);
  }

  // Nothing hangs: reads within the deadline, writes within the SDK limits, /health at once.
  for (const k of ['latest', 'latestAgain', 'canary', 'cold'])
    expect({ where, k, ok: r[k].ms < READ_BOUND_MS, ms: r[k].ms }).toMatchObject({ ok: true });
  for (const k of ['create', 'revoke'])
    expect({ where, k, ok: r[k].ms < WRITE_BOUND_MS, ms: r[k].ms }).toMatchObject({ ok: true });
  expect({ where, health: r.health.value.status, fast: r.health.ms < 2_000 }).toEqual({
    where,
    health: 200,
    fast: true,
  });

  // Cached reads are served: stale while DynamoDB fails; fresh while KMS fails (the data key is cached).
  for (const k of ['latest', 'latestAgain']) {
    const v = r[k].value;
    expect({ where, k, status: v.status, body: v.json() }).toEqual({
      where,
      k,
      status: 200,
      body: { name: 'stable', serial: 1, payload: 'stable-v1', active: true },
    });
    expect(v.headers['x-ecs-secrets-cache']).toMatch(target === 'dynamo' ? /^stale$/ : /^(miss|hit)$/);
    if (target === 'dynamo') expect(v.headers.warning).toMatch(/^110 /);
  }
  readCanary(r.canary.value, `${where} during`);
  // What was never read answers 503, a JSON error naming the problem.
  expect({ where, status: r.cold.value.status, body: r.cold.value.json() }).toEqual({
    where,
    status: 503,
    body: { error: expect.stringMatching(/unavailable/) },
  });
  // A slow backend is cut off by the daemon's own read deadline, before the SDK's retries end.
  if (fault.delayMs) expect(r.cold.value.json().error).toMatch(/no answer within 4000 ms/);
  expect({ where, status: r.create.value.status, body: r.create.value.json() }).toEqual({
    where,
    status: 503,
    body: { error: expect.stringMatching(/unavailable/) },
  });
  expect(r.create.value.text).not.toContain(w.canary);
  // Revoke needs DynamoDB only.
  expect({ where, status: r.revoke.value.status }).toEqual({ where, status: target === 'dynamo' ? 503 : 200 });

  // A failed write left nothing behind.
  const after = await tableItems(set);
  expect({ where, keys: serialsByName(after) }).toEqual({ where, keys: serialsByName(before) });
  expect(after.every(isComplete)).toBe(true);

  // Recovery.
  const cold = await get(dm.port, `/latest/secrets/cold.${tag}`);
  expect({ where, status: cold.status, body: cold.json() }).toEqual({
    where,
    status: 200,
    body: { name: `cold.${tag}`, serial: 1, payload: 'cold', active: true },
  });
  const bypass = await get(dm.port, '/latest/secrets/stable', { 'cache-control': 'no-cache' });
  expect([bypass.status, bypass.headers['x-ecs-secrets-cache']]).toEqual([200, 'bypass']);
  const created = await postJson(dm.port, `/latest/secrets/new.${tag}`, { payload: `${w.canary}-${tag}` });
  expect({ where, status: created.status, body: created.json() }).toEqual({
    where,
    status: 201,
    body: { name: `new.${tag}`, serial: 1 },
  });
  w.wrote();
  const back = await get(dm.port, `/latest/secrets/new.${tag}`);
  w.checkHttpRead(back.status, back.text, `${where} recovered`);
  expect(back.json()).toEqual({ name: `new.${tag}`, serial: 1, payload: `${w.canary}-${tag}`, active: true });
}

describe.each(FAULTS)('DynamoDB and KMS %s', (label, fault) => {
  test('cached reads served, uncached reads and writes 503 in time, nothing written, then recovery', async () => {
    await Promise.all([scenario(s, d, 'dynamo', label, fault), scenario(s2, d2, 'kms', label, fault)]);
  }, 60_000);
});

test('the stale window is bounded: stale within it, 503 after it', async () => {
  const ds = await startDaemon(s, 'stale-window', ['--cache-ttl', '1', '--stale-if-error', '3']);
  try {
    expect((await get(ds.port, '/latest/secrets/stable')).status).toBe(200);
    const t0 = Date.now();
    await s.dynamo.setFault({ down: true });
    await sleep(1_300);
    const stale = await get(ds.port, '/latest/secrets/stable');
    expect([stale.status, stale.headers['x-ecs-secrets-cache']]).toEqual([200, 'stale']);
    await sleep(Math.max(0, 4_600 - (Date.now() - t0))); // TTL 1 s + stale window 3 s, and some
    const expired = await get(ds.port, '/latest/secrets/stable');
    expect([expired.status, expired.json()]).toEqual([503, { error: expect.stringMatching(/unavailable/) }]);
  } finally {
    await s.dynamo.setFault(null);
    await w.stopDaemon(ds);
  }
  expect(ds.logs()).toMatch(/serving a stale cached value/);
});

test('a version revoked through the daemon is never served again, not even stale during an outage', async () => {
  await withService(APP, s.env, async (svc) => {
    await svc.create('rvs', 'rvs-v1');
    await svc.create('rvs', `${w.canary}-revoked`);
  });
  expect((await get(d.port, '/latest/secrets/rvs')).json()).toMatchObject({ serial: 2 });
  expect((await get(d.port, '/latest/secrets/rvs/2')).json()).toMatchObject({ serial: 2, active: true });
  expect((await postJson(d.port, '/latest/revoke/rvs/2', '')).status).toBe(200);
  await s.dynamo.setFault({ down: true });
  try {
    await sleep(TTL_S * 1000 + 150);
    const [latest, bySerial] = await Promise.all([
      get(d.port, '/latest/secrets/rvs'),
      get(d.port, '/latest/secrets/rvs/2'),
    ]);
    for (const r of [latest, bySerial]) expect(r.text).not.toContain(w.canary);
    expect([bySerial.status, bySerial.json()]).toEqual([200, { name: 'rvs', serial: 2, payload: '', active: false }]);
    // The latest entry was serial 2: it is gone, so 503 (never serial 2's payload).
    expect(latest.status).toBe(503);
  } finally {
    await s.dynamo.setFault(null);
  }
  expect((await get(d.port, '/latest/secrets/rvs')).json()).toEqual({
    name: 'rvs',
    serial: 1,
    payload: 'rvs-v1',
    active: true,
  });
});

describe('writes whose answers are lost (they happened; the daemon never heard)', () => {
  let proxy: LostResponseProxy;
  let dp: SpawnedDaemon;
  beforeAll(async () => {
    proxy = new LostResponseProxy(s.dynamo.endpoint);
    await proxy.start();
    dp = await startDaemon(s, 'lossy-network', [], { AWS_ENDPOINT_URL_DYNAMODB: proxy.endpoint });
  });
  afterAll(async () => {
    if (dp) await w.stopDaemon(dp);
    await proxy?.close();
  });

  test('20 concurrent POSTs to one name with 6 lost answers: serials 1..20, each payload exactly once', async () => {
    // One lost answer in every two puts: the daemon queues writes to one name, so the
    // put after a lost one is that same write's retry, which then lands. Six losses in a row would
    // all hit one write and exhaust the SDK's three attempts: a backend outage, not this case.
    proxy.loseNext('PutItem', 6, 2);
    const payloads = range(1, 20).map((i) => `lossy-${i}-${w.canary}`);
    const results = await Promise.all(payloads.map((p) => postJson(dp.port, '/latest/secrets/lossy', { payload: p })));
    w.wrote();
    expect(proxy.lost.length).toBe(6);
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    const serials = results.map((r) => r.json().serial as number);
    expect([...serials].sort((a, b) => a - b)).toEqual(range(1, 20));
    const items = (await tableItems(s)).filter((i) => i.Name.S === 'lossy');
    expect(items.map((i) => Number(i.Serial.N)).sort((a, b) => a - b)).toEqual(range(1, 20));
    expect(items.every(isComplete)).toBe(true);
    for (const [i, serial] of serials.entries()) {
      const r = await get(d.port, `/latest/secrets/lossy/${serial}`);
      w.checkHttpRead(r.status, r.text, 'lossy read');
      expect(r.json()).toEqual({ name: 'lossy', serial, payload: payloads[i], active: true });
    }
  }, 60_000);
});

test('secret hygiene: the canary was written and read; no daemon output holds it; no 500 anywhere', async () => {
  await w.finish();
  expect(w.canaryWrites).toBeGreaterThan(0);
  expect(w.canaryReads).toBeGreaterThan(0);
  expect(w.leaks()).toEqual([]);
  expect(w.allText()).not.toMatch(/"status":500|internal error|\n\s+at /);
  for (const set of [s, s2]) expect(JSON.stringify(await tableItems(set))).not.toContain(w.canary);
});
