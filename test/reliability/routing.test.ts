/**
 * Routing is one thing.
 * - Secret names are case-sensitive everywhere: `VERSION`, `Version` are secrets like any other;
 *   only the exact, lower-case `version` is the reserved version route.
 * - The hot path (cached reads answered before express) and express agree on every path: a
 *   fast-check property over generated paths sends each to two daemons on the same table, one
 *   as built, one with the hot path switched off (DaemonConfig.hotPath, a switch no flag
 *   exposes), twice each so the first daemon's second answer comes from its hot path whenever
 *   the path is a cached read, and compares status and body.
 * The two daemons run in this process (startDaemon with a daemonConfig()) so the switch can be
 * reached; they are real HTTP servers on 127.0.0.1, talking to the stand-ins through the SDK.
 */
import fc from 'fast-check';
import { type StandIns, createAppResources, startStandIns } from '../standins';
import { daemonConfig } from '../../src/daemon/config';
import { type RunningDaemon, startDaemon } from '../../src/daemon/daemon';
import { createLogger } from '../../src/core/log';
import { type HttpResult, get, postJson } from './support';

const APP = 'routing';
let s: StandIns;
let hot: RunningDaemon;
let plain: RunningDaemon;
const savedEnv = { ...process.env };

const NAMES = ['VERSION', 'Version', 'vErSiOn', 'a.b', 'A.B', 'Ab', 'x', '-', '_', 'secrets', 'latest'];

beforeAll(async () => {
  s = await startStandIns();
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
  Object.assign(process.env, s.env); // the SDK reads the endpoints from the environment
  // No drain window: the stop at the end need not wait for this suite's idle keep-alive connections.
  const config = daemonConfig({
    app: APP,
    port: 0,
    host: '127.0.0.1',
    cacheTtlMs: 600_000,
    staleIfErrorMs: 0,
    drainMs: 0,
  });
  const logger = createLogger({ level: 'silent' });
  hot = await startDaemon(config, { logger });
  plain = await startDaemon({ ...config, hotPath: false }, { logger });
  for (const name of NAMES) {
    expect((await postJson(hot.port, `/latest/secrets/${name}`, { payload: `payload of ${name}` })).status).toBe(201);
    expect((await postJson(hot.port, `/latest/secrets/${name}`, { payload: `payload of ${name}, v2` })).status).toBe(
      201,
    );
  }
  expect((await postJson(hot.port, '/latest/revoke/a.b/2', '')).status).toBe(200);
}, 60_000);
afterAll(async () => {
  await hot?.stop('test done');
  await plain?.stop('test done');
  await s?.close();
  process.env = savedEnv;
});

const answer = (r: HttpResult) => ({
  status: r.status,
  type: r.headers['content-type'],
  body: r.text.startsWith('{') ? JSON.parse(r.text) : r.text,
});

test('case-sensitive names: VERSION and Version are secrets; only "version" is the version route', async () => {
  for (const name of ['VERSION', 'Version', 'vErSiOn']) {
    for (const prefix of ['/latest', '/v1']) {
      for (let i = 0; i < 2; i++) {
        const r = await get(hot.port, `${prefix}/secrets/${name}`);
        expect({ name, status: r.status, body: r.json() }).toEqual({
          name,
          status: 200,
          body: { name, serial: 2, payload: `payload of ${name}, v2`, active: true },
        });
      }
    }
  }
  expect((await get(hot.port, '/latest/secrets/version')).json()).toMatchObject({ application: 'ecs-secrets' });
  expect((await get(hot.port, '/latest/secrets/A.B/1')).json()).toMatchObject({
    name: 'A.B',
    payload: 'payload of A.B',
  });
  expect((await get(hot.port, '/latest/secrets/a.B')).status).toBe(404);
  expect((await get(hot.port, '/LATEST/secrets/x')).status).toBe(404);
  expect((await get(hot.port, '/latest/SECRETS/x')).status).toBe(404);
});

test('the hot path and express give the same answer to every path', async () => {
  // Warm both caches with every seeded version, so that any path the hot path takes finds an entry.
  for (const port of [hot.port, plain.port])
    for (const name of NAMES) for (const tail of ['', '/1', '/2']) await get(port, `/latest/secrets/${name}${tail}`);
  const path = fc
    .record({
      prefix: fc.constantFrom('/latest', '/v1', '/LATEST', '/V1', '/Latest', '', '//latest', '/latest/'),
      segment: fc.constantFrom('secrets', 'SECRETS', 'Secrets', 'secrets/', 'health', 'version'),
      name: fc.oneof(
        fc.constantFrom(
          ...NAMES,
          'version',
          'nope',
          'a%2Eb',
          '%41.B',
          '%2e',
          '..',
          '.',
          'a%20b',
          'x%00',
          'x'.repeat(256),
          '',
        ),
        fc.stringMatching(/^[A-Za-z0-9._-]{1,6}$/),
      ),
      serial: fc.constantFrom(undefined, '1', '2', '3', '01', '0', '1e0', '99999999999999999', '-1', ' 1'),
      slash: fc.constantFrom('', '', '/'),
      query: fc.constantFrom('', '', '?x=1', '?', '?a=%ZZ'),
    })
    .map(({ prefix, segment, name, serial, slash, query }) =>
      `${prefix}/${segment}/${name}${serial === undefined ? '' : `/${serial}`}${slash}${query}`.replace(/ /g, '%20'),
    );
  await fc.assert(
    fc.asyncProperty(path, async (p) => {
      const first = [answer(await get(hot.port, p)), answer(await get(plain.port, p))];
      const second = [answer(await get(hot.port, p)), answer(await get(plain.port, p))];
      expect({ path: p, hot: first[0] }).toEqual({ path: p, hot: first[1] });
      expect({ path: p, hot: second[0] }).toEqual({ path: p, hot: second[1] });
    }),
    { numRuns: 300 },
  );
}, 120_000);

test('long-poll, the same with and without the hot path: 304 when the wait ends, at once on another serial, woken by a write, 400 on bad values', async () => {
  for (const d of [hot, plain]) {
    for (const prefix of ['/latest', '/v1']) {
      expect((await get(d.port, `${prefix}/secrets/x?wait=1&after=2`)).status).toBe(304);
      expect((await get(d.port, `${prefix}/secrets/x?wait=5&after=1`)).json()).toMatchObject({ name: 'x', serial: 2 });
      for (const bad of ['wait=61&after=2', 'wait=5', 'wait=-1&after=2', 'wait=5&after=x'])
        expect((await get(d.port, `${prefix}/secrets/x?${bad}`)).status).toBe(400);
    }
    // A reader waiting on the serial it has is answered by the next write through this daemon.
    const current = (await get(d.port, '/latest/secrets/Ab')).json().serial as number;
    const waiting = get(d.port, `/v1/secrets/Ab?wait=30&after=${current}`);
    expect((await postJson(d.port, '/latest/secrets/Ab', { payload: 'newer' })).status).toBe(201);
    const answer = await waiting;
    expect([answer.status, answer.json().serial]).toEqual([200, current + 1]);
  }
}, 60_000);
