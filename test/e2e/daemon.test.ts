/**
 * The daemon over real HTTP, as a separate process, against the stand-ins. Backend calls are
 * counted at the stand-ins, so cache claims are checked where they matter.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { json, runCli } from '../helpers/cli';
import { type SpawnedDaemon, spawnDaemon } from '../helpers/daemon';
import { type StandIns, createAppResources, startStandIns } from '../standins';

const APP = 'web';
let s: StandIns;
let d: SpawnedDaemon;

const cli = (args: string[]) => runCli(['--application-name', APP, ...args], { env: s.env });
// Without watching: this suite is about the TTL cache, counts backend calls exactly, and writes
// behind the daemon's back that must stay unseen; watching is test/e2e/propagation.test.ts's.
const daemon = (args: string[] = [], env: Record<string, string> = {}) =>
  spawnDaemon(['--application-name', APP, '--watch-interval', '0', ...args], {
    env: { ...s.env, ...env },
    waitHealthy: true,
  });

async function get(url: string, headers: Record<string, string> = {}) {
  const r = await fetch(url, { headers });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, body: text ? JSON.parse(text) : undefined };
}
function rawRequest(port: number, method: string, p: string, headers: Record<string, string>, body?: string) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: p, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = { 'content-type': 'application/json' },
) {
  const r = await fetch(url, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  s = await startStandIns();
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
  await cli(['create', '--name', 'db.password', '--payload', 'v1']);
  await cli(['create', '--name', 'db.password', '--payload', 'v2']);
  await cli(['create', '--name', 'db.password', '--payload', 'v3']);
  await cli(['revoke', '--name', 'db.password', '--serial', '3']);
  d = await daemon();
});
afterAll(async () => {
  await d?.stop();
  await s.close();
});

describe.each(['/latest', '/v1'])('routes under %s', (prefix) => {
  test('GET /secrets/:name is the latest ACTIVE version (a revoked latest is skipped)', async () => {
    const r = await get(`${d.url}${prefix}/secrets/db.password`);
    expect([r.status, r.body]).toEqual([200, { name: 'db.password', serial: 2, payload: 'v2', active: true }]);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.headers.get('x-powered-by')).toBeNull();
    expect(r.headers.get('x-request-id')).toBeTruthy();
  });

  test('GET /secrets/:name/:serial, including a revoked serial', async () => {
    expect((await get(`${d.url}${prefix}/secrets/db.password/1`)).body).toEqual({
      name: 'db.password',
      serial: 1,
      payload: 'v1',
      active: true,
    });
    expect((await get(`${d.url}${prefix}/secrets/db.password/3`)).body).toEqual({
      name: 'db.password',
      serial: 3,
      payload: '',
      active: false,
    });
  });

  test('GET /secrets/version and /version give the real version fields', async () => {
    const version = require('../../package.json').version;
    for (const p of ['/secrets/version', '/version']) {
      const r = await get(`${d.url}${prefix}${p}`);
      expect([r.status, r.body]).toEqual([
        200,
        { application: 'ecs-secrets', applicationVersion: version, apiVersion: 'v1' },
      ]);
    }
  });

  test('POST /secrets/:name creates a version; POST /revoke/:name/:serial revokes it', async () => {
    const name = `posted${prefix.replace('/', '.')}`;
    const c = await post(`${d.url}${prefix}/secrets/${name}`, { payload: 'hello' });
    expect([c.status, c.body]).toEqual([201, { name, serial: 1 }]);
    expect((await get(`${d.url}${prefix}/secrets/${name}`)).body).toEqual({
      name,
      serial: 1,
      payload: 'hello',
      active: true,
    });
    const r = await post(`${d.url}${prefix}/revoke/${name}/1`, '');
    expect([r.status, r.body]).toEqual([200, { name, serial: 1, active: false }]);
    expect((await get(`${d.url}${prefix}/secrets/${name}`)).status).toBe(404);
    expect((await get(`${d.url}${prefix}/secrets/${name}/1`)).body).toEqual({
      name,
      serial: 1,
      payload: '',
      active: false,
    });
  });

  test('unknown secret or serial: 404 JSON', async () => {
    expect(await get(`${d.url}${prefix}/secrets/nope`)).toMatchObject({
      status: 404,
      body: { error: expect.stringMatching(/not found/) },
    });
    expect(await get(`${d.url}${prefix}/secrets/db.password/99`)).toMatchObject({
      status: 404,
      body: { error: expect.stringMatching(/no serial 99/) },
    });
    expect((await post(`${d.url}${prefix}/revoke/db.password/99`, '')).status).toBe(404);
  });
});

test('/health and /metrics', async () => {
  expect(await get(`${d.url}/health`)).toMatchObject({ status: 200, body: { status: 'ok' } });
  const m = await fetch(`${d.url}/metrics`);
  expect(m.status).toBe(200);
  expect(m.headers.get('content-type')).toMatch(/^text\/plain/);
  const text = await m.text();
  for (const name of [
    'ecs_secrets_http_requests_total{method="GET",route="/latest/secrets/:name",status="200"}',
    'ecs_secrets_http_request_duration_seconds_bucket',
    'ecs_secrets_cache_events_total{outcome="hit"}',
    'ecs_secrets_cache_events_total{outcome="miss"}',
    'ecs_secrets_backend_calls_total{service="dynamodb",operation="Query"}',
    'ecs_secrets_backend_calls_total{service="kms",operation="Decrypt"}',
  ])
    expect(text).toContain(name);
});

describe('cache', () => {
  test('N reads within the TTL: one DynamoDB read and no KMS call after the first', async () => {
    await cli(['create', '--name', 'hot', '--payload', 'h']);
    s.dynamo.resetCounts();
    s.kms.resetCounts();
    const first = await get(`${d.url}/latest/secrets/hot`);
    expect(first.headers.get('x-ecs-secrets-cache')).toBe('miss');
    expect(s.kms.counts.Decrypt).toBe(1);
    const afterFirst = { ddb: s.dynamo.counts.total, kms: s.kms.counts.total };
    expect(afterFirst.ddb).toBe(1);
    for (let i = 0; i < 50; i++) {
      const r = await get(`${d.url}/latest/secrets/hot`);
      expect(r.body).toEqual({ name: 'hot', serial: 1, payload: 'h', active: true });
      expect(r.headers.get('x-ecs-secrets-cache')).toBe('hit');
    }
    expect({ ddb: s.dynamo.counts.total, kms: s.kms.counts.total }).toEqual(afterFirst);
  });

  test('20 concurrent cold reads cause one backend read', async () => {
    await cli(['create', '--name', 'cold', '--payload', 'c']);
    s.dynamo.resetCounts();
    s.kms.resetCounts();
    await s.dynamo.setFault({ delayMs: 200 }); // keep the first read in flight while the others arrive
    try {
      const all = await Promise.all(Array.from({ length: 20 }, () => get(`${d.url}/latest/secrets/cold`)));
      expect(all.map((r) => r.status)).toEqual(Array(20).fill(200));
    } finally {
      await s.dynamo.setFault(null);
    }
    expect(s.dynamo.counts.Query).toBe(1);
    expect(s.kms.counts.Decrypt).toBe(1);
  });

  test('a POST then a GET on the same daemon returns the new version at once', async () => {
    await get(`${d.url}/latest/secrets/hot`); // cached at serial 1
    expect((await post(`${d.url}/latest/secrets/hot`, { payload: 'h2' })).body).toEqual({ name: 'hot', serial: 2 });
    expect((await get(`${d.url}/latest/secrets/hot`)).body).toMatchObject({ serial: 2, payload: 'h2' });
  });

  test('a revoke through the daemon is visible at once, even for the cached latest', async () => {
    expect((await get(`${d.url}/latest/secrets/hot`)).body).toMatchObject({ serial: 2 });
    await post(`${d.url}/latest/revoke/hot/2`, '');
    expect((await get(`${d.url}/latest/secrets/hot`)).body).toMatchObject({ serial: 1, payload: 'h' });
    expect((await get(`${d.url}/latest/secrets/hot/2`)).body).toEqual({
      name: 'hot',
      serial: 2,
      payload: '',
      active: false,
    });
  });

  test('Cache-Control: no-cache forces a backend read', async () => {
    await cli(['create', '--name', 'hot', '--payload', 'h3']); // written behind the daemon's back
    expect((await get(`${d.url}/latest/secrets/hot`)).body).toMatchObject({ serial: 1 }); // still cached
    s.dynamo.resetCounts();
    const r = await get(`${d.url}/latest/secrets/hot`, { 'cache-control': 'no-cache' });
    expect(r.body).toMatchObject({ serial: 3, payload: 'h3' });
    expect(r.headers.get('x-ecs-secrets-cache')).toBe('bypass');
    expect(s.dynamo.counts.Query).toBe(1);
    expect((await get(`${d.url}/latest/secrets/hot`)).body).toMatchObject({ serial: 3 }); // and refreshed the cache
  });

  test('--cache-ttl 0 reads the backend every time', async () => {
    const d0 = await daemon(['--cache-ttl', '0']);
    try {
      await get(`${d0.url}/latest/secrets/hot`);
      s.dynamo.resetCounts();
      for (let i = 0; i < 3; i++) await get(`${d0.url}/latest/secrets/hot`);
      expect(s.dynamo.counts.Query).toBe(3);
    } finally {
      await d0.stop();
    }
  });
});

describe('backend outage', () => {
  test('cached: served stale within the window; uncached: 503 quickly; recovery after', async () => {
    const d2 = await daemon(['--cache-ttl', '1', '--stale-if-error', '60']);
    try {
      expect((await get(`${d2.url}/latest/secrets/db.password`)).status).toBe(200);
      await s.dynamo.stop();
      await new Promise((r) => setTimeout(r, 1100)); // past the TTL
      const stale = await get(`${d2.url}/latest/secrets/db.password`);
      expect([stale.status, stale.body]).toEqual([
        200,
        { name: 'db.password', serial: 2, payload: 'v2', active: true },
      ]);
      expect(stale.headers.get('x-ecs-secrets-cache')).toBe('stale');
      expect(stale.headers.get('warning')).toMatch(/110/);
      expect(await d2.waitForLog(/serving a stale cached value/)).toMatch(/serving a stale cached value/);
      const t0 = Date.now();
      const uncached = await get(`${d2.url}/latest/secrets/never.read`);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(uncached).toMatchObject({ status: 503, body: { error: expect.stringMatching(/unavailable/) } });
      await s.dynamo.start();
      const back = await get(`${d2.url}/latest/secrets/never.read`);
      expect(back.status).toBe(404); // a real answer again
      const fresh = await get(`${d2.url}/latest/secrets/db.password`);
      expect(fresh.headers.get('x-ecs-secrets-cache')).toMatch(/miss|hit/);
    } finally {
      if (!s.dynamo.listening) await s.dynamo.start();
      await d2.stop();
    }
  });

  test('a port in use is exit 1 (the machine), a --host that is no address here is exit 2 (the command line); one line each', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (busy.address() as net.AddressInfo).port;
      const inUse = await cli(['daemon', '--host', '127.0.0.1', '--port', String(port)]);
      expect([inUse.code, inUse.stdout, inUse.stderr.trim().split('\n')]).toEqual([
        1,
        '',
        [`ecs-secrets: cannot listen on 127.0.0.1:${port}: the port is in use`],
      ]);
      const foreign = await cli(['daemon', '--host', '192.0.2.1', '--port', '0']); // TEST-NET-1: no address of this machine
      expect([foreign.code, foreign.stdout, foreign.stderr.trim().split('\n')]).toEqual([
        2,
        '',
        ['ecs-secrets: cannot listen on 192.0.2.1:0: not an address of this machine'],
      ]);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });

  test('/health is 503 until the table has been reached, then 200', async () => {
    await s.dynamo.stop();
    let d3: SpawnedDaemon | undefined;
    try {
      d3 = await spawnDaemon(['--application-name', APP], { env: s.env });
      const before = await get(`${d3.url}/health`);
      expect(before.status).toBe(503);
      await s.dynamo.start();
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 100));
        status = (await get(`${d3.url}/health`)).status;
      }
      expect(status).toBe(200);
    } finally {
      if (!s.dynamo.listening) await s.dynamo.start();
      await d3?.stop();
    }
  });
});

describe('access control', () => {
  let tokenDir: string;
  let tokenFile: string;
  beforeAll(() => {
    tokenDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-token-'));
    tokenFile = path.join(tokenDir, 'token');
    fs.writeFileSync(tokenFile, 'sesame\n', { mode: 0o600 });
  });
  afterAll(() => fs.rmSync(tokenDir, { recursive: true, force: true }));

  test.each([
    ['--token-file', () => ['--token-file', tokenFile], {}],
    ['ECS_SECRETS_TOKEN', () => [], { ECS_SECRETS_TOKEN: 'sesame' }],
  ])('a token via %s is required on every route but /health', async (_label, args, env) => {
    const dt = await daemon(args(), env as Record<string, string>);
    try {
      for (const [method, p] of [
        ['GET', '/latest/secrets/db.password'],
        ['GET', '/v1/secrets/db.password/1'],
        ['GET', '/latest/version'],
        ['GET', '/v1/secrets/version'],
        ['GET', '/metrics'],
        ['POST', '/latest/secrets/x'],
        ['POST', '/latest/revoke/x/1'],
      ]) {
        for (const headers of [{}, { 'x-ecs-secrets-token': 'wrong' }, { 'x-ecs-secrets-token': 'sesam' }] as Array<
          Record<string, string>
        >) {
          const r = await fetch(`${dt.url}${p}`, {
            method,
            headers: { 'content-type': 'application/json', ...headers },
            body: method === 'POST' ? '{"payload":"x"}' : undefined,
          });
          expect([method, p, r.status]).toEqual([method, p, 401]);
          expect(await r.json()).toEqual({ error: expect.stringMatching(/X-ECS-Secrets-Token/i) });
        }
      }
      expect((await get(`${dt.url}/health`)).status).toBe(200);
      const ok = await get(`${dt.url}/latest/secrets/db.password`, { 'x-ecs-secrets-token': 'sesame' });
      expect(ok.body).toMatchObject({ serial: 2 });
      expect(dt.logs()).not.toContain('sesame');
    } finally {
      await dt.stop();
    }
  });

  test('--read-only refuses writes with 403 and still serves reads and /health', async () => {
    const dr = await daemon(['--read-only']);
    try {
      expect(await post(`${dr.url}/latest/secrets/x`, { payload: 'x' })).toMatchObject({
        status: 403,
        body: { error: expect.stringMatching(/read-only/) },
      });
      expect((await post(`${dr.url}/v1/revoke/db.password/1`, '')).status).toBe(403);
      expect((await get(`${dr.url}/v1/secrets/db.password/1`)).body).toMatchObject({ active: true });
      expect((await get(`${dr.url}/health`)).status).toBe(200);
    } finally {
      await dr.stop();
    }
  });
});

describe('bad requests get the right 4xx JSON, never 500, and the daemon keeps serving', () => {
  const big = JSON.stringify({ payload: 'x'.repeat(257 * 1024) });
  const cases: Array<[string, string, string, number, string | undefined, Record<string, string>]> = [
    ['bad JSON', 'POST', '/latest/secrets/a', 400, '{"payload":', { 'content-type': 'application/json' }],
    ['JSON not an object', 'POST', '/latest/secrets/a', 400, '"just a string"', { 'content-type': 'application/json' }],
    [
      'payload not a string',
      'POST',
      '/latest/secrets/a',
      400,
      '{"payload":42}',
      { 'content-type': 'application/json' },
    ],
    ['empty payload', 'POST', '/latest/secrets/a', 400, '{"payload":""}', { 'content-type': 'application/json' }],
    ['wrong content type', 'POST', '/latest/secrets/a', 415, '{"payload":"x"}', { 'content-type': 'text/plain' }],
    // curl -d's form type is read as JSON (the original's admin task sends one): a form body is not JSON.
    [
      'form content type, form body',
      'POST',
      '/latest/secrets/a',
      400,
      'payload=x',
      { 'content-type': 'application/x-www-form-urlencoded' },
    ],
    ['257 KiB body', 'POST', '/latest/secrets/a', 413, big, { 'content-type': 'application/json' }],
    ['name with %2F', 'GET', '/latest/secrets/a%2Fb', 400, undefined, {}],
    ['name ..', 'GET', '/latest/secrets/..', 400, undefined, {}],
    ['name %2E%2E', 'GET', '/latest/secrets/%2E%2E', 400, undefined, {}],
    ['name with space', 'GET', '/latest/secrets/a%20b', 400, undefined, {}],
    ['300-character name', 'GET', `/latest/secrets/${'n'.repeat(300)}`, 400, undefined, {}],
    ['bad percent-encoding', 'GET', '/latest/secrets/%E0%A4%A', 400, undefined, {}],
    ['serial abc', 'GET', '/latest/secrets/a/abc', 400, undefined, {}],
    ['serial -1', 'GET', '/latest/secrets/a/-1', 400, undefined, {}],
    ['serial 1e3', 'GET', '/v1/secrets/a/1e3', 400, undefined, {}],
    ['serial 0', 'POST', '/v1/revoke/a/0', 400, undefined, {}],
    ['unknown route', 'GET', '/latest/nothing', 404, undefined, {}],
    ['unknown prefix', 'GET', '/v2/secrets/a', 404, undefined, {}],
    ['wrong method', 'DELETE', '/latest/secrets/a', 404, undefined, {}],
    // Express would answer OPTIONS itself with 200 and an Allow header naming the methods of the path.
    ['OPTIONS on a secret', 'OPTIONS', '/latest/secrets/db.password', 404, undefined, {}],
    ['OPTIONS on revoke', 'OPTIONS', '/v1/revoke/a/1', 404, undefined, {}],
    ['OPTIONS on health', 'OPTIONS', '/health', 404, undefined, {}],
    ['too deep', 'GET', '/latest/secrets/a/1/2', 404, undefined, {}],
  ];
  test.each(cases)('%s', async (_label, method, p, status, body, headers) => {
    // node:http sends the path as written (fetch would normalise %2E%2E and ..).
    const r = await rawRequest(d.port, method, p, headers, body);
    expect(r.status).toBe(status);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.headers.allow).toBeUndefined();
    const parsed = JSON.parse(r.text) as Record<string, string>;
    expect(Object.keys(parsed)).toEqual(['error']);
    expect(parsed.error).not.toMatch(/\n\s+at /);
    expect(parsed.error).not.toContain('xxxxxxxxxx'); // the payload is never echoed
    expect((await get(`${d.url}/latest/secrets/db.password`)).status).toBe(200);
  });

  test('a body that is JSON but no object is told so; one that is no JSON is told that', async () => {
    for (const [body, message] of [
      ['null', /must be a JSON object/],
      ['"x"', /must be a JSON object/],
      ['5', /must be a JSON object/],
      ['[]', /must be a JSON object/],
      ['{"payload": ', /not valid JSON/],
      ['nul', /not valid JSON/],
    ] as const) {
      const r = await rawRequest(d.port, 'POST', '/latest/secrets/shape', { 'content-type': 'application/json' }, body);
      expect({ body, status: r.status, error: JSON.parse(r.text).error }).toEqual({
        body,
        status: 400,
        error: expect.stringMatching(message),
      });
    }
  });

  test('a malformed request line gets a 400 and the daemon keeps serving', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(d.port, '127.0.0.1', () => sock.end('GARBAGE / HTTP/9.9\r\n\r\n'));
      let data = '';
      sock.on('data', (c) => (data += c));
      sock.on('end', () => resolve(data));
      sock.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    expect((await get(`${d.url}/latest/secrets/db.password`)).status).toBe(200);
  });

  test('no 500 was ever logged', () => {
    expect(d.logs()).not.toMatch(/"status":500/); // (503s are /health before the first backend contact)
    expect(d.logs()).not.toMatch(/internal error/);
  });
});

const logLines = (x: SpawnedDaemon) =>
  x
    .logs()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

test('logs: one JSON line per request an operator needs, with method, route pattern, status, duration, request id and the name; never payloads', async () => {
  // A bypass of the cache reaches the backend: logged by default, like a miss.
  await get(`${d.url}/latest/secrets/db.password`, { 'x-request-id': 'trace-123', 'cache-control': 'no-cache' });
  await d.waitForLog(/"reqId":"trace-123"/);
  const lines = logLines(d);
  const line = lines.find((l) => l.reqId === 'trace-123');
  expect(line).toMatchObject({
    level: 30,
    method: 'GET',
    route: '/latest/secrets/:name',
    status: 200,
    cache: 'bypass',
    secret: 'db.password',
    msg: 'request',
  });
  expect(typeof line.ms).toBe('number');
  expect(lines.some((l) => l.msg === 'daemon started')).toBe(true);
  for (const secret of ['v1', 'v2', 'hello', '"h2"', 'h3'])
    expect(d.logs()).not.toContain(`"${secret.replace(/"/g, '')}"`);
});

describe('--access-log', () => {
  let dt: SpawnedDaemon;
  let tokenDir: string;
  beforeAll(async () => {
    tokenDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-access-log-'));
    fs.writeFileSync(path.join(tokenDir, 'token'), 'access-log-token', { mode: 0o600 });
    dt = await daemon(['--token-file', path.join(tokenDir, 'token')]);
  });
  afterAll(async () => {
    await dt?.stop();
    fs.rmSync(tokenDir, { recursive: true, force: true });
  });
  const token = { 'x-ecs-secrets-token': 'access-log-token' };

  test('by default: a 404 and a 401 name the secret or path and the reason; a cache hit is counted, not logged', async () => {
    expect((await get(`${dt.url}/latest/secrets/no.such`, { ...token, 'x-request-id': 'miss-404' })).status).toBe(404);
    expect((await get(`${dt.url}/latest/secrets/db.password`, { 'x-request-id': 'no-token-401' })).status).toBe(401);
    expect((await get(`${dt.url}/latest/secrets/db.password`, { ...token, 'x-request-id': 'fill-1' })).status).toBe(
      200,
    );
    const hit = await get(`${dt.url}/latest/secrets/db.password`, { ...token, 'x-request-id': 'hit-1' });
    expect(hit.headers.get('x-ecs-secrets-cache')).toBe('hit');
    await dt.waitForLog(/"reqId":"fill-1"/);
    // The hit's line would have been written with the fill's (same buffer, at most 100 ms apart);
    // a request after it makes sure anything pending was flushed.
    await get(`${dt.url}/latest/secrets/also.missing`, { ...token, 'x-request-id': 'after-hit' });
    await dt.waitForLog(/"reqId":"after-hit"/);
    const lines = logLines(dt);
    expect(lines.find((l) => l.reqId === 'miss-404')).toMatchObject({
      route: '/latest/secrets/:name',
      status: 404,
      secret: 'no.such',
      error: expect.stringMatching(/no\.such/),
    });
    expect(lines.find((l) => l.reqId === 'no-token-401')).toMatchObject({
      route: 'unmatched',
      status: 401,
      path: '/latest/secrets/db.password',
      error: 'missing x-ecs-secrets-token header',
    });
    expect(lines.find((l) => l.reqId === 'fill-1')).toMatchObject({
      status: 200,
      cache: 'miss',
      secret: 'db.password',
    });
    expect(lines.find((l) => l.reqId === 'hit-1')).toBeUndefined();
    expect(dt.logs()).not.toContain('access-log-token');
    const metrics = await fetch(`${dt.url}/metrics`, { headers: token }).then((r) => r.text());
    expect(metrics).toMatch(/^ecs_secrets_cache_events_total\{outcome="hit"\} 1$/m);
    expect(metrics).toMatch(
      /^ecs_secrets_http_requests_total\{method="GET",route="\/latest\/secrets\/:name",status="200"\} 2$/m,
    );
  });

  test('all: every request, hits and health checks included; off: none', async () => {
    const all = await daemon(['--access-log', 'all']);
    const off = await daemon(['--access-log', 'off']);
    try {
      for (const x of [all, off]) {
        await get(`${x.url}/latest/secrets/db.password`);
        await get(`${x.url}/latest/secrets/db.password`, { 'x-request-id': 'hit-all' });
        await get(`${x.url}/latest/secrets/no.such`, { 'x-request-id': 'miss-all' });
      }
      await all.waitForLog(/"reqId":"miss-all"/);
      const lines = logLines(all);
      expect(lines.find((l) => l.reqId === 'hit-all')).toMatchObject({
        level: 30,
        status: 200,
        cache: 'hit',
        secret: 'db.password',
      });
      expect(lines.some((l) => l.msg === 'request' && l.route === '/health' && l.status === 200)).toBe(true);
      await off.stop();
      expect(logLines(off).filter((l) => l.msg === 'request')).toEqual([]);
    } finally {
      await all.stop();
      await off.stop();
    }
  });
});

test('SIGTERM during a slow in-flight request: the request completes and the process exits 0', async () => {
  const dg = await daemon();
  await cli(['create', '--name', 'slow', '--payload', 'patience']);
  await s.dynamo.setFault({ delayMs: 1500 });
  try {
    const inflight = get(`${dg.url}/latest/secrets/slow`);
    await new Promise((r) => setTimeout(r, 300));
    const code = dg.stop('SIGTERM');
    const r = await inflight;
    expect([r.status, r.body]).toEqual([200, { name: 'slow', serial: 1, payload: 'patience', active: true }]);
    expect(await code).toBe(0);
    expect(dg.logs()).toMatch(/shutting down/);
    expect(dg.logs()).toMatch(/"msg":"stopped"/);
  } finally {
    await s.dynamo.setFault(null);
  }
});

test('bad daemon flags fail at start with one line and exit 2', async () => {
  for (const [args, pattern] of [
    [['--port', 'http'], /invalid --port/],
    [['--cache-ttl', '-5'], /invalid --cache-ttl/],
    [['--token-file', '/nonexistent/token'], /cannot read --token-file/],
  ] as Array<[string[], RegExp]>) {
    const r = await runCli(['daemon', '--application-name', APP, ...args], { env: s.env });
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(pattern);
  }
  expect(json(await cli(['fetch', '--name', 'db.password']))).toMatchObject({ serial: 2 }); // and nothing broke
});

test('listings are cached and shared like reads: 40 concurrent listings cost one Scan, every prefix answered from it', async () => {
  const ld = await daemon();
  try {
    s.dynamo.resetCounts();
    const scans = () => s.dynamo.counts.Scan ?? 0;
    const listing = (prefix?: string, headers: Record<string, string> = {}) =>
      get(`${ld.url}/latest/secrets${prefix === undefined ? '' : `?prefix=${prefix}`}`, headers);
    const concurrent = await Promise.all(Array.from({ length: 40 }, () => listing('db.')));
    for (const r of concurrent) expect([r.status, r.body]).toEqual([200, [{ name: 'db.password', latestSerial: 3 }]]);
    expect(scans()).toBe(1);
    // Within the TTL, listings under any prefix come from that Scan.
    for (const prefix of ['db.', 'd', 'nothing.', undefined]) {
      const r = await listing(prefix);
      expect([r.status, r.headers.get('x-ecs-secrets-cache')]).toEqual([200, 'hit']);
    }
    expect((await listing('nothing.')).body).toEqual([]);
    expect(scans()).toBe(1);
    // A write through this daemon shows in the next listing; no-cache reads the table again.
    expect((await post(`${ld.url}/latest/secrets/db.user`, { payload: 'u' })).status).toBe(201);
    const after = await listing('db.');
    expect([after.headers.get('x-ecs-secrets-cache'), after.body]).toEqual([
      'miss',
      [
        { name: 'db.password', latestSerial: 3 },
        { name: 'db.user', latestSerial: 1 },
      ],
    ]);
    expect(scans()).toBe(2);
    expect((await listing('db.', { 'cache-control': 'no-cache' })).headers.get('x-ecs-secrets-cache')).toBe('bypass');
    expect(scans()).toBe(3);
  } finally {
    await ld.stop();
  }
}, 60_000);
