/**
 * `daemon --config FILE`: the daemon's settings from a YAML or JSON file, keys as flag names;
 * the command line wins, then ECS_SECRETS_*, then the file, then the defaults. A bad file is one
 * line naming the file (and the line), exit 2, and never quotes the file's text.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { DAEMON_DEFAULTS } from '../../src/daemon/config';
import { runCli } from '../helpers/cli';
import { type SpawnedDaemon, freePort, spawnDaemon } from '../helpers/daemon';

let dir: string;
let store: string;
const APP = ['--application-name', 'demo'];
/** Written into files that must not reach any message. */
const SENTINEL = 'hunter2-do-not-print';

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-config-file-'));
  store = path.join(dir, 'store');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A config file as the daemon's user would write it (mode 0600). */
function configFile(name: string, text: string, mode = 0o600): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  fs.chmodSync(file, mode);
  return file;
}

/** The fields of the daemon's 'daemon started' log line. */
async function started(d: SpawnedDaemon): Promise<Record<string, unknown>> {
  const logs = await d.waitForLog(/"msg":"daemon started"/);
  const line = logs.split('\n').find((l) => l.includes('"msg":"daemon started"'));
  if (line === undefined) throw new Error(`no start line in: ${logs}`);
  return JSON.parse(line) as Record<string, unknown>;
}

/** The status of one request, with the Host header given (fetch would not send it). */
function status(port: number, options: { path: string; method?: string; host?: string; body?: string }) {
  return new Promise<number | undefined>((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: options.path,
        method: options.method ?? 'GET',
        headers: options.host ? { host: options.host } : {},
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

const daemons: SpawnedDaemon[] = [];
afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});
async function daemon(args: string[], opts: Parameters<typeof spawnDaemon>[1] = {}): Promise<SpawnedDaemon> {
  const d = await spawnDaemon(args, {
    waitHealthy: true,
    ...opts,
    env: { ECS_SECRETS_LOG_FORMAT: 'json', ...opts.env },
  });
  daemons.push(d);
  return d;
}

describe('settings from the file', () => {
  test('YAML: listening port, global flags, numbers, booleans and lists reach the daemon', async () => {
    await runCli(['create', '--local', '--data-dir', store, ...APP, '--name', 'a', '--payload', 'A']);
    await runCli(['create', '--local', '--data-dir', store, ...APP, '--name', 'b', '--payload', 'B']);
    const port = await freePort();
    const out = path.join(dir, 'out');
    fs.mkdirSync(out);
    const file = configFile(
      'daemon.yaml',
      [
        '# the sidecar of the demo task',
        'local: true',
        `data-dir: ${store}`,
        'application-name: demo',
        'host: 127.0.0.1',
        `port: ${port}`,
        'cache-ttl: 7',
        'read-only: true',
        'render-mode: 0400',
        'render:',
        `  - ${out}/a=a`,
        `  - ${out}/b.env=dotenv:b`,
        '',
      ].join('\n'),
    );
    const d = await daemon(['--config', file], { port });
    expect(await started(d)).toMatchObject({ cacheTtlSeconds: 7, readOnly: true, address: `127.0.0.1:${port}` });
    expect((await fetch(`${d.url}/health`)).status).toBe(200);
    // read-only: true, as a behaviour: a write is refused.
    expect(await status(port, { path: '/latest/secrets/c', method: 'POST', body: '{"payload":"C"}' })).toBe(403);
    expect(fs.readFileSync(path.join(out, 'a'), 'utf8')).toBe('A');
    expect(fs.readFileSync(path.join(out, 'b.env'), 'utf8')).toBe("B='B'\n");
    expect(fs.statSync(path.join(out, 'a')).mode & 0o777).toBe(0o400);
  });

  test('JSON, the same keys; ECS_SECRETS_CONFIG names the file', async () => {
    const port = await freePort();
    const file = configFile(
      'daemon.json',
      `{\n\t"local": true,\n\t"data-dir": ${JSON.stringify(store)},\n\t"application-name": "demo",\n\t"port": ${port},\n\t"cache-ttl": 11,\n\t"allowed-host": ["sidecar.internal"]\n}\n`,
    );
    const d = await daemon([], { port, env: { ECS_SECRETS_CONFIG: file } });
    expect(await started(d)).toMatchObject({ cacheTtlSeconds: 11, readOnly: false });
    const asSidecar = await status(port, { path: '/health', host: `sidecar.internal:${port}` });
    const asOther = await status(port, { path: '/health', host: `elsewhere.example:${port}` });
    expect([asSidecar, asOther]).toEqual([200, 421]);
  });

  test('the command line wins over ECS_SECRETS_*, which wins over the file, which wins over the default', async () => {
    const file = configFile('daemon.yaml', 'cache-ttl: 7\nstale-if-error: 40\n');
    const base = ['--config', file, '--local', '--data-dir', store, ...APP];
    const env = { ECS_SECRETS_CACHE_TTL: '8' };
    const fromFile = await started(await daemon(base));
    const fromEnv = await started(await daemon(base, { env }));
    const fromLine = await started(await daemon([...base, '--cache-ttl', '9'], { env }));
    expect([fromFile, fromEnv, fromLine].map((s) => [s.cacheTtlSeconds, s.staleIfErrorSeconds])).toEqual([
      [7, 40],
      [8, 40],
      [9, 40],
    ]);
    // Unset everywhere: the defaults (watching, so the watched TTL).
    const none = await started(await daemon(['--local', '--data-dir', store, ...APP]));
    expect([none.cacheTtlSeconds, none.staleIfErrorSeconds]).toEqual([
      DAEMON_DEFAULTS.cacheTtlMs / 1000,
      DAEMON_DEFAULTS.staleIfErrorMs / 1000,
    ]);
  });

  test('--config on the command line wins over ECS_SECRETS_CONFIG; an empty value counts as unset', async () => {
    const file = configFile('daemon.yaml', 'cache-ttl: 7\nprefetch:\nread-only: ""\n');
    const d = await daemon(['--config', file, '--local', '--data-dir', store, ...APP], {
      env: { ECS_SECRETS_CONFIG: path.join(dir, 'missing.yaml') },
    });
    expect(await started(d)).toMatchObject({ cacheTtlSeconds: 7, readOnly: false });
  });
});

describe('a bad config file: one line naming it, exit 2, none of its text', () => {
  const refusal = async (file: string) => {
    const r = await runCli(['daemon', '--config', file, '--local', '--data-dir', store, ...APP]);
    expect(r.stderr).not.toContain(SENTINEL);
    expect(r.stderr.split('\n')).toHaveLength(2); // one line and its newline
    return [r.code, r.stderr.replace(/\n$/, '')];
  };

  test('unknown keys, with a suggestion; keys of other commands', async () => {
    const cases: Array<[string, string]> = [
      [
        `cacheTtl: 5\nport: ${SENTINEL}\n`,
        'line 1: unknown key cacheTtl: not a daemon or global setting (did you mean cache-ttl?)',
      ],
      [
        `port: 1\nrender-mod: ${SENTINEL}\n`,
        'line 2: unknown key render-mod: not a daemon or global setting (did you mean render-mode?)',
      ],
      [`payload: ${SENTINEL}\n`, 'line 1: unknown key payload: not a daemon or global setting'],
      [`{"name": "${SENTINEL}"}`, 'line 1: unknown key name: not a daemon or global setting'],
      [`"${SENTINEL} x y": 1\n`, 'line 1: a key that is not a daemon or global setting'],
    ];
    for (const [text, message] of cases) {
      const file = configFile('c.yaml', text);
      expect(await refusal(file)).toEqual([2, `ecs-secrets: config file ${JSON.stringify(file)} ${message}`]);
    }
  });

  test('no token, no config inside the config', async () => {
    const token = configFile('t.yaml', `port: 1\ntoken: ${SENTINEL}\n`);
    expect(await refusal(token)).toEqual([
      2,
      `ecs-secrets: config file ${JSON.stringify(token)} line 2: the token cannot be set in a config file, which is not kept secret; give token-file (a file only the daemon's user can read) or ECS_SECRETS_TOKEN`,
    ]);
    const nested = configFile('n.yaml', `config: ${dir}/other.yaml\n`);
    expect(await refusal(nested)).toEqual([
      2,
      `ecs-secrets: config file ${JSON.stringify(nested)} line 1: config cannot be set in a config file (give --config or ECS_SECRETS_CONFIG)`,
    ]);
  });

  test('wrong types: a list or mapping for a single value, a nested list, a boolean that is not one', async () => {
    const label = (f: string) => `ecs-secrets: config file ${JSON.stringify(f)}`;
    const cases: Array<[string, string]> = [
      [`port: [1, "${SENTINEL}"]\n`, 'line 1: port takes one value (a string, number or true/false), not a list'],
      [`host: {a: "${SENTINEL}"}\n`, 'line 1: host takes one value (a string, number or true/false), not a mapping'],
      [`render:\n  a: "${SENTINEL}"\n`, 'line 1: render takes a value or a list of values, not a mapping'],
      [`prefetch: [a, [b, "${SENTINEL}"]]\n`, 'line 1: prefetch takes a list of values, each a string or number'],
    ];
    for (const [text, message] of cases) {
      const file = configFile('c.yaml', text);
      expect(await refusal(file)).toEqual([2, `${label(file)} ${message}`]);
    }
    const notBoolean = configFile('b.yaml', 'read-only: maybe\n');
    expect(await refusal(notBoolean)).toEqual([
      2,
      `ecs-secrets: read-only in config file ${JSON.stringify(notBoolean)} must be true or false (or 1 or 0), not "maybe"`,
    ]);
    // A value of the right shape goes through the flag's own check, as on the command line.
    const badPort = configFile('p.yaml', 'port: 70000\n');
    expect(await refusal(badPort)).toEqual([
      2,
      'ecs-secrets: invalid --port "70000": expected a whole number from 0 to 65535',
    ]);
    const list = configFile('l.yaml', `- ${SENTINEL}\n`);
    expect(await refusal(list)).toEqual([
      2,
      `${label(list)} must be a mapping of setting to value (e.g. cache-ttl: 60)`,
    ]);
  });

  test('invalid YAML or JSON: where, never what', async () => {
    const cases: Array<[string, string, string]> = [
      ['y.yaml', `port: 1\npassword: ${SENTINEL}: x\n`, 'block as implicit key at line 2, column 11'],
      ['j.json', `{\n  "port": 1,\n  "cache-ttl": ["${SENTINEL}"\n}\n`, 'at line 4'],
      ['d.json', `{"port": 1,\n "port": "${SENTINEL}"}`, 'duplicate key at line 2, column 2'],
    ];
    for (const [name, text, where] of cases) {
      const file = configFile(name, text);
      const [code, message] = await refusal(file);
      expect(code).toBe(2);
      expect(message).toMatch(
        new RegExp(`^ecs-secrets: config file ${JSON.stringify(file)} is not valid YAML or JSON: `),
      );
      expect(message).toContain(where);
    }
  });

  test('a file that is missing, not a file, or may be written by others is refused by path', async () => {
    const missing = path.join(dir, 'missing.yaml');
    expect(await refusal(missing)).toEqual([
      2,
      `ecs-secrets: cannot read config file ${JSON.stringify(missing)}: ENOENT`,
    ]);
    expect(await refusal(dir)).toEqual([
      2,
      `ecs-secrets: refusing config file ${JSON.stringify(dir)}: it is not a regular file`,
    ]);
    const shared = configFile('shared.yaml', `port: ${SENTINEL}\n`, 0o620);
    expect(await refusal(shared)).toEqual([
      2,
      `ecs-secrets: refusing config file ${JSON.stringify(shared)}: it is writable by group or others (mode 620); chmod go-w it`,
    ]);
    // Readable by others is the deployment's choice: only the daemon's settings are in it.
    const readable = configFile('readable.yaml', 'port: 70000\n', 0o644);
    expect((await refusal(readable))[1]).toMatch(/invalid --port "70000"/);
  });
});

describe('help', () => {
  test('daemon --help describes --config and its variable, and reads no settings', async () => {
    const r = await runCli(['daemon', '--help'], { env: { ECS_SECRETS_CONFIG: path.join(dir, 'missing.yaml') } });
    expect(r.code).toBe(0);
    expect(r.stdout.replace(/\s+/g, ' ')).toMatch(
      /--config Settings from a YAML or JSON file.*\[env ECS_SECRETS_CONFIG\]/,
    );
  });
});
