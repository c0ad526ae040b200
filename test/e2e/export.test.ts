/**
 * export, spawned as a user runs it, against the stand-ins (straight from the backend) and through
 * a daemon (--daemon-url): every awkward payload round-trips byte for byte through
 * `bash -c 'set -a; . FILE'`, eval and JSON, and each kind of bad input is one clear line with
 * the right exit code and no payload in it. Also the daemon's GET /secrets?prefix route.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { type CliResult, runCli } from '../helpers/cli';
import { type SpawnedDaemon, freePort, spawnDaemon } from '../helpers/daemon';
import { type StandIns, createAppResources, startStandIns } from '../standins';

const APP = 'deliver';
/** Quotes, $, backticks, backslashes, newlines, CR, tabs, unicode, and shell metacharacters. */
const AWKWARD = `it's "quoted" $HOME \${X} $(id) \`id\` \\ \\n \\' back\\slash\nnew line\r\n\ttab ! # = : ; & | < > * ? ~ % '' é ü 日本 😀 \u2028 end `;
/** DEL, C1 controls, NEL, a BOM and line separators: YAML readers refuse or fold them raw. */
const CONTROLS = `\ufeffa\x7fb\x80c\x85d\x9fe\u2028f\x1bg`;
const SECRETS: Record<string, string> = {
  'team-a.db-password': AWKWARD,
  'team-a.api.key': "'",
  'team-a.url': 'postgres://u:p@h/db?x=1&y=$2',
  'team-b.db-password': 'other team',
  'team-u.ctl': CONTROLS,
  'team-l.ld_preload': '/tmp/evil.so',
};
const TOKEN = 'export-test-token';
let s: StandIns;
let env: Record<string, string>;
let dir: string;
let d: SpawnedDaemon;

const cli = (args: string[], extra: { env?: Record<string, string>; input?: string | Buffer } = {}) =>
  runCli(['--application-name', APP, ...args], { env: { ...env, ...extra.env }, input: extra.input });

beforeAll(async () => {
  s = await startStandIns();
  env = s.env;
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-export-'));
  // One process writes them all: what the tests check is what export makes of the stored values.
  const seeded = await cli(['import', 'json', '-'], { input: JSON.stringify(SECRETS) });
  expect([seeded.code, JSON.parse(seeded.stdout).imported.length]).toEqual([0, Object.keys(SECRETS).length]);
  const bin = await cli(['create', '--name', 'team-c.cert', '--binary', '--payload-location', '-'], {
    input: Buffer.from([0, 1, 2, 255]),
  });
  expect(bin.code).toBe(0);
  fs.writeFileSync(path.join(dir, 'token'), TOKEN);
  d = await spawnDaemon(['--application-name', APP, '--token-file', path.join(dir, 'token')], {
    env,
    waitHealthy: true,
    timeoutMs: 60_000,
  });
}, 60_000);
afterAll(async () => {
  await d?.stop();
  await s?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Load FILE in a clean bash as a user would, and print the environment back as JSON. */
function loadInBash(text: string, how: 'set-a' | 'eval'): Record<string, string> {
  const file = path.join(dir, `vars-${how}`);
  fs.writeFileSync(file, text);
  const load = how === 'set-a' ? 'set -a; . "$1"; set +a' : 'eval "$(cat "$1")"';
  const r = spawnSync(
    'bash',
    [
      '--norc',
      '--noprofile',
      '-c',
      `${load}; exec "$2" -e 'process.stdout.write(JSON.stringify(process.env))'`,
      'bash',
      file,
      process.execPath,
    ],
    {
      env: { PATH: process.env.PATH },
      encoding: 'utf8',
    },
  );
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout);
}

function expectOneLineError(r: CliResult, code: number, pattern: RegExp): void {
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code, stdout: '' });
  const lines = r.stderr.trim().split('\n');
  expect(lines[0]).toMatch(/^ecs-secrets: /);
  expect(lines[0]).toMatch(pattern);
  expect(lines).toHaveLength(1);
  for (const payload of Object.values(SECRETS)) if (payload.length > 3) expect(r.stderr).not.toContain(payload);
}

const expected = { DB_PASSWORD: AWKWARD, API_KEY: "'", URL: SECRETS['team-a.url'] };
const viaDaemon = () => ({ ECS_SECRETS_DAEMON_URL: d.url, ECS_SECRETS_TOKEN: TOKEN });

describe.each([
  ['from the backend', () => ({})],
  ['through the daemon', viaDaemon],
])('export %s', (_label, extraEnv) => {
  test('dotenv round-trips byte for byte through bash -c "set -a; . FILE"', async () => {
    const r = await cli(['export', '--prefix', 'team-a.', '--format', 'dotenv'], { env: extraEnv() });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const loaded = loadInBash(r.stdout, 'set-a');
    for (const [k, v] of Object.entries(expected))
      expect([k, Buffer.from(loaded[k]).equals(Buffer.from(v))]).toEqual([k, true]);
  });

  test('shell round-trips through eval; json parses back to the same strings', async () => {
    const sh = await cli(['export', '--prefix', 'team-a.', '--format', 'shell'], { env: extraEnv() });
    expect(sh.code).toBe(0);
    const loaded = loadInBash(sh.stdout, 'eval');
    for (const [k, v] of Object.entries(expected)) expect([k, loaded[k]]).toEqual([k, v]);
    const js = await cli(['export', '--prefix', 'team-a.'], { env: extraEnv() });
    expect(js.code).toBe(0);
    expect(js.stdout).toBe(`${JSON.stringify({ API_KEY: "'", DB_PASSWORD: AWKWARD, URL: SECRETS['team-a.url'] })}\n`);
  });

  test('yaml escapes DEL, C1 and the BOM: PyYAML (or the yaml package without python3) loads the exact value', async () => {
    const r = await cli(['export', '--name', 'X=team-u.ctl', '--format', 'yaml'], { env: extraEnv() });
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toBe('X: "\\uFEFFa\\x7Fb\\x80c\\Nd\\x9Fe\\Lf\\eg"\n');
    const py = spawnSync(
      'python3',
      ['-c', 'import sys, json, yaml; sys.stdout.write(json.dumps(yaml.safe_load(sys.stdin.buffer.read())))'],
      { input: r.stdout, encoding: 'utf8' },
    );
    const loaded = py.status === 0 ? JSON.parse(py.stdout) : parseYaml(r.stdout, { version: '1.1' });
    expect(loaded).toEqual({ X: CONTROLS });
  });

  test('--name __proto__=NAME is a variable like any other', async () => {
    const r = await cli(['export', '--name', '__proto__=team-a.url'], { env: extraEnv() });
    expect([r.code, r.stdout]).toEqual([0, `${JSON.stringify({ ['__proto__']: SECRETS['team-a.url'] })}\n`]);
    expect(r.stdout).toBe(`{"__proto__":${JSON.stringify(SECRETS['team-a.url'])}}\n`);
  });

  test('explicit names and VAR=NAME, mixed with a prefix', async () => {
    const r = await cli(['export', '--name', 'PG=team-b.db-password', '--name', 'team-a.url'], { env: extraEnv() });
    expect(JSON.parse(r.stdout)).toEqual({ PG: 'other team', TEAM_A_URL: SECRETS['team-a.url'] });
  });
});

describe('export: bad input is one clear line with the right exit code', () => {
  const cases: Array<[string, string[], number, RegExp]> = [
    [
      'unknown format',
      ['--prefix', 'team-a.', '--format', 'toml'],
      2,
      /unknown format "toml": use one of json, dotenv, shell, properties, yaml/,
    ],
    ['no selection', [], 2, /select secrets with --name/],
    ['a prefix that matches nothing', ['--prefix', 'team-z.'], 1, /no secret name starts with the prefix "team-z\."/],
    ['a missing secret', ['--name', 'team-a.nope'], 1, /secret team-a\.nope not found/],
    [
      'colliding variables',
      ['--name', 'team-a.db-password', '--name', 'team-a.db.password'],
      2,
      /"team-a\.db-password" and "team-a\.db\.password" both map to the variable TEAM_A_DB_PASSWORD/,
    ],
    ['a binary secret into an environment', ['--prefix', 'team-c.'], 2, /secret "team-c\.cert" is binary/],
    [
      'a loader variable from a prefix',
      ['--prefix', 'team-l.', '--format', 'dotenv'],
      2,
      /secret "team-l\.ld_preload" would set LD_PRELOAD, which changes how programs load: a prefix never sets it; deliver it on purpose with --name LD_PRELOAD=team-l\.ld_preload$/,
    ],
    ['an invalid variable name', ['--name', '9X=team-a.url'], 2, /invalid variable name "9X"/],
    ['an invalid daemon URL', ['--name', 'team-a.url', '--daemon-url', 'ftp://x'], 2, /invalid --daemon-url/],
    [
      'a daemon without the token',
      ['--name', 'team-a.url'],
      1,
      /missing x-ecs-secrets-token header \(set ECS_SECRETS_TOKEN/,
    ],
    [
      'a daemon that is not there',
      ['--name', 'team-a.url'],
      1,
      /daemon at http:\/\/127\.0\.0\.1:\d+ unavailable reading team-a\.url: ECONNREFUSED/,
    ],
  ];
  // Four parameters, as many as a row: with a fifth, jest would pass a done callback and wait for it.
  test.each(cases)('%s', async (label, args, code, pattern) => {
    let env2: Record<string, string> = {};
    if (label === 'a daemon without the token') env2 = { ECS_SECRETS_DAEMON_URL: d.url };
    if (label === 'a daemon that is not there')
      env2 = { ECS_SECRETS_DAEMON_URL: `http://127.0.0.1:${await freePort()}` };
    expectOneLineError(await cli(['export', ...args], { env: env2 }), code, pattern);
  });
  test('colliding variables across prefixes, found from the names alone: nothing is decrypted', async () => {
    s.kms.resetCounts();
    expectOneLineError(
      await cli(['export', '--prefix', 'team-a.', '--prefix', 'team-b.']),
      2,
      /"team-a\.db-password" and "team-b\.db-password" both map to the variable DB_PASSWORD/,
    );
    expect(s.kms.counts.Decrypt).toBe(0);
  });
});

test('daemon GET /secrets?prefix lists the names under a prefix (both prefixes, token required, bad prefix 400)', async () => {
  const h = { 'X-ECS-Secrets-Token': TOKEN };
  for (const p of ['/latest', '/v1']) {
    const r = await fetch(`${d.url}${p}/secrets?prefix=team-a.`, { headers: h });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual([
      { name: 'team-a.api.key', latestSerial: 1 },
      { name: 'team-a.db-password', latestSerial: 1 },
      { name: 'team-a.url', latestSerial: 1 },
    ]);
  }
  expect(((await (await fetch(`${d.url}/v1/secrets`, { headers: h })).json()) as unknown[]).length).toBe(
    Object.keys(SECRETS).length + 1, // and the binary team-c.cert
  );
  expect((await fetch(`${d.url}/v1/secrets?prefix=team-a.`)).status).toBe(401);
  const bad = await fetch(`${d.url}/v1/secrets?prefix=a/b`, { headers: h });
  expect([bad.status, await bad.json()]).toEqual([400, { error: expect.stringMatching(/invalid prefix/) }]);
  const two = await fetch(`${d.url}/v1/secrets?prefix=a&prefix=b`, { headers: h });
  expect(two.status).toBe(400);
});

test('--help describes every new command and flag', async () => {
  const top = await runCli(['--help']);
  expect(top.stdout).toMatch(/export +Print the selected secrets/);
  expect(top.stdout).toMatch(/exec +Run a command with the selected secrets/);
  const flags: Array<[string, string[]]> = [
    ['export', ['--name', '--prefix', '--daemon-url', '--format']],
    [
      'exec',
      [
        '--name',
        '--prefix',
        '--daemon-url',
        '--pristine',
        '--watch',
        '--on-change',
        '--stop-timeout',
        '-- CMD [ARG...]',
      ],
    ],
    ['create', ['--binary', '--payload-encoding']],
  ];
  for (const [command, expected] of flags) {
    const h = await runCli([command, '--help']);
    expect(h.code).toBe(0);
    for (const f of expected) expect([command, h.stdout.includes(f)]).toEqual([command, true]);
  }
});

test('a secret named "version" (whose latest route is the daemon version route) is read through the daemon too, revoked versions skipped', async () => {
  for (const payload of ['v1', 'v2'])
    expect((await cli(['create', '--name', 'version', '--payload', payload])).code).toBe(0);
  expect((await cli(['revoke', '--name', 'version', '--serial', '2'])).code).toBe(0);
  // The daemon caches its name listing for the TTL, and "version" is found through the listing: a
  // daemon that listed before the CLI created it lists it after the TTL, a new one at once.
  await d.stop();
  d = await spawnDaemon(['--application-name', APP, '--token-file', path.join(dir, 'token')], {
    env,
    waitHealthy: true,
    timeoutMs: 60_000,
  });
  for (const extraEnv of [{}, viaDaemon()])
    for (const [selection, stdout] of [
      [['--name', 'version'], '{"VERSION":"v1"}\n'],
      [['--prefix', 'vers'], '{"ION":"v1"}\n'], // the prefix is stripped from the variable name
    ] as const) {
      const r = await cli(['export', ...selection], { env: extraEnv });
      expect({
        selection,
        via: Object.keys(extraEnv).length,
        code: r.code,
        stdout: r.stdout,
        stderr: r.stderr,
      }).toEqual({
        selection,
        via: Object.keys(extraEnv).length,
        code: 0,
        stdout,
        stderr: '',
      });
    }
  // The version route itself is unchanged.
  const v = await fetch(`${d.url}/v1/secrets/version`, { headers: { 'X-ECS-Secrets-Token': TOKEN } });
  expect(Object.keys((await v.json()) as object)).toEqual(['application', 'applicationVersion', 'apiVersion']);
});
