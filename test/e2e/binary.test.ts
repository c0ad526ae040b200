/**
 * Binary secrets and the 256 KiB limit, through the built CLI and a spawned daemon: 256 KiB of
 * random bytes round-trip exactly (stored with item attribute Binary, shown as base64 with
 * "encoding":"base64"), 256 KiB + 1 is refused (exit 2 / HTTP 413) and writes nothing, and text
 * secrets keep the original's JSON shape exactly.
 */
import { randomBytes } from 'node:crypto';
import { DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { json, runCli } from '../helpers/cli';
import { type SpawnedDaemon, spawnDaemon } from '../helpers/daemon';
import { REGION, type StandIns, createAppResources, startStandIns } from '../standins';

const APP = 'binapp';
const MAX = 256 * 1024;
let s: StandIns;
let d: SpawnedDaemon;
let ddb: DynamoDBClient;

const cli = (args: string[], input?: string | Buffer) =>
  runCli(['--application-name', APP, ...args], { env: s.env, input });

beforeAll(async () => {
  s = await startStandIns();
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
  ddb = new DynamoDBClient({
    region: REGION,
    endpoint: s.dynamo.endpoint,
    credentials: { accessKeyId: 'AKIDADMIN', secretAccessKey: 'x' },
  });
  d = await spawnDaemon(['--application-name', APP], { env: s.env, waitHealthy: true, timeoutMs: 60_000 });
}, 60_000);
afterAll(async () => {
  await d?.stop();
  ddb?.destroy();
  await s?.close();
});

async function items(name: string) {
  const out = await ddb.send(new ScanCommand({ TableName: `ECS-Secrets-${APP}-Secrets` }));
  return (out.Items ?? []).filter((i) => i.Name.S === name);
}

test('256 KiB of random bytes: create --binary, fetch, and the daemon give them back exactly', async () => {
  const bytes = randomBytes(MAX);
  const c = await cli(['create', '--name', 'bin.max', '--binary', '--payload-location', '-'], bytes);
  expect([c.code, c.stderr, json(c)]).toEqual([0, '', { name: 'bin.max', serial: 1 }]);
  const [item] = await items('bin.max');
  expect(item.Binary).toEqual({ BOOL: true });

  const f = await cli(['fetch', '--name', 'bin.max']);
  const rec = json<Record<string, unknown>>(f);
  expect(Object.keys(rec)).toEqual(['name', 'serial', 'payload', 'active', 'encoding']);
  expect(rec.encoding).toBe('base64');
  expect(Buffer.from(rec.payload as string, 'base64').equals(bytes)).toBe(true);

  for (const p of ['/latest', '/v1']) {
    const r = await fetch(`${d.url}${p}/secrets/bin.max`);
    const body = (await r.json()) as { payload: string; encoding: string };
    expect([r.status, body.encoding, Buffer.from(body.payload, 'base64').equals(bytes)]).toEqual([200, 'base64', true]);
  }
}, 60_000);

test('--payload-encoding base64 and POST {"payloadBase64"} store binary secrets; 256 KiB + 1 is refused (exit 2 / 413), nothing written', async () => {
  const bytes = randomBytes(MAX);
  const c = await cli(
    ['create', '--name', 'bin.b64', '--payload-encoding', 'base64', '--payload-location', '-'],
    bytes.toString('base64').replace(/.{76}/g, '$&\n'),
  );
  expect(c.code).toBe(0);
  expect(
    Buffer.from(json<{ payload: string }>(await cli(['fetch', '--name', 'bin.b64'])).payload, 'base64').equals(bytes),
  ).toBe(true);

  const post = (body: unknown) =>
    fetch(`${d.url}/v1/secrets/bin.post`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const ok = await post({ payloadBase64: bytes.toString('base64') });
  expect([ok.status, await ok.json()]).toEqual([201, { name: 'bin.post', serial: 1 }]);
  const back = (await (await fetch(`${d.url}/v1/secrets/bin.post`)).json()) as { payload: string; encoding: string };
  expect([back.encoding, Buffer.from(back.payload, 'base64').equals(bytes)]).toEqual(['base64', true]);

  const over = randomBytes(MAX + 1);
  const big = await post({ payloadBase64: over.toString('base64') });
  expect([big.status, await big.json()]).toEqual([
    413,
    { error: 'the payload is 262145 bytes; the limit is 262144 bytes (256 KiB)' },
  ]);
  const bigText = await post({ payload: 'a'.repeat(MAX + 1) });
  expect(bigText.status).toBe(413);
  for (const bad of [{ payloadBase64: 'not base64!' }, { payload: 'x', payloadBase64: 'eA==' }, { payloadBase64: 5 }]) {
    const r = await post(bad);
    expect([r.status, await r.json()]).toEqual([400, { error: expect.stringMatching(/base64|must be a JSON object/) }]);
  }
  expect(await items('bin.post')).toHaveLength(1);

  const cliOver = await cli(['create', '--name', 'bin.over', '--binary', '--payload-location', '-'], over);
  expect([cliOver.code, cliOver.stdout, cliOver.stderr]).toEqual([
    2,
    '',
    'ecs-secrets: the payload is 262145 bytes; the limit is 262144 bytes (256 KiB)\n',
  ]);
  expect(await items('bin.over')).toHaveLength(0);
}, 60_000);

test('text secrets keep the original shape: no encoding key, no Binary attribute; 256 KiB of text is fine', async () => {
  const text = 'é'.repeat(MAX / 2);
  expect((await cli(['create', '--name', 'txt.max', '--payload-location', '-'], text)).code).toBe(0);
  const f = json<Record<string, unknown>>(await cli(['fetch', '--name', 'txt.max']));
  expect(f).toEqual({ name: 'txt.max', serial: 1, payload: text, active: true });
  const [item] = await items('txt.max');
  expect(item.Binary).toBeUndefined();
  const r = (await (await fetch(`${d.url}/v1/secrets/txt.max`)).json()) as Record<string, unknown>;
  expect(Object.keys(r)).toEqual(['name', 'serial', 'payload', 'active']);
}, 60_000);
