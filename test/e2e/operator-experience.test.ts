/**
 * What an operator meets first: where the embedded store is (and that reads never make one),
 * settings from ECS_SECRETS_* variables, the daemon's safe listening default, output for people,
 * logs in a terminal, errors that name the fix, completion and version.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI, baseEnv, json, runCli } from '../helpers/cli';

let dir: string;
let store: string;
const APP = ['--application-name', 'demo'];
const local = (args: string[], opts: { env?: Record<string, string>; input?: string } = {}) =>
  runCli(['--local', '--data-dir', store, ...APP, ...args], opts);

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-ux-'));
  store = path.join(dir, 'store');
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('the embedded data dir', () => {
  test('read-only commands never create a store: one line naming the directory and the fix, exit 1', async () => {
    const missing = path.join(dir, 'typo');
    const reads = [
      ['fetch', '--name', 'db.password'],
      ['list'],
      ['history', '--name', 'db.password'],
      ['export', '--name', 'db.password'],
      ['label', 'list', '--name', 'db.password'],
      ['revoke', '--name', 'db.password', '--serial', '1'],
      ['config', 'build', '--path', 'app.yaml'],
      ['config', 'list'],
    ];
    for (const args of reads) {
      const r = await runCli(['--local', '--data-dir', missing, ...APP, ...args]);
      expect([args[0], r.code, r.stdout, r.stderr]).toEqual([
        args[0],
        1,
        '',
        `ecs-secrets: no embedded store at ${missing} (create one with \`setup --local\` or \`create\`)\n`,
      ]);
    }
    expect(fs.existsSync(missing)).toBe(false);
  });

  test('ECS_SECRETS_DATA_DIR names the store; --data-dir wins over it', async () => {
    const env = { ECS_SECRETS_DATA_DIR: store };
    const created = await runCli(['create', '--local', ...APP, '--name', 'a', '--payload', 'x'], { env, cwd: dir });
    expect([created.code, created.stderr]).toEqual([0, '']);
    expect(fs.existsSync(path.join(store, 'master.key'))).toBe(true);
    expect(fs.existsSync(path.join(dir, '.ecs-secrets'))).toBe(false);
    const fetched = await runCli(['fetch', '--local', ...APP, '--name', 'a'], { env, cwd: os.tmpdir() });
    expect(json(fetched)).toMatchObject({ name: 'a', payload: 'x' });
    const other = path.join(dir, 'other');
    const r = await runCli(['fetch', '--local', '--data-dir', other, ...APP, '--name', 'a'], { env });
    expect([r.code, r.stderr]).toEqual([1, expect.stringContaining(`no embedded store at ${other}`)]);
  });
});

describe('settings from the environment', () => {
  test('every global flag has an ECS_SECRETS_* variable, and a flag on the command line wins', async () => {
    const env = { ECS_SECRETS_LOCAL: 'true', ECS_SECRETS_DATA_DIR: store, ECS_SECRETS_APPLICATION_NAME: 'demo' };
    expect((await runCli(['create', '--name', 'a', '--payload', 'x'], { env })).code).toBe(0);
    expect(json(await runCli(['fetch', '--name', 'a'], { env }))).toMatchObject({ payload: 'x' });
    // --no-local on the line beats ECS_SECRETS_LOCAL=true: the AWS backend, which wants a region here.
    const aws = await runCli(['fetch', '--no-local', '--name', 'a'], { env });
    expect(aws.code).not.toBe(0);
    expect(aws.stderr).toMatch(/region/);
    const bad = await runCli(['list'], { env: { ...env, ECS_SECRETS_LOCAL: 'yes' } });
    expect([bad.code, bad.stderr]).toEqual([
      2,
      'ecs-secrets: ECS_SECRETS_LOCAL must be true or false (or 1 or 0), not "yes"\n',
    ]);
    // The variables are named in the help, beside their flags.
    const help = await runCli(['daemon', '--help']);
    for (const v of ['ECS_SECRETS_DATA_DIR', 'ECS_SECRETS_LOCAL', 'ECS_SECRETS_CACHE_TTL', 'ECS_SECRETS_HOST'])
      expect(help.stdout.replace(/\s+/g, ' ')).toContain(`[env ${v}]`);
  });

  test('daemon flags come from the environment too; the flag wins', async () => {
    await local(['create', '--name', 'a', '--payload', 'x']);
    const env = { ECS_SECRETS_CACHE_TTL: '7', ECS_SECRETS_READ_ONLY: '1', ECS_SECRETS_PORT: '0' };
    let d = await startDaemon(['--local', '--data-dir', store, ...APP], env);
    expect(d.started).toMatchObject({ cacheTtlSeconds: 7, readOnly: true });
    await d.stop();
    d = await startDaemon(['--local', '--data-dir', store, ...APP, '--cache-ttl', '9'], env);
    expect(d.started).toMatchObject({ cacheTtlSeconds: 9, readOnly: true });
    await d.stop();
    // A variable is no second occurrence of its flag; a flag given twice is still refused.
    const twice = await runCli(['daemon', '--local', ...APP, '--cache-ttl', '1', '--cache-ttl', '2'], { env });
    expect([twice.code, twice.stderr]).toEqual([
      2,
      'ecs-secrets: --cache-ttl was given more than once: a flag may appear only once\n',
    ]);
  });
});

describe('the daemon listens safely by default', () => {
  test('loopback unless --host says otherwise; beyond loopback without a token, a warning at start', async () => {
    await local(['create', '--name', 'a', '--payload', 'x']);
    const base = ['--local', '--data-dir', store, ...APP, '--port', '0'];
    let d = await startDaemon(base);
    expect(d.started.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(d.started.backend).toContain(store); // the directory in use, named at start
    await d.stop();
    expect(d.warnings()).toEqual([]);
    d = await startDaemon([...base, '--host', '0.0.0.0']);
    expect(d.started.address).toMatch(/^0\.0\.0\.0:\d+$/);
    await d.stop();
    expect(d.warnings()).toEqual([expect.stringContaining('listening beyond loopback with no token')]);
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, 'a-long-enough-token-value-0123456789', { mode: 0o600 });
    d = await startDaemon([...base, '--host', '0.0.0.0', '--token-file', tokenFile]);
    await d.stop();
    expect(d.warnings()).toEqual([]);
  });
});

describe('output for people', () => {
  test('fetch --raw prints the payload bytes alone, binary included, with no newline; revoked or missing exits 1', async () => {
    await local(['create', '--name', 'db.password', '--payload', 'pw 1'], {});
    const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 10, 13]);
    fs.writeFileSync(path.join(dir, 'blob'), bytes);
    await local(['create', '--name', 'tls.key', '--binary', '--payload-location', path.join(dir, 'blob')]);
    const text = await rawCli(['fetch', '--raw', 'db.password']);
    expect([text.code, text.stdout.toString('utf8'), text.stderr]).toEqual([0, 'pw 1', '']);
    const binary = await rawCli(['fetch', '--raw', '--name', 'tls.key']);
    expect([binary.code, binary.stdout.equals(bytes), binary.stderr]).toEqual([0, true, '']);
    await local(['create', '--name', 'db.password', '--payload', 'pw 2']);
    await local(['revoke', '--name', 'db.password', '--serial', '1']);
    const revoked = await rawCli(['fetch', '--raw', 'db.password', '--serial', '1']);
    expect([revoked.code, revoked.stdout.length, revoked.stderr]).toEqual([
      1,
      0,
      'ecs-secrets: serial 1 of db.password is revoked: it has no payload\n',
    ]);
    const missing = await rawCli(['fetch', '--raw', 'nope']);
    expect([missing.code, missing.stdout.length, missing.stderr.split('\n').length]).toEqual([1, 0, 2]);
    // Without --raw the original's JSON and exit code stay, and stderr says what the empty payload means.
    const json1 = await local(['fetch', 'db.password', '--serial', '1']);
    expect([json1.code, JSON.parse(json1.stdout)]).toEqual([
      0,
      { name: 'db.password', serial: 1, payload: '', active: false },
    ]);
    expect(json1.stderr).toContain('serial 1 of db.password is revoked');
  });

  test('the secret may be named as the first argument; --name still works; both must agree', async () => {
    expect((await local(['create', 'db.password', '--payload', 'x'])).code).toBe(0);
    expect(json(await local(['fetch', 'db.password']))).toMatchObject({ name: 'db.password', payload: 'x' });
    expect(json(await local(['get', '--name', 'db.password']))).toMatchObject({ payload: 'x' });
    expect(json(await local(['fetch', 'db.password', '--name', 'db.password']))).toMatchObject({ payload: 'x' });
    expect(json(await local(['history', 'db.password']))).toHaveLength(1);
    const both = await local(['fetch', 'db.password', '--name', 'other']);
    expect([both.code, both.stderr]).toEqual([
      2,
      'ecs-secrets: the secret is named twice, differently (as an argument and as --name): give one\n',
    ]);
    const none = await local(['fetch']);
    expect([none.code, none.stderr]).toEqual([
      2,
      'ecs-secrets: Missing required argument: name (give it as NAME or --name NAME)\n',
    ]);
  });

  test('--output table for list, history and label list; JSON stays the default', async () => {
    await local(['create', 'db.password', '--payload', 'x']);
    await local(['create', 'db.password', '--payload', 'y']);
    await local(['create', 'api.key', '--payload', 'z']);
    await local(['label', 'set', 'db.password', '--label', 'prod', '--serial', '1']);
    expect(json(await local(['list']))).toEqual([
      { name: 'api.key', latestSerial: 1 },
      { name: 'db.password', latestSerial: 2 },
    ]);
    expect((await local(['list', '--output', 'table'])).stdout).toBe(
      'NAME         LATEST\napi.key      1\ndb.password  2\n',
    );
    const history = (await local(['history', 'db.password', '--output', 'table'])).stdout.split('\n');
    expect(history[0]).toMatch(/^SERIAL +ACTIVE +CREATED +BY +REVOKED +SOURCE +LABELS$/);
    expect(history[1]).toMatch(/^1 +true +\d{4}-\d\d-\d\dT\S+ +local:\S+ +- +- +prod$/);
    expect(history[2]).toMatch(/^2 +true +/);
    const labels = (await local(['label', 'list', 'db.password', '--output', 'table'])).stdout.split('\n');
    expect(labels.slice(0, 3)).toEqual(['LABEL  SERIAL', 'prod   1', '']);
    expect(labels[3]).toMatch(/^AT +LABEL +FROM +TO +BY$/);
    const bad = await local(['list', '--output', 'yaml']);
    expect(bad.code).toBe(2);
    const file = path.join(dir, 'in.env');
    fs.writeFileSync(file, 'DB_USER=app\nAPI_KEY=k\n');
    const imported = await local(['import', 'dotenv', file, '--output', 'table']);
    expect([imported.code, imported.stdout.split('\n')[0]]).toEqual([
      0,
      expect.stringMatching(/^STATUS +NAME +SOURCE +SERIALS OR ERROR$/),
    ]);
    expect(imported.stdout).toMatch(/\nimported +\S+ +\S+ +1\n/);
    expect(imported.stdout).not.toContain('app'); // never a value
  });
});

describe('logs', () => {
  /** Run the CLI on a pseudo-terminal (script(1)), as a person at a terminal does. */
  const onTerminal = (args: string[]) =>
    new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const line = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
      const child = spawn('script', ['-qec', line, '/dev/null'], {
        env: baseEnv() as NodeJS.ProcessEnv,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
    });

  test('pretty on a terminal, JSON when stderr is not one; --log-format and --log-level choose', async () => {
    await local(['create', 'db.password', '--payload', 'x']);
    const args = ['--local', '--data-dir', store, ...APP, 'fetch', 'db.password', '--log-level', 'debug'];
    const tty = await onTerminal(args);
    expect(tty.code).toBe(0);
    // pino-pretty's line: time, level name, message; no JSON, no epoch milliseconds.
    expect(tty.out).toMatch(/\[\d\d:\d\d:\d\d\.\d{3}\] \S*DEBUG\S* \(ecs-secrets\/\d+\): \S*secret fetched/);
    expect(tty.out).not.toContain('"level":20');
    const forced = await onTerminal([...args, '--log-format', 'json']);
    expect(forced.out).toContain('"level":20');
    const piped = await local(['fetch', 'db.password', '--log-level', 'debug']);
    expect(
      piped.stderr
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l).msg),
    ).toContain('secret fetched');
    const quiet = await local(['fetch', 'db.password']);
    expect(quiet.stderr).toBe(''); // warn by default: a successful command says nothing
    const env = await local(['fetch', 'db.password'], { env: { ECS_SECRETS_LOG_LEVEL: 'debug' } });
    expect(env.stderr).toContain('"msg":"secret fetched"');
  });
});

describe('errors that name the fix', () => {
  test('an unknown flag is reported before a missing one, with a suggestion', async () => {
    const r = await local(['revoke', '--nmae', 'db.password', '--serial', '1']);
    expect([r.code, r.stderr]).toEqual([2, 'ecs-secrets: Unknown argument: --nmae (did you mean --name?)\n']);
    const far = await local(['list', '--frobnicate']);
    expect([far.code, far.stderr]).toEqual([2, 'ecs-secrets: Unknown argument: --frobnicate\n']);
  });

  test('no credentials, or no region, at the AWS backend: the hint names --local', async () => {
    const noAws = {
      AWS_REGION: 'eu-west-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: path.join(dir, 'none'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
      HOME: dir,
    };
    const creds = await runCli(['fetch', ...APP, 'db.password'], { env: noAws });
    expect(creds.code).toBe(1);
    expect(creds.stderr).toMatch(/^ecs-secrets: no AWS credentials found \(for the embedded store, add --local\)/);
    const region = await runCli(['list', ...APP, '--data-dir', store], {
      env: { ...noAws, AWS_REGION: undefined as unknown as string },
    });
    expect([region.code, region.stderr]).toEqual([
      2,
      'ecs-secrets: no AWS region: pass --region or set AWS_REGION (for the embedded store, add --local)\n',
    ]);
  });
});

describe('discoverability', () => {
  test('completion prints a bash script, or a zsh one from zsh, and completes commands and flags', async () => {
    const bash = await runCli(['completion'], { env: { SHELL: '/bin/bash' } });
    expect(bash.code).toBe(0);
    expect(bash.stdout).toContain('###-begin-ecs-secrets-completions-###');
    expect(bash.stdout).toContain('complete -o bashdefault -o default -F _ecs-secrets_yargs_completions ecs-secrets');
    const zsh = await runCli(['completion'], { env: { SHELL: '/bin/zsh' } });
    expect(zsh.stdout.startsWith('#compdef ecs-secrets')).toBe(true);
    const commands = await runCli(['--get-yargs-completions', 'ecs-secrets', '']);
    expect(commands.stdout.split('\n')).toEqual(expect.arrayContaining(['fetch', 'daemon', 'version', 'completion']));
    const flags = await runCli(['--get-yargs-completions', 'ecs-secrets', 'fetch', '--']);
    expect([flags.code, flags.stderr]).toEqual([0, '']);
    expect(flags.stdout.split('\n')).toEqual(expect.arrayContaining(['--name', '--raw', '--serial', '--local']));
  });

  test('version names the version, the commit and date of the build, and Node; --version stays the number', async () => {
    const v = await runCli(['version']);
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'));
    expect(json(v)).toEqual({
      version: pkg.version,
      commit: expect.stringMatching(/^([0-9a-f]{12}(-dirty)?|unknown)$/),
      built: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      node: expect.stringMatching(/^v\d+\.\d+\.\d+$/),
    });
    expect((await runCli(['--version'])).stdout).toBe(`${pkg.version}\n`);
  });

  test("a command's help: usage line, its own flags before the global ones, an example", async () => {
    for (const cmd of [['fetch'], ['create'], ['revoke'], ['list'], ['history'], ['daemon'], ['label', 'set']]) {
      const h = (await runCli([...cmd, '--help'])).stdout;
      expect(h.startsWith(`ecs-secrets ${cmd.join(' ')}`)).toBe(true);
      const own = h.indexOf('\nFlags:\n');
      const global = h.indexOf('\nGlobal flags:\n');
      expect([cmd.join(' '), own > 0, global > own]).toEqual([cmd.join(' '), true, true]);
      expect(h).toMatch(/\nExamples:\n {2}ecs-secrets /);
    }
  });

  test('--debug stack traces name our TypeScript files, not the bundle', async () => {
    const r = await local(['fetch', 'nope', '--debug']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\n\s+at .*src\/cli\/commands\/fetch\.ts:\d+:\d+/);
  });
});

/** The CLI with stdout as bytes (binary payloads). */
function rawCli(args: string[]): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, '--local', '--data-dir', store, ...APP, ...args], {
      env: baseEnv() as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
  });
}

describe('npm start', () => {
  test('takes daemon flags and starts the built daemon without building again when dist/ is current', async () => {
    // `npm start -- FLAGS` runs this script with FLAGS; npm test has just built dist/.
    const start = path.join(__dirname, '..', '..', 'scripts', 'start.mjs');
    const built = fs.statSync(CLI).mtimeMs;
    const d = await startNode([start, '--port', '0', '--data-dir', store, '--log-format', 'json']);
    await d.stop();
    expect(fs.statSync(CLI).mtimeMs).toBe(built);
    expect(d.started).toMatchObject({ application: 'demo', address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    expect(d.started.backend).toContain(store);
  });
});

interface StartedDaemon {
  child: ChildProcess;
  /** The "daemon started" line's fields. */
  started: Record<string, unknown>;
  /** The messages of the warning lines (pino level 40): complete once stopped. */
  warnings(): string[];
  stop(): Promise<void>;
}

/** Spawn `daemon ARGS` as given (no --host or --port added) and wait until it is healthy. */
function startDaemon(args: string[], env: Record<string, string> = {}): Promise<StartedDaemon> {
  return startNode([CLI, 'daemon', ...args], env);
}

/** Spawn node with `argv`, a daemon's command line, and wait until it is healthy. */
async function startNode(argv: string[], env: Record<string, string> = {}): Promise<StartedDaemon> {
  const child = spawn(process.execPath, argv, {
    env: { ...baseEnv(), ...env } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  // 'close': the process has exited and its stderr is read to the end.
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const lines = () =>
    stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const started = await new Promise<Record<string, unknown>>((resolve, reject) => {
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      // Healthy: past start-up, so SIGTERM is handled (a graceful stop flushes every line).
      const line = lines().find((l) => l.msg === 'daemon started');
      if (line && lines().some((l) => String(l.msg).endsWith('healthy'))) resolve(line);
    });
    child.on('exit', (code) => reject(new Error(`daemon exited with ${code}: ${stderr}`)));
  });
  return {
    child,
    started,
    warnings: () =>
      lines()
        .filter((l) => l.level === 40)
        .map((l) => String(l.msg)),
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
