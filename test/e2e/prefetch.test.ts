/**
 * `daemon --prefetch` / `--prefetch-prefix`, spawned as a user runs it, against the stand-ins.
 * Backend reads are counted at the DynamoDB stand-in, where the promise "one read per secret per
 * TTL" is kept or not.
 */
import { runCli } from '../helpers/cli';
import { type SpawnedDaemon, spawnDaemon } from '../helpers/daemon';
import { sleep, until } from '../helpers/wait';
import { type StandIns, createAppResources, startStandIns } from '../standins';

const APP = 'web';
let s: StandIns;
const daemons: SpawnedDaemon[] = [];

const cli = (args: string[]) => runCli(['--application-name', APP, ...args], { env: s.env });
async function daemon(args: string[], waitHealthy = true): Promise<SpawnedDaemon> {
  const d = await spawnDaemon(['--application-name', APP, ...args], { env: s.env, waitHealthy, timeoutMs: 30_000 });
  daemons.push(d);
  return d;
}
async function get(url: string) {
  const r = await fetch(url);
  const text = await r.text();
  return { status: r.status, cache: r.headers.get('x-ecs-secrets-cache'), body: JSON.parse(text) };
}
const backendReads = () => (s.dynamo.counts.Query ?? 0) + (s.dynamo.counts.GetItem ?? 0);

beforeAll(async () => {
  s = await startStandIns();
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
  for (const [name, payload] of [
    ['db.password', 'pw1'],
    ['api.key', 'k1'],
    ['team-a.one', 'a1'],
    ['team-a.two', 'a2'],
    ['team-b.one', 'b1'],
  ])
    expect((await cli(['create', '--name', name, '--payload', payload])).code).toBe(0);
});
afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});
afterAll(async () => {
  await s.close();
});

test('/health is 503 while a prefetched secret is missing, names it in the log, and turns 200 once it exists', async () => {
  const d = await daemon(['--cache-ttl', '2', '--prefetch', 'db.password,late.secret'], false);
  await d.waitForLog(/"secret":"late\.secret".*not found/, 15_000);
  const health = await fetch(`${d.url}/health`);
  expect(health.status).toBe(503);
  expect(await health.json()).toEqual({ status: 'starting', error: expect.stringContaining('late.secret') });
  expect(d.logs()).toMatch(/"secret":"late\.secret".*not found/);
  expect(d.logs()).not.toContain('pw1');

  expect((await cli(['create', '--name', 'late.secret', '--payload', 'now-here'])).code).toBe(0);
  // Retried with a backoff capped at the TTL (2 s): well inside the bound.
  await until('/health 200', async () => (await fetch(`${d.url}/health`)).status === 200);
  const r = await get(`${d.url}/latest/secrets/late.secret`);
  expect([r.status, r.cache, r.body.payload]).toEqual([200, 'hit', 'now-here']);
}, 60_000);

test('the first read of a prefetched secret is a cache hit, with no backend read', async () => {
  const d = await daemon(['--cache-ttl', '30', '--prefetch', 'db.password', '--prefetch', 'api.key']);
  const before = { ddb: s.dynamo.counts.total, kms: s.kms.counts.total };
  for (const [name, payload] of [
    ['db.password', 'pw1'],
    ['api.key', 'k1'],
  ]) {
    const r = await get(`${d.url}/v1/secrets/${name}`);
    expect([r.status, r.cache, r.body]).toEqual([200, 'hit', { name, serial: 1, payload, active: true }]);
  }
  expect({ ddb: s.dynamo.counts.total, kms: s.kms.counts.total }).toEqual(before);
  const metrics = await (await fetch(`${d.url}/metrics`)).text();
  expect(metrics).toContain('ecs_secrets_cache_events_total{outcome="hit"} 2');
  expect(metrics).not.toContain('outcome="miss"');
}, 60_000);

test('--prefetch-prefix reads every secret under the prefix before /health turns 200, and picks up new ones', async () => {
  const d = await daemon(['--cache-ttl', '1', '--prefetch-prefix', 'team-a.']);
  for (const name of ['team-a.one', 'team-a.two'])
    expect((await get(`${d.url}/latest/secrets/${name}`)).cache).toBe('hit');
  expect((await get(`${d.url}/latest/secrets/team-b.one`)).cache).toBe('miss'); // not under the prefix

  expect((await cli(['create', '--name', 'team-a.three', '--payload', 'a3'])).code).toBe(0);
  // The table is listed once per TTL (1 s); the new secret is then read in the background.
  await d.waitForLog(/"secret":"team-a\.three".*new secret under a prefix read/, 30_000);
  expect(await get(`${d.url}/latest/secrets/team-a.three`)).toMatchObject({
    status: 200,
    cache: 'hit',
    body: { payload: 'a3' },
  });
}, 60_000);

test('refresh-ahead: reads stay 100% hits across several TTLs, with at most one backend read per secret per TTL', async () => {
  const ttlS = 1;
  // The TTL's rhythm alone: watching would add its reads of the change record, and an early refresh
  // of the changed secret (test/e2e/propagation.test.ts covers that).
  const d = await daemon(['--cache-ttl', String(ttlS), '--watch-interval', '0', '--prefetch', 'db.password,api.key']);
  s.dynamo.resetCounts();
  s.kms.resetCounts();
  const t0 = Date.now();
  const outcomes = new Map<string, number>();
  let changedAt: number | undefined;
  let seenV2At: number | undefined;
  // Read both secrets continuously for five TTLs, and after a new version was stored behind the
  // daemon's back (after two TTLs) until it is served. On a busy machine the create alone can take
  // seconds and a refresh can start late, so the loop ends on what it waits for, not on a clock;
  // the cap (many TTLs) only turns a refresh that never happens into a failure instead of a hang.
  const capMs = 30 * ttlS * 1000;
  while (
    Date.now() - t0 < capMs &&
    (Date.now() - t0 < 5 * ttlS * 1000 || changedAt === undefined || seenV2At === undefined)
  ) {
    for (const name of ['db.password', 'api.key']) {
      const r = await get(`${d.url}/latest/secrets/${name}`);
      expect(r.status).toBe(200);
      outcomes.set(r.cache!, (outcomes.get(r.cache!) ?? 0) + 1);
      if (name === 'api.key' && r.body.serial === 2) seenV2At ??= Date.now();
    }
    if (changedAt === undefined && Date.now() - t0 > 2 * ttlS * 1000) {
      expect((await cli(['create', '--name', 'api.key', '--payload', 'k2'])).code).toBe(0);
      changedAt = Date.now();
    }
    await sleep(20);
  }
  const elapsedTtls = (Date.now() - t0) / (ttlS * 1000);
  // Never a miss: a read never waits on the backend. On a busy machine a refresh can start late, and
  // the entry is then served at once as 'stale' while the refresh runs.
  expect([...outcomes.keys()].filter((o) => o !== 'hit' && o !== 'stale')).toEqual([]);
  expect(outcomes.get('hit')).toBeGreaterThan(0);
  // Two secrets, one read each per TTL; +1 each for a read already due when counting started.
  // (The CLI's create ran a Query of its own for the latest serial, and read the change record: counted out below.)
  const createReads = 2;
  expect(backendReads() - createReads).toBeLessThanOrEqual(2 * (Math.floor(elapsedTtls) + 1));
  // The refresh really happens: the new version was served, from the cache, after at most about one TTL.
  expect(seenV2At).toBeDefined();
  const r = await get(`${d.url}/latest/secrets/api.key`);
  expect([['hit', 'stale'].includes(r.cache!), r.body.payload]).toEqual([true, 'k2']);
}, 60_000);

test('a backend outage after start-up: prefetched reads keep being answered from memory, /health stays 200, one warning per round', async () => {
  const d = await daemon(['--cache-ttl', '1', '--prefetch', 'db.password,api.key']);
  await s.dynamo.setFault({ down: true });
  try {
    await d.waitForLog(/secrets could not be refreshed/, 30_000);
    // Answered from memory: fresh within the refresh margin, then flagged stale; never a 503.
    for (let i = 0; i < 5; i++) {
      const r = await get(`${d.url}/latest/secrets/db.password`);
      expect([r.status, ['hit', 'stale'].includes(r.cache!), r.body.payload]).toEqual([200, true, 'pw1']);
      expect((await fetch(`${d.url}/health`)).status).toBe(200);
      await sleep(200);
    }
  } finally {
    await s.dynamo.setFault(null);
  }
  const warnings = d
    .logs()
    .split('\n')
    .filter((l) => l.includes('secrets could not be refreshed'));
  for (const w of warnings) expect(JSON.parse(w)).toMatchObject({ failed: expect.any(Number), of: expect.any(Number) });
  // One line per round (both secrets in it), not one per secret.
  expect(warnings.every((w) => JSON.parse(w).failed <= 2)).toBe(true);
  expect(d.logs()).not.toMatch(/pw1|"k1"|k2/);
}, 60_000);
