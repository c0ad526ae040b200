/**
 * The daemon's request line is built by a specialised serializer (core/log.ts). The
 * promise: the same bytes as pino's own serializer for every line, and pino's own handling (and
 * redaction) for anything that is not a plain request line.
 */
import pino from 'pino';
import { REQUEST_MSG, requestLogger } from '../../src/core/log';

const REDACT = { paths: ['payload', '*.payload', 'plaintext', 'token'], censor: '[redacted]' };

function capture() {
  const lines: string[] = [];
  const base = pino(
    { name: 'ecs-secrets', base: { pid: 4242 }, timestamp: () => ',"time":1796062622934', redact: REDACT },
    { write: (s: string) => lines.push(s) },
  );
  return { base, lines };
}

const LINES: Array<[Record<string, unknown>, string]> = [
  [
    { reqId: 'dd9e9f-1', method: 'GET', route: '/latest/secrets/:name', status: 200, ms: 0.187, cache: 'hit' },
    REQUEST_MSG,
  ],
  [{ reqId: 'dd9e9f-2', method: 'POST', route: '/v1/secrets/:name', status: 201, ms: 12 }, REQUEST_MSG],
  [{ reqId: 'x"y\\z\n', method: 'GET', route: 'unmatched', status: 404, ms: 1e-7, cache: undefined }, REQUEST_MSG],
  [
    {
      reqId: 'dd9e9f-3',
      method: 'GET',
      route: 'unmatched',
      status: 401,
      ms: 0.5,
      path: '/latest/secrets/db.password',
      error: 'wrong X-ECS-Secrets-Token',
    },
    REQUEST_MSG,
  ],
  [
    {
      reqId: 'dd9e9f-4',
      method: 'GET',
      route: '/v1/secrets/:name',
      status: 404,
      ms: 3,
      cache: 'miss',
      secret: 'a.b',
      error: 'no "secret" \\ here\u2028',
    },
    REQUEST_MSG,
  ],
  [{ reqId: 'a', method: 'GET', route: '/health', status: 503, ms: NaN }, REQUEST_MSG], // NaN: pino writes null
  [{ reqId: 'a', method: 'GET', route: '/health', status: 200, ms: 1, payload: 'SECRET' }, REQUEST_MSG], // redacted by pino
  [{ reqId: 'a', nested: { n: 1 } }, REQUEST_MSG], // an object value: pino's serializer
  [{ reqId: 'a', ok: true }, REQUEST_MSG],
  [{ reqId: 'a', status: 200 }, 'another message'],
];

test('the request logger writes exactly what pino writes, line for line', () => {
  const fast = capture();
  const plain = capture();
  const r = requestLogger(fast.base);
  const p = plain.base.child({}, { redact: { paths: ['payload', 'plaintext', 'token'], censor: '[redacted]' } });
  for (const [obj, msg] of LINES) {
    r.info(obj, msg);
    p.info(obj, msg);
  }
  expect(fast.lines).toEqual(plain.lines);
  expect(fast.lines).toHaveLength(LINES.length);
  expect(fast.lines.join('')).not.toContain('SECRET');
  expect(JSON.parse(fast.lines[0])).toEqual({
    level: 30,
    time: 1796062622934,
    pid: 4242,
    name: 'ecs-secrets',
    ...LINES[0][0],
    msg: REQUEST_MSG,
  });
});

test('the specialised serializer is in use for the request logger, and only there', () => {
  const { base } = capture();
  const r = requestLogger(base);
  const sym = pino.symbols.asJsonSym as unknown as symbol;
  const own = (l: object) => Object.hasOwn(l, sym);
  expect(own(r)).toBe(true);
  expect(own(base)).toBe(false);
  expect(own(base.child({}))).toBe(false);
});
