/**
 * End to end: --cache-max-bytes bounds the read cache and the data-key
 * cache in bytes. Payloads at the maximum size, made of control characters (six bytes each in
 * JSON: "\u0001"), written and read through a daemon at the smallest allowed setting: the bytes
 * the caches hold, measured by the daemon from the entries themselves (/metrics), stay within it.
 */
import type { SpawnedDaemon } from '../helpers/daemon';
import { type StandIns, createAppResources, startStandIns } from '../standins';
import { Witness, get, postJson, range } from './support';
import { MAX_PAYLOAD_BYTES } from '../../src/core/payload';
import { MIN_CACHE_MAX_BYTES } from '../../src/daemon/config';

const APP = 'memory';
const w = new Witness('memory');
let s: StandIns;
let d: SpawnedDaemon;

beforeAll(async () => {
  s = await startStandIns();
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
  d = await w.daemon('memory', ['--application-name', APP, '--cache-max-bytes', String(MIN_CACHE_MAX_BYTES)], {
    env: s.env,
    waitHealthy: true,
  });
}, 60_000);
afterAll(async () => {
  await w.finish();
  await s?.close();
});

const gauge = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);

test('maximum-size payloads, escaped six-fold: both caches stay within --cache-max-bytes', async () => {
  const payload = '\u0001'.repeat(MAX_PAYLOAD_BYTES);
  // Enough to fill the cache twice over.
  const count = Math.ceil((2 * MIN_CACHE_MAX_BYTES) / (6 * MAX_PAYLOAD_BYTES)) + 1;
  for (const i of range(1, count)) {
    expect((await postJson(d.port, `/latest/secrets/big${i}`, { payload })).status).toBe(201);
    const r = await get(d.port, `/latest/secrets/big${i}`);
    expect(r.status).toBe(200);
    expect(r.text.length).toBeGreaterThan(6 * MAX_PAYLOAD_BYTES);
    const metrics = (await get(d.port, '/metrics')).text;
    const held = gauge(metrics, 'ecs_secrets_cache_bytes') + gauge(metrics, 'ecs_secrets_data_key_cache_bytes');
    expect({ i, held, withinBound: held <= MIN_CACHE_MAX_BYTES }).toEqual({ i, held, withinBound: true });
    expect(gauge(metrics, 'ecs_secrets_cache_bytes')).toBeGreaterThan(0);
  }
  // The most recent one is still served from the cache.
  expect((await get(d.port, `/latest/secrets/big${count}`)).headers['x-ecs-secrets-cache']).toBe('hit');
}, 120_000);

test('a setting too small for one maximum-size secret is a usage error at start', async () => {
  const r = await w.cli(
    ['daemon', '--application-name', APP, '--port', '0', '--host', '127.0.0.1', '--cache-max-bytes', '1MiB'],
    { env: s.env, killAfterMs: 20_000 },
  );
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/invalid --cache-max-bytes "1MiB": expected a size from/);
});
