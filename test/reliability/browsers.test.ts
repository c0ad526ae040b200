/**
 * Browsers cannot reach the daemon, and the original's admin task still can.
 * - DNS rebinding: a Host the sidecar is not reached by is 421, on the hot path (cache warm) and in
 *   express (cache cold) alike; loopback, IP literals, single-label link names, the bind address
 *   and --allowed-host are served.
 * - Cross-site writes (Origin, Sec-Fetch-Site) are 403 and change nothing.
 * - X-Forwarded-For is 400, and so is an absolute-form request target (only proxies receive one).
 * - `curl -X POST -d @password.txt ecs-secrets:8080/latest/secrets/password` (form content type,
 *   JSON body, Host ecs-secrets:8080) stores a version.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { SpawnedDaemon } from '../helpers/daemon';
import { type StandIns, createAppResources, startStandIns } from '../standins';
import { Witness, get, postJson, rawExchange, request, statusesOf } from './support';

const APP = 'browsers';
const w = new Witness('browsers');
let s: StandIns;
let d: SpawnedDaemon;

beforeAll(async () => {
  s = await startStandIns();
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
  d = await w.daemon('browsers', ['--application-name', APP, '--allowed-host', 'secrets.internal.example'], {
    env: s.env,
    waitHealthy: true,
  });
  expect((await postJson(d.port, '/latest/secrets/s', { payload: 'value-1' })).status).toBe(201);
}, 60_000);
afterAll(async () => {
  await w.finish();
  await s?.close();
});

const read = (host: string | undefined, extra: Record<string, string> = {}) =>
  request(d.port, { path: '/latest/secrets/s', headers: { ...(host === undefined ? {} : { host }), ...extra } });

describe('Host header', () => {
  const allowed = () => [
    'localhost',
    `localhost:${d.port}`,
    `LOCALHOST:${d.port}`,
    `127.0.0.1:${d.port}`,
    `[::1]:${d.port}`,
    '10.1.2.3:8080', // the task's own address, e.g. in bridge mode
    '[fd00::12]:8080',
    'ecs-secrets:8080', // a bridge-mode link name
    'ecs-secrets',
    'secrets.internal.example', // --allowed-host
    `Secrets.Internal.Example:${d.port}`,
  ];
  const refused = () => [
    'evil.example.com',
    `evil.example.com:${d.port}`,
    'localhost.evil.example',
    '127.0.0.1.nip.io',
    'secrets.internal.example.evil.example',
    'ecs-secrets:80x',
    '[::1',
  ];

  test.each([
    ['warm cache (hot path)', {}],
    ['cold cache (express)', { 'cache-control': 'no-cache' }],
  ])("%s: the sidecar's own names are served", async (_label, extra) => {
    await read(undefined); // warm
    for (const host of allowed()) {
      const r = await read(host, extra);
      expect({ host, status: r.status }).toEqual({ host, status: 200 });
    }
  });

  test.each([
    ['warm cache (hot path)', {}],
    ['cold cache (express)', { 'cache-control': 'no-cache' }],
  ])('%s: any other Host is 421 with a JSON error and no payload', async (_label, extra) => {
    await read(undefined); // warm
    for (const host of refused()) {
      const r = await read(host, extra);
      expect({ host, status: r.status }).toEqual({ host, status: 421 });
      expect(r.json().error).toMatch(/does not answer to Host/);
      expect(r.text).not.toContain('value-1');
    }
    // Every route, not only reads.
    expect((await request(d.port, { path: '/metrics', headers: { host: 'evil.example.com' } })).status).toBe(421);
    expect((await postJson(d.port, '/latest/secrets/s', { payload: 'x' }, { host: 'evil.example.com' })).status).toBe(
      421,
    );
  });

  test('an empty Host is 421 (sent raw: node:http would fill it in)', async () => {
    const { reply } = await rawExchange(
      d.port,
      'GET /latest/secrets/s HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n',
    );
    expect(statusesOf(reply)).toEqual([421]);
  });

  test.each([
    ['warm cache (hot path)', ''],
    ['cold cache (express)', 'Cache-Control: no-cache\r\n'],
  ])('%s: an absolute-form target is 400 whatever its Host, and serves nothing', async (_label, extra) => {
    await read(undefined); // warm
    for (const target of [
      'http://evil.example/latest/secrets/s',
      `http://localhost:${d.port}/latest/secrets/s`,
      'HTTP://evil.example/metrics',
      '*',
    ]) {
      const { reply } = await rawExchange(
        d.port,
        `GET ${target} HTTP/1.1\r\nHost: localhost\r\n${extra}Connection: close\r\n\r\n`,
      );
      expect({ target, statuses: statusesOf(reply) }).toEqual({ target, statuses: [400] });
      expect(reply).not.toContain('value-1');
    }
  });

  test('HTTP/1.0 without a Host header is served (no browser sends that)', async () => {
    const { reply } = await rawExchange(d.port, 'GET /latest/secrets/s HTTP/1.0\r\n\r\n');
    expect(statusesOf(reply)).toEqual([200]);
  });
});

describe('X-Forwarded-For', () => {
  test('refused with 400, warm or cold', async () => {
    await read(undefined);
    for (const extra of [{}, { 'cache-control': 'no-cache' }] as Array<Record<string, string>>) {
      const r = await read('localhost', { 'x-forwarded-for': '203.0.113.9', ...extra });
      expect(r.status).toBe(400);
      expect(r.json().error).toMatch(/X-Forwarded-For/);
    }
  });
});

describe('cross-site writes', () => {
  const latestSerial = async () =>
    (await get(d.port, '/latest/secrets/s', { 'cache-control': 'no-cache' })).json().serial as number;

  test.each([
    ['Origin of another site', { origin: 'http://evil.example.com' }],
    ['Origin null (sandboxed frame, file:)', { origin: 'null' }],
    ['Origin of the daemon itself', { origin: 'http://localhost:8080' }],
    ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }],
    ['Sec-Fetch-Site: same-origin', { 'sec-fetch-site': 'same-origin' }],
  ])('%s: POST and revoke are 403 and change nothing', async (_label, headers) => {
    const before = await latestSerial();
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const create = await postJson(d.port, '/latest/secrets/s', { payload: 'from-a-page' }, { ...headers, ...form });
    expect(create.status).toBe(403);
    expect(create.json().error).toMatch(/cross-site/);
    const revoke = await request(d.port, { method: 'POST', path: `/latest/revoke/s/${before}`, headers });
    expect(revoke.status).toBe(403);
    expect(await latestSerial()).toBe(before);
  });

  test('reads from a page get no CORS header (the browser hides the answer), and Sec-Fetch-Site: none writes work', async () => {
    const r = await read('localhost', { origin: 'http://evil.example.com' });
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
    expect(
      (await postJson(d.port, '/latest/secrets/s', { payload: 'typed' }, { 'sec-fetch-site': 'none' })).status,
    ).toBe(201);
  });
});

describe("the original's admin task: curl -X POST -d @password.txt ecs-secrets:8080/latest/secrets/password", () => {
  test('the exact bytes curl 7.88 sends: 201, and the payload reads back', async () => {
    const body = '{"payload": "p4ssw0rd-from-curl"}';
    const bytes =
      `POST /latest/secrets/password HTTP/1.1\r\nHost: ecs-secrets:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n` +
      `Content-Length: ${body.length}\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n${body}`;
    const { reply } = await rawExchange(d.port, bytes);
    expect(statusesOf(reply)).toEqual([201]);
    const back = await get(d.port, '/latest/secrets/password', { host: 'ecs-secrets:8080' });
    expect(back.json()).toMatchObject({ payload: 'p4ssw0rd-from-curl', active: true });
  });

  const curl = spawnSync('curl', ['--version']).status === 0;
  (curl ? test : test.skip)('real curl, reaching the daemon by its link name', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-curl-'));
    const file = path.join(dir, 'password.txt');
    fs.writeFileSync(file, '{"payload": "from-real-curl"}\n');
    try {
      // Asynchronously: this process runs the KMS and DynamoDB stand-ins the daemon is waiting on.
      const child = spawn(
        'curl',
        [
          '-s',
          '--max-time',
          '20',
          '--connect-to',
          `ecs-secrets:8080:127.0.0.1:${d.port}`,
          '-X',
          'POST',
          '-d',
          `@${file}`,
          'ecs-secrets:8080/latest/secrets/password',
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(code).toBe(0);
      expect(JSON.parse(stdout)).toMatchObject({ name: 'password', serial: expect.any(Number) });
      expect((await get(d.port, '/latest/secrets/password')).json().payload).toBe('from-real-curl');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
