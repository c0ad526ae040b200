/**
 * Hostile input, property-based (fast-check), against a --local daemon and the CLI on the same
 * data dir: names, serials and payloads (unicode, control characters, lone surrogates, maximum
 * and over-maximum sizes), request bodies, and raw HTTP (malformed request lines, huge headers,
 * wrong methods, path traversal, percent-encoding tricks, pipelining). Never a 500, never a
 * crash, never a payload in a response it does not belong to, and the daemon keeps serving.
 * At the end, every file in the data dir and every byte of process output is scanned for the canary.
 */
import { gzipSync } from 'node:zlib';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import type { SpawnedDaemon } from '../helpers/daemon';
import { json } from '../helpers/cli';
import {
  Witness,
  expectCleanFailure,
  get,
  loggedErrors,
  postJson,
  rawExchange,
  request,
  statusesOf,
  walk,
} from './support';

const APP = 'hostile';
const MAX = 256 * 1024;
const w = new Witness('hostile');
let dir: string;
let d: SpawnedDaemon;

/**
 * What the store holds, kept up to date by every write the tests make (the raw fuzzing may create
 * and revoke versions too). Seeded payloads carry MARK, so any response holding one can be checked.
 */
const MARK = 'PAYLOAD-MARK-';
const truth = new Map<string, Array<{ payload: string; active: boolean }>>();
function learnCreate(name: string, serial: number, payload: string): void {
  const versions = truth.get(name) ?? [];
  versions[serial - 1] = { payload, active: true };
  truth.set(name, versions);
}
function learnRevoke(name: string, serial: number): void {
  const v = truth.get(name)?.[serial - 1];
  if (v) v.active = false;
}
const SECRET_NAME = /^[A-Za-z0-9._-]{1,255}$/;
const validName = (n: string) => SECRET_NAME.test(n) && n !== '.' && n !== '..';
const validSerial = (s: string) => /^[1-9][0-9]{0,15}$/.test(s) && Number.isSafeInteger(Number(s));

const local = (args: string[], input?: string | Buffer) =>
  w.cli(['--local', '--data-dir', dir, '--application-name', APP, ...args], {
    input: input as string | undefined,
    killAfterMs: 30_000,
  });

beforeAll(async () => {
  dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-hostile-')), 'data'); // created by the product
  d = await w.daemon('local', ['--local', '--data-dir', dir, '--application-name', APP], { waitHealthy: true });
  for (const [name, payload] of [
    ['known', `${MARK}known-1`],
    ['known', `${MARK}known-2`],
    ['gone', `${MARK}gone-1`],
    ['canary.secret', w.canary],
  ]) {
    const r = await postJson(d.port, `/latest/secrets/${name}`, { payload });
    expect(r.status).toBe(201);
    learnCreate(name, r.json().serial as number, payload);
  }
  w.wrote();
  expect((await postJson(d.port, '/latest/revoke/gone/1', '')).status).toBe(200);
  learnRevoke('gone', 1);
}, 60_000);
afterAll(async () => {
  await w.finish();
  if (dir) fs.rmSync(path.dirname(dir), { recursive: true, force: true });
});

// ---- what a response may contain ---------------------------------------------------------

/** The record a GET of name[/serial] must answer with; undefined for "not found". */
function seeded(
  name: string,
  serial?: number,
): { name: string; serial: number; payload: string; active: boolean } | undefined {
  const versions = truth.get(name);
  if (!versions) return undefined;
  if (serial === undefined) {
    for (let i = versions.length - 1; i >= 0; i--)
      if (versions[i]?.active) return { name, serial: i + 1, payload: versions[i].payload, active: true };
    return undefined;
  }
  const v = versions[serial - 1];
  if (!v) return undefined;
  return v.active ? { name, serial, payload: v.payload, active: true } : { name, serial, payload: '', active: false };
}

/**
 * A response body may hold a seeded payload (or the canary) only as the payload of the 200 record
 * of that very secret and serial. Returns a complaint, or undefined.
 */
function misplacedPayload(status: number, body: string): string | undefined {
  if (!body.includes(MARK) && !body.includes(w.canary)) return undefined;
  if (status !== 200) return `payload in a ${status} response: ${body.slice(0, 200)}`;
  let rec: { name?: string; serial?: number; payload?: string };
  try {
    rec = JSON.parse(body);
  } catch {
    return `payload in a non-JSON 200: ${body.slice(0, 200)}`;
  }
  const want =
    typeof rec.name === 'string' && typeof rec.serial === 'number' ? seeded(rec.name, rec.serial) : undefined;
  if (!want || want.payload !== rec.payload)
    return `a payload that is not ${rec.name}#${rec.serial}'s: ${body.slice(0, 200)}`;
  return undefined;
}

/** Split a raw reply into responses: status and body. */
function responsesOf(reply: string): Array<{ status: number; body: string }> {
  return reply
    .split(/(?=HTTP\/1\.[01] \d{3} )/)
    .filter((chunk) => /^HTTP\/1\.[01] \d{3} /.test(chunk))
    .map((chunk) => {
      const at = chunk.indexOf('\r\n\r\n');
      return { status: Number(chunk.slice(9, 12)), body: at < 0 ? '' : chunk.slice(at + 4) };
    });
}

/** Re-learn one secret's versions from the store (CLI history, then each serial through the daemon). */
async function resync(name: string): Promise<void> {
  const h = await local(['history', '--name', name]);
  expect(h.code).toBe(0);
  const versions: Array<{ payload: string; active: boolean }> = [];
  for (const { serial } of json<Array<{ serial: number }>>(h)) {
    const r = await get(d.port, `/latest/secrets/${name}/${serial}`, { 'cache-control': 'no-cache' });
    const rec = r.json() as { payload: string; active: boolean };
    const known = truth.get(name)?.[serial - 1];
    // A revoked record has no payload to read: keep the one we knew.
    versions[serial - 1] = { payload: rec.active ? rec.payload : (known?.payload ?? ''), active: rec.active };
  }
  truth.set(name, versions);
}

async function stillServing(): Promise<void> {
  expect(d.child.exitCode).toBeNull();
  const r = await get(d.port, '/latest/secrets/known/1');
  expect([r.status, r.json()]).toEqual([200, seeded('known', 1)]);
}

// ---- encodings of a path segment ------------------------------------------------------------

const hex = (b: number) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
const ENCODERS: Record<string, (s: string) => string> = {
  component: (s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '\ufffd')),
  everyByte: (s) => [...Buffer.from(s, 'utf8')].map(hex).join(''),
  lowerHex: (s) => [...Buffer.from(s, 'utf8')].map((b) => hex(b).toLowerCase()).join(''),
  minimal: (s) =>
    [...Buffer.from(s, 'utf8')]
      .map((b) =>
        b < 0x80 && /[A-Za-z0-9._~!$&'()*+,;=:@-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : hex(b),
      )
      .join(''),
};
const encoderArb = fc.constantFrom(...Object.keys(ENCODERS));
const prefixArb = fc.constantFrom('/latest', '/v1');
/** What the daemon sees after percent-decoding (lone surrogates cannot travel: they become U+FFFD). */
const decoded = (s: string) => Buffer.from(s, 'utf8').toString('utf8');

const nameArb = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.stringMatching(/^[A-Za-z0-9._-]{1,40}$/),
  fc.string({
    unit: fc.constantFrom('.', '/', '\\', '%', '\0', '\n', '\u202e', '\uff0e', '\u2215', 'a', '#', '?', ' '),
    minLength: 1,
    maxLength: 12,
  }),
  fc.constantFrom(
    'known',
    'canary.secret',
    'gone',
    '.',
    '..',
    '...',
    'known/..',
    '../known',
    '..\\known',
    'known\0',
    'KNOWN',
    'known ',
    ' known',
    'n'.repeat(255),
    'n'.repeat(256),
    'health',
    'metrics',
    '%2e%2e',
    '%252e%252e',
    'known%2F1',
    '\ud800',
    'known\ud800',
  ),
);

describe('names: GET /{latest,v1}/secrets/<any name, any encoding>', () => {
  test('exactly 200 (the right record), 404 or 400; never a 500 or another secret', async () => {
    await fc.assert(
      fc.asyncProperty(nameArb, encoderArb, prefixArb, async (name, enc, prefix) => {
        const segment = ENCODERS[enc](name);
        const r = await get(d.port, `${prefix}/secrets/${segment}`);
        expect(misplacedPayload(r.status, r.text)).toBeUndefined();
        const seen = decoded(name);
        if (seen === '')
          expect(r.status).toBe(404); // no name: no route
        else if (seen === 'version') expect(r.status).toBe(200);
        else if (!validName(seen)) expect({ seen, status: r.status }).toEqual({ seen, status: 400 });
        else {
          const want = seeded(seen);
          if (want) expect({ seen, status: r.status, body: r.json() }).toEqual({ seen, status: 200, body: want });
          else expect({ seen, status: r.status }).toEqual({ seen, status: 404 });
        }
        expect(Object.keys(r.json())).toEqual(r.status === 200 ? expect.any(Array) : ['error']);
      }),
      { numRuns: 300 },
    );
    await stillServing();
  }, 60_000);
});

describe('serials: GET /{latest,v1}/secrets/known/<any serial>', () => {
  const serialArb = fc.oneof(
    fc.integer().map(String),
    fc.double().map(String),
    fc.bigInt().map(String),
    fc.string({ unit: 'binary', maxLength: 20 }),
    fc.string({
      unit: fc.constantFrom('0', '1', '2', '9', 'e', '.', '-', '+', 'x', ' ', '\uff11', '\u0661'),
      minLength: 1,
      maxLength: 18,
    }),
    fc.constantFrom(
      '1',
      '2',
      '3',
      '01',
      '0',
      '-0',
      '+1',
      '1e0',
      '0x1',
      '1.0',
      ' 1',
      '1 ',
      '\uff11',
      '9007199254740991',
      '9007199254740992',
      '99999999999999999',
      'Infinity',
      'NaN',
    ),
  );
  test('exactly 200 (the right version), 404 or 400; never a 500 or another version', async () => {
    await fc.assert(
      fc.asyncProperty(serialArb, encoderArb, prefixArb, async (serial, enc, prefix) => {
        const r = await get(d.port, `${prefix}/secrets/known/${ENCODERS[enc](serial)}`);
        expect(misplacedPayload(r.status, r.text)).toBeUndefined();
        const seen = decoded(serial);
        if (seen === '')
          expect([r.status, r.json()]).toEqual([200, seeded('known')]); // trailing slash: the latest
        else if (!validSerial(seen)) expect({ seen, status: r.status }).toEqual({ seen, status: 400 });
        else {
          const want = seeded('known', Number(seen));
          if (want) expect({ seen, status: r.status, body: r.json() }).toEqual({ seen, status: 200, body: want });
          else expect({ seen, status: r.status }).toEqual({ seen, status: 404 });
        }
      }),
      { numRuns: 300 },
    );
    await stillServing();
  }, 60_000);
});

// ---- payloads ------------------------------------------------------------------------------------

let fuzzCount = 0;
const wellFormed = (s: string) => !/\p{Cs}/u.test(s);

describe('payloads: POST then GET by serial', () => {
  const payloadArb = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.string({ unit: 'grapheme', maxLength: 100 }),
    fc.string({ unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)), maxLength: 100 }),
    fc.string({
      unit: fc.constantFrom(
        '\u0000',
        '\u007f',
        '\u2028',
        '\u2029',
        '\ufeff',
        '\ufffd',
        '"',
        '\\',
        '\ud800',
        '\udfff',
        '\udbff\udfff',
        'a',
      ),
      maxLength: 30,
    }),
    fc.constantFrom('', ' ', '\0', '{"payload":"x"}', '\ud83d', '\ud83d\udd11'),
  );
  test('a well-formed payload of 1..256 KiB comes back byte for byte at its serial; anything else is a 4xx', async () => {
    await fc.assert(
      fc.asyncProperty(payloadArb, prefixArb, async (payload, prefix) => {
        const name = `fuzz.p${++fuzzCount}`;
        const r = await postJson(d.port, `${prefix}/secrets/${name}`, { payload });
        expect(r.text).not.toContain(MARK);
        if (payload === '' || !wellFormed(payload)) {
          expect({ payload, status: r.status }).toEqual({ payload, status: 400 });
          expect((await get(d.port, `${prefix}/secrets/${name}`)).status).toBe(404); // nothing stored
          return;
        }
        expect({ payload, status: r.status, body: r.json() }).toEqual({
          payload,
          status: 201,
          body: { name, serial: 1 },
        });
        learnCreate(name, 1, payload);
        const back = await get(d.port, `${prefix}/secrets/${name}/1`, { 'cache-control': 'no-cache' });
        expect({ payload, body: back.json() }).toEqual({ payload, body: { name, serial: 1, payload, active: true } });
      }),
      { numRuns: 150 },
    );
    await stillServing();
  }, 60_000);

  test('exactly 256 KiB of UTF-8 (1- to 4-byte characters, control characters) is stored; one byte more is 413', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('a', '\u0001', '\u0000', '\u00e9', '\u6f22', '\u{1f511}', '"'),
        fc.boolean(),
        async (ch, over) => {
          const width = Buffer.byteLength(ch);
          const n = Math.floor(MAX / width);
          const payload = ch.repeat(n) + 'a'.repeat(MAX - n * width) + (over ? 'a' : '');
          expect(Buffer.byteLength(payload)).toBe(MAX + (over ? 1 : 0));
          const name = `fuzz.max${++fuzzCount}`;
          const r = await postJson(d.port, `/latest/secrets/${name}`, { payload });
          expect(r.text.length).toBeLessThan(500); // never echoed
          if (over) {
            expect([r.status, r.json()]).toEqual([
              413,
              { error: expect.stringMatching(/262145 bytes; the limit is 262144/) },
            ]);
            return;
          }
          expect(r.status).toBe(201);
          learnCreate(name, 1, payload);
          const back = await get(d.port, `/latest/secrets/${name}/1`);
          expect(back.json().payload === payload).toBe(true);
        },
      ),
      { numRuns: 14 },
    );
  }, 60_000);

  test('request bodies: any JSON, any shape, content type or encoding: 201 only for {"payload": <valid string>}, never a 500 or an echo', async () => {
    const contentType = fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/json; charset=latin1',
      'application/json; charset=utf-16',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      '',
      'application/json;;;',
    );
    const bodyArb = fc.oneof(
      fc.json().map((j) => ({ text: j })),
      fc
        .record({ payload: fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.array(fc.string()), fc.object()) })
        .map((o) => ({ text: JSON.stringify(o) })),
      fc
        .constantFrom(
          `{"payload":"${w.canary}"`, // truncated
          `{"payload":"${w.canary}","payload":"second"}`,
          `{"__proto__":{"payload":"${w.canary}"}}`,
          `{"constructor":{"prototype":{"payload":"${w.canary}"}}}`,
          `["${w.canary}"]`,
          `"${w.canary}"`,
          `{"payload":"${w.canary}\\x"}`,
          `${'['.repeat(100_000)}`,
          `{"payload":{"payload":"${w.canary}"}}`,
          `\ufeff{"payload":"${w.canary}"}`,
          `{"payload":"${w.canary}"}`.padEnd(200_000, ' '),
        )
        .map((text) => ({ text })),
    );
    await fc.assert(
      fc.asyncProperty(
        bodyArb,
        contentType,
        fc.constantFrom('none', 'gzip', 'deflate', 'bogus', 'gzip-broken'),
        async ({ text }, type, encoding) => {
          const name = `fuzz.b${++fuzzCount}`;
          let body: Buffer = Buffer.from(text, 'utf8');
          const headers: Record<string, string> = {};
          if (type !== '') headers['content-type'] = type;
          if (encoding === 'gzip') body = gzipSync(body);
          if (encoding === 'gzip-broken') body = gzipSync(body).subarray(0, 12);
          if (encoding !== 'none') headers['content-encoding'] = encoding.replace('-broken', '');
          const r = await request(d.port, { method: 'POST', path: `/latest/secrets/${name}`, headers, body });
          expect({ text: text.slice(0, 100), type, encoding, status: r.status }).toEqual({
            text: text.slice(0, 100),
            type,
            encoding,
            status: expect.any(Number),
          });
          expect(r.status).toBeLessThan(500);
          expect(r.text).not.toContain(w.canary);
          expect(r.text).not.toMatch(/\n\s+at /);
          if (r.status === 201) {
            // Only an object with a string payload gets here; the stored payload is that string.
            const parsed = JSON.parse(text.replace(/^\ufeff/, '')) as { payload: string };
            learnCreate(name, 1, parsed.payload);
            const back = await get(d.port, `/latest/secrets/${name}/1`);
            w.checkHttpRead(back.status, back.text, 'body fuzz');
            expect(back.json().payload).toBe(parsed.payload);
          } else expect([400, 413, 415]).toContain(r.status);
        },
      ),
      { numRuns: 150 },
    );
    // A compression bomb: 20 MB of zeros in 20 KB of gzip is refused by size, not inflated into memory.
    const bomb = await request(d.port, {
      method: 'POST',
      path: '/latest/secrets/bomb',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(
        Buffer.concat([Buffer.from('{"payload":"'), Buffer.alloc(20 * 1024 * 1024, 0x30), Buffer.from('"}')]),
      ),
    });
    expect(bomb.status).toBe(413);
    await stillServing();
  }, 90_000);
});

// ---- raw HTTP ----------------------------------------------------------------------------------

describe('raw HTTP', () => {
  const printable = fc.string({
    unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    maxLength: 40,
  });
  const tricks = [
    '*',
    'http://evil.example/latest/secrets/known',
    '//latest/secrets/known',
    '/latest/secrets/known?x=%ZZ',
    '/latest/secrets/%',
    '/latest/../latest/secrets/known',
    '/latest/secrets/known/..%2F1',
    '/latest/secrets/%C0%AE%C0%AE',
    '/latest/secrets/%C0%AF',
    '/latest/secrets/known%00',
    '/latest/secrets/known%2500',
    '/latest/secrets/known\\..\\x',
    '/latest/secrets/known#frag',
    '/LATEST/secrets/known',
    '/latest/secrets/known/1/',
    '/latest/secrets/known/%31',
    '/latest/secrets/kn%6Fwn',
    '/latest/revoke/known/1',
    '/latest/revoke/gone/1',
    '/latest/revoke/canary.secret/1/',
    '/health/../latest/secrets/known',
    '/latest/secrets/../../../etc/passwd',
    '/latest/secrets/..%2f..%2f..%2fetc%2fpasswd',
    `/latest/secrets/${'a'.repeat(70_000)}`,
    '/metrics',
    '/version',
    '/',
    '/latest/secrets/canary.secret',
    '/latest/secrets/known?__proto__[x]=1',
    '/latest/secrets/known;jsessionid=1',
    '/v1/secrets/known/2?serial=1',
  ];
  /** Mostly well-formed requests (so they reach the router and the handlers), each with something odd about it. */
  const requestArb = fc.record({
    method: fc.constantFrom('GET', 'GET', 'GET', 'POST', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE'),
    target: fc.oneof(
      {
        weight: 3,
        arbitrary: fc
          .tuple(
            prefixArb,
            fc.constantFrom('secrets', 'revoke', 'Secrets', 'secrets/'),
            nameArb,
            encoderArb,
            fc.option(fc.constantFrom('1', '2', '01', '0', '-1', '%31', '..', '1e0')),
          )
          .map(([p, route, n, e, serial]) => `${p}/${route}/${ENCODERS[e](n)}${serial === null ? '' : `/${serial}`}`),
      },
      { weight: 2, arbitrary: fc.constantFrom(...tricks) },
    ),
    version: fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0'),
    headers: fc.array(
      fc.tuple(
        fc.constantFrom(
          'Content-Type',
          'Cache-Control',
          'X-ECS-Secrets-Token',
          'Content-Encoding',
          'Expect',
          'X-Request-Id',
          'Accept',
          'Range',
          'If-None-Match',
          'X-Forwarded-For',
          'Cookie',
          'Authorization',
        ),
        fc.oneof(
          fc.constantFrom(
            'application/json',
            'text/plain',
            'application/json; charset=utf-16',
            'no-cache',
            'gzip',
            'br',
            '100-continue',
            'bytes=0-1',
            '*',
          ),
          printable,
        ),
      ),
      { maxLength: 5 },
    ),
    body: fc.oneof(
      fc.constant(''),
      fc.constantFrom(w.canary, `${MARK}fuzzed`, 'x').map((payload) => JSON.stringify({ payload })),
      fc.json(),
      fc.string({ maxLength: 100 }),
    ),
    framing: fc.constantFrom('exact', 'exact', 'exact', 'exact', 'none', 'short', 'chunked', 'chunked-bad', 'long'),
  });
  type FuzzRequest = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;
  function render(r: FuzzRequest): Buffer {
    const body = Buffer.from(r.body, 'utf8');
    const lines = [`${r.method} ${r.target} ${r.version}`, 'Host: x', ...r.headers.map(([k, v]) => `${k}: ${v}`)];
    let payload = body;
    if (r.framing === 'exact') lines.push(`Content-Length: ${body.length}`);
    if (r.framing === 'short') lines.push(`Content-Length: ${Math.max(0, body.length - 3)}`);
    if (r.framing === 'long') lines.push(`Content-Length: ${body.length + 10}`);
    if (r.framing === 'chunked' || r.framing === 'chunked-bad') {
      lines.push('Transfer-Encoding: chunked');
      const size =
        r.framing === 'chunked' ? body.length.toString(16) : `${(body.length + 5).toString(16)};ext="${w.canary}"`;
      payload = Buffer.concat([Buffer.from(`${size}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
    }
    lines.push('Connection: close');
    return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), payload]);
  }
  /** Fully malformed: random methods, targets, versions, header bytes. */
  const garbageArb = fc
    .tuple(
      fc.oneof(
        fc.constantFrom('G\0T', '', 'GET GET', 'get', 'PRI'),
        fc.string({ unit: 'binary-ascii', maxLength: 10 }),
      ),
      fc.string({ unit: 'binary-ascii', maxLength: 200 }),
      fc.constantFrom('HTTP/2.0', 'HTTP/9.9', '', 'http/1.1', 'HTTP/1.1 extra', 'HTTP/1.1\r'),
      fc.array(
        fc.tuple(
          fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 20 }),
          fc.oneof(
            fc.string({ unit: 'binary-ascii', maxLength: 40 }),
            fc.integer({ min: 1, max: 40_000 }).map((n) => 'x'.repeat(n)),
          ),
        ),
        { maxLength: 4 },
      ),
      fc.string({ maxLength: 100 }),
    )
    .map(([m, t, v, h, b]) =>
      Buffer.concat([
        Buffer.from(`${m} ${t} ${v}\r\n${h.map(([k, x]) => `${k}: ${x}\r\n`).join('')}\r\n`, 'latin1'),
        Buffer.from(b),
      ]),
    );

  test('any request line, headers, framing and body: every answer < 500, no misplaced payload, the daemon keeps serving', async () => {
    const statusCount = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          { weight: 4, arbitrary: requestArb.map((r) => ({ r, bytes: render(r) })) },
          { weight: 1, arbitrary: garbageArb.map((bytes) => ({ r: undefined, bytes })) },
        ),
        async ({ r, bytes }) => {
          // A complete request ("Connection: close") is answered and closed by the server: wait for
          // that, so no write's answer is lost. Only an incomplete one needs the client to half-close.
          const incomplete = !r || r.framing === 'long' || r.framing === 'chunked-bad';
          const { reply, timedOut } = await rawExchange(d.port, bytes, {
            timeoutMs: 5_000,
            quietMs: incomplete ? 150 : 5_000,
          });
          const head = bytes.subarray(0, 300).toString('latin1');
          expect({ head, timedOut }).toEqual({ head, timedOut: false });
          const responses = responsesOf(reply);
          for (const resp of responses) {
            statusCount.set(String(resp.status), (statusCount.get(String(resp.status)) ?? 0) + 1);
            expect({ head, status: resp.status, ok: resp.status < 500 }).toMatchObject({ ok: true });
            // Keep the model of the store up to date with what a fuzzed request managed to write.
            if (r && resp.status === 201) {
              const made = JSON.parse(resp.body) as { name: string; serial: number };
              learnCreate(made.name, made.serial, (JSON.parse(r.body) as { payload: string }).payload);
            } else if (r && resp.status === 200 && /\/revoke\//.test(r.target) && r.method === 'POST') {
              const rv = JSON.parse(resp.body) as { name: string; serial: number };
              learnRevoke(rv.name, rv.serial);
            } else expect(misplacedPayload(resp.status, resp.body)).toBeUndefined();
          }
        },
      ),
      { numRuns: 300 },
    );
    // Most requests got past the parser to the router: this fuzzes the handlers, not only llhttp.
    const routed = [...statusCount.entries()].filter(([st]) => st !== '400').reduce((n, [, c]) => n + c, 0);
    expect(routed).toBeGreaterThan(100);
    if (process.env.RELIABILITY_VERBOSE) console.log(JSON.stringify(Object.fromEntries(statusCount)));
    // A revoke whose request body never completed ran anyway (its route reads no body) while its
    // answer was dropped on the half-close: read back what the fuzzing did to the seeded secrets.
    await Promise.all(['known', 'gone', 'canary.secret'].map(resync));
    await stillServing();
  }, 90_000);

  test('pipelined GETs on one connection: each answer is the one for its own request', async () => {
    const paths: Array<[string, string, number | undefined]> = [
      ['/latest/secrets/known', 'known', undefined],
      ['/v1/secrets/known/1', 'known', 1],
      ['/latest/secrets/known/2', 'known', 2],
      ['/v1/secrets/canary.secret', 'canary.secret', undefined],
      ['/latest/secrets/canary.secret/1', 'canary.secret', 1],
      ['/latest/secrets/gone/1', 'gone', 1],
      ['/latest/secrets/gone', 'gone', undefined],
      ['/latest/secrets/nope', 'nope', undefined],
      ['/latest/secrets/kn%6Fwn/2', 'known', 2],
      ['/latest/secrets/a%2Fb', '', undefined],
      ['/latest/secrets/known/0', '', undefined],
    ];
    const expected = (i: number) => {
      const [, name, serial] = paths[i];
      if (name === '') return [400, { error: expect.any(String) }];
      const rec = seeded(name, serial);
      return rec ? [200, rec] : [404, { error: expect.any(String) }];
    };
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat(paths.length - 1), { minLength: 2, maxLength: 10 }),
        fc.boolean(),
        async (picks, noCache) => {
          const reqs = picks.map(
            (i, k) =>
              `GET ${paths[i][0]} HTTP/1.1\r\nHost: x\r\n${noCache && k % 2 ? 'Cache-Control: no-cache\r\n' : ''}${k === picks.length - 1 ? 'Connection: close\r\n' : ''}\r\n`,
          );
          const { reply } = await rawExchange(d.port, reqs.join(''), {
            timeoutMs: 10_000,
            idleMs: 3_000,
            quietMs: 5_000,
          });
          const got = responsesOf(reply).map((r) => [r.status, JSON.parse(r.body)]);
          if (got.some(([, b]) => JSON.stringify(b).includes(w.canary))) w.canaryReads++;
          expect(got).toEqual(picks.map(expected));
        },
      ),
      { numRuns: 60 },
    );
  }, 60_000);

  test('wrong methods on every route: never a 2xx write, never a payload, nothing stored', async () => {
    const before = json(await local(['list']));
    const routes = [
      '/latest/secrets/known',
      '/v1/secrets/known/1',
      '/latest/revoke/known/1',
      '/v1/revoke/known/2',
      '/latest/secrets/wm',
      '/health',
      '/metrics',
      '/version',
      '/latest/secrets/version',
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          'PUT',
          'DELETE',
          'PATCH',
          'TRACE',
          'PROPFIND',
          'MKCOL',
          'COPY',
          'MOVE',
          'LOCK',
          'PURGE',
          'OPTIONS',
          'HEAD',
          'FOO',
        ),
        fc.constantFrom(...routes),
        async (method, route) => {
          const { reply, timedOut } = await rawExchange(
            d.port,
            `${method} ${route} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(JSON.stringify({ payload: w.canary }))}\r\nConnection: close\r\n\r\n${JSON.stringify({ payload: w.canary })}`,
            { quietMs: 3_000 },
          );
          expect(timedOut).toBe(false);
          const statuses = statusesOf(reply);
          expect(statuses.length).toBe(1);
          const [status] = statuses;
          expect({ method, route, status, ok: status < 500 && status !== 201 }).toMatchObject({ ok: true });
          if (method === 'HEAD' || method === 'OPTIONS') expect(status).toBeLessThan(500);
          else expect({ method, route, status }).toEqual({ method, route, status: method === 'FOO' ? 400 : 404 });
          for (const r of responsesOf(reply)) expect(misplacedPayload(r.status, r.body)).toBeUndefined();
        },
      ),
      { numRuns: 120 },
    );
    expect(json(await local(['list']))).toEqual(before);
  }, 60_000);

  test('huge headers, a huge URL, thousands of headers, obs-text bytes: a 4xx, and the daemon keeps serving', async () => {
    const cases: Array<[string, Buffer]> = [
      [
        'one 20 KB header',
        Buffer.from(`GET /latest/secrets/known HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
      ],
      [
        'a 1 MB token header',
        Buffer.from(
          `GET /latest/secrets/known HTTP/1.1\r\nHost: x\r\nX-ECS-Secrets-Token: ${'t'.repeat(1_000_000)}\r\n\r\n`,
        ),
      ],
      ['a 100 KB URL', Buffer.from(`GET /latest/secrets/${'n'.repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`)],
      [
        '5,000 small headers',
        Buffer.from(
          `GET /latest/secrets/known HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 5000 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`,
        ),
      ],
      [
        'obs-text and NUL in a header value',
        Buffer.concat([
          Buffer.from('GET /latest/secrets/known HTTP/1.1\r\nHost: x\r\nX-Odd: '),
          Buffer.from([0xff, 0xfe, 0x00, 0x80]),
          Buffer.from('\r\n\r\n'),
        ]),
      ],
      ['bare LF line endings', Buffer.from('GET /latest/secrets/known HTTP/1.1\nHost: x\n\n')],
      [
        'Content-Length and Transfer-Encoding together',
        Buffer.from(
          `POST /latest/secrets/smuggle HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /latest/secrets/canary.secret HTTP/1.1\r\nHost: x\r\n\r\n`,
        ),
      ],
      [
        'two Content-Length headers',
        Buffer.from(
          `POST /latest/secrets/smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}`,
        ),
      ],
      [
        'a request line of garbage bytes',
        Buffer.concat([
          Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]),
          Buffer.from('\r\n\r\n'),
        ]),
      ],
      ['an HTTP/2 preface', Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')],
    ];
    for (const [label, bytes] of cases) {
      const { reply, timedOut } = await rawExchange(d.port, bytes, { timeoutMs: 8_000, quietMs: 3_000 });
      const statuses = statusesOf(reply);
      expect({ label, timedOut, statuses }).toEqual({ label, timedOut: false, statuses: expect.any(Array) });
      expect({
        label,
        ok: statuses.every((s) => s >= 400 && s < 500) || (label === 'bare LF line endings' && statuses[0] === 200),
      }).toEqual({ label, ok: true });
      for (const r of responsesOf(reply)) expect(misplacedPayload(r.status, r.body)).toBeUndefined();
    }
    expect((await get(d.port, '/latest/secrets/smuggle')).status).toBe(404);
    await stillServing();
  }, 60_000);
});

// ---- the CLI --------------------------------------------------------------------------------

describe('CLI: hostile names, serials and payloads', () => {
  test('names and serials from argv: exit 0, 1 (not found) or 2 (invalid), one line, never a crash', async () => {
    const argvSafe = (s: string) => s.replace(/\0/g, '');
    // A handful of samples per run, each run drawing new ones: the daemon's routes above take the
    // same names and serials by the hundred; here it is argv's path to the same checks.
    const samples = [
      ...fc.sample(nameArb.map(argvSafe), 6).map((name) => ({ name, serial: undefined as string | undefined })),
      ...fc
        .sample(fc.string({ unit: 'binary-ascii', maxLength: 12 }).map(argvSafe), 4)
        .map((serial) => ({ name: 'known', serial })),
      { name: '--name', serial: undefined },
      { name: 'known', serial: '-1' },
    ];
    const results = await Promise.all(
      samples.map(({ name, serial }) =>
        local(['fetch', `--name=${name}`, ...(serial === undefined ? [] : [`--serial=${serial}`])]),
      ),
    );
    for (const [i, r] of results.entries()) {
      const { name, serial } = samples[i];
      const where = { name, serial };
      expect({ ...where, killed: r.killed }).toEqual({ ...where, killed: false });
      if (r.code === 0) {
        const rec = json<{ name: string; serial: number }>(r);
        expect(seeded(rec.name, rec.serial)).toEqual(rec);
      } else if (!validName(name) || (serial !== undefined && !validSerial(serial)))
        expectCleanFailure(r, 2, /invalid|missing|argument/i);
      else expectCleanFailure(r, 1, /not found|has no serial/);
    }
  }, 60_000);

  test('payloads on stdin (binary, NUL, invalid UTF-8, sizes around 256 KiB): stored exactly, or exit 2 with one line', async () => {
    const samples: Array<{ label: string; bytes: Buffer; ok: boolean }> = [
      ...fc
        .sample(fc.string({ unit: 'binary', minLength: 1, maxLength: 200 }), 2)
        .map((s) => ({ label: 'unicode', bytes: Buffer.from(s, 'utf8'), ok: true })),
      ...fc
        .sample(
          fc.string({
            unit: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)),
            minLength: 1,
            maxLength: 50,
          }),
          2,
        )
        .map((s) => ({ label: 'control', bytes: Buffer.from(s), ok: true })),
      { label: 'invalid UTF-8', bytes: Buffer.from([0x61, 0xff, 0xfe, 0x62]), ok: false },
      { label: 'a lone surrogate in CESU form', bytes: Buffer.from([0xed, 0xa0, 0x80]), ok: false },
      { label: 'empty', bytes: Buffer.alloc(0), ok: false },
      { label: 'exactly 256 KiB', bytes: Buffer.from('\u00e9'.repeat(MAX / 2), 'utf8'), ok: true },
      { label: '256 KiB + 1', bytes: Buffer.alloc(MAX + 1, 0x61), ok: false },
      { label: '10 MiB', bytes: Buffer.alloc(10 * 1024 * 1024, 0x61), ok: false },
      { label: 'the canary', bytes: Buffer.from(`${w.canary}\0${w.canary}`), ok: true },
    ];
    const results = await Promise.all(
      samples.map((s, i) => local(['create', '--name', `cli.p${i}`, '--payload-location', '-'], s.bytes)),
    );
    for (const [i, r] of results.entries()) {
      const { label, bytes, ok } = samples[i];
      if (!ok) {
        expectCleanFailure(r, 2, /payload|UTF-8|limit|empty/);
        expect(r.stderr).not.toContain(w.canary);
        continue;
      }
      expect({ label, code: r.code, stderr: r.stderr }).toEqual({ label, code: 0, stderr: '' });
      const f = await local(['fetch', '--name', `cli.p${i}`]);
      expect({ label, same: Buffer.from(json<{ payload: string }>(f).payload, 'utf8').equals(bytes) }).toEqual({
        label,
        same: true,
      });
    }
  }, 90_000);

  test('a payload split by the shell (unquoted) is never echoed in the error; one starting with "-" is the value', async () => {
    const [a, b] = [`${w.canary}-first`, `${w.canary}-second`];
    const dashed = await local(['create', '--name', 'dashed', '--payload', `-${w.canary}`]);
    expect([dashed.code, dashed.stdout, dashed.stderr]).toEqual([0, '{"name":"dashed","serial":1}\n', '']);
    expect(json<{ payload: string }>(await local(['fetch', '--name', 'dashed'])).payload).toBe(`-${w.canary}`);
    for (const args of [
      ['create', '--name', 'split', '--payload', a, b],
      ['create', '--name', 'split', '--payload', `-${w.canary}`, b],
      ['create', '--name', 'split', '--payload', a, '--payload-location', b],
      ['store', '--name', 'split', b, '--payload', a],
    ]) {
      const r = await local(args);
      expectCleanFailure(r, 2, /./);
      expect(r.stderr).not.toContain(w.canary);
      expect(r.stderr).not.toContain(w.canary.slice(7, 30)); // nor a piece of it
    }
  }, 60_000);
});

// ---- hygiene -------------------------------------------------------------------------------------

test('secret hygiene: no 500 and no crash; the canary nowhere in process output or the data dir; the master key is 0600', async () => {
  // (The raw fuzzing may have revoked canary.secret: write the canary once more, from the CLI.)
  expect((await local(['create', '--name', 'canary.final', '--payload-location', '-', '--debug'], w.canary)).code).toBe(
    0,
  );
  const f = await local(['fetch', '--name', 'canary.final', '--debug']);
  expect(json(f)).toMatchObject({ payload: w.canary });
  const r = await get(d.port, '/latest/secrets/canary.final');
  w.checkHttpRead(r.status, r.text, 'GET canary');
  expect(d.child.exitCode).toBeNull(); // never crashed
  expect(await w.stopDaemon(d)).toBe(0);
  expect(loggedErrors(d.logs())).toEqual([]);
  expect(d.logs()).not.toMatch(/internal error|\n\s+at /);

  const files = walk(dir);
  expect(files.length).toBeGreaterThan(3);
  w.addFiles(files); // the encrypted store included: the plaintext is not in it either
  expect(w.canaryWrites).toBeGreaterThan(0);
  expect(w.canaryReads).toBeGreaterThan(0);
  expect(w.leaks()).toEqual([]);
  expect(fs.statSync(path.join(dir, 'master.key')).mode & 0o777).toBe(0o600);
  expect(fs.statSync(dir).mode & 0o077).toBe(0); // the data dir itself is private
}, 60_000);
