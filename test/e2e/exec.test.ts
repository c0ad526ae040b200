/**
 * exec, spawned as a user (or an ECS task's entrypoint) runs it, against the stand-ins: the child
 * gets the secrets in its environment and nowhere else, its exit code comes back (128+n when a
 * signal killed it), signals reach it once, a child ignoring SIGTERM is killed after
 * --stop-timeout, nothing is started when a secret is missing, and --watch applies --on-change on
 * a new version while a backend outage leaves the child running.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI, baseEnv, runCli } from '../helpers/cli';
import { spawnDaemon } from '../helpers/daemon';
import { type StandIns, createAppResources, startStandIns } from '../standins';

const APP = 'execapp';
const SECRET = `p@ss 'w"ord' $HOME \`id\` \\ \n ü 😀`;
let s: StandIns;
let dir: string;

const cli = (args: string[], input?: string) => runCli(['--application-name', APP, ...args], { env: s.env, input });

beforeAll(async () => {
  s = await startStandIns();
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-exec-'));
  // One process writes them all: the tests are about what exec makes of the stored values.
  const seeded = await cli(
    ['import', 'json', '-'],
    JSON.stringify({ 'app.db-password': SECRET, 'app.api-key': 'k1', 'other.x': 'x' }),
  );
  expect([seeded.code, JSON.parse(seeded.stdout).imported.length]).toEqual([0, 3]);
}, 60_000);
afterAll(async () => {
  await s?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A running `ecs-secrets exec`, its output collected as it comes. */
interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Wait until stdout matches (bounded by the test's own timeout). */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startExec(
  args: string[],
  env: Record<string, string> = {},
  globalArgs: string[] = ['--application-name', APP],
): Running {
  const child = spawn(process.execPath, [CLI, ...globalArgs, 'exec', ...args], {
    env: { ...baseEnv(), ...s.env, ...env } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d) => (err += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    async waitFor(pattern) {
      for (;;) {
        const m = out.match(pattern);
        if (m) return m;
        if (child.exitCode !== null)
          throw new Error(`exec ended (${child.exitCode}) before ${pattern}: ${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    exit,
  };
}

/** A node child: `script` runs after printing "ready <pid>"; it logs each signal it gets. */
function nodeChild(script: string): string[] {
  return [
    '--',
    process.execPath,
    '-e',
    `for (const s of ['SIGHUP','SIGUSR1','SIGUSR2','SIGINT','SIGQUIT']) process.on(s, () => console.log('got ' + s));
     console.log('ready ' + process.pid);
     ${script}`,
  ];
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // An orphan that died may wait as a zombie for a reaper that never comes here: dead all the same.
  try {
    return !/^\d+ \(.*\) [ZX]/s.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** Wait until pid is gone; false if it still runs after `ms` (a bound far above the stop timeout under test). */
async function gone(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (alive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  return !alive(pid);
}

test('the secrets are in the child environment, under their variable names; never in exec output', async () => {
  const r = await runCli(
    [
      '--application-name',
      APP,
      'exec',
      '--prefix',
      'app.',
      '--name',
      'OTHER=other.x',
      '--',
      process.execPath,
      '-e',
      'process.stdout.write(JSON.stringify(process.env))',
    ],
    { env: { ...s.env, KEEP_ME: 'yes' } },
  );
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const env = JSON.parse(r.stdout);
  expect(env).toEqual(expect.objectContaining({ DB_PASSWORD: SECRET, API_KEY: 'k1', OTHER: 'x', KEEP_ME: 'yes' }));
});

test('--pristine: only the secrets and PATH', async () => {
  const r = await runCli(
    [
      '--application-name',
      APP,
      'exec',
      '--pristine',
      '--name',
      'app.api-key',
      '--',
      process.execPath,
      '-e',
      'process.stdout.write(JSON.stringify(process.env))',
    ],
    {
      env: { ...s.env, KEEP_ME: 'yes' },
    },
  );
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toEqual({ APP_API_KEY: 'k1', PATH: process.env.PATH });
});

test("exit codes: the child's own, and 128+n when a signal killed it", async () => {
  const run = (script: string) =>
    runCli(['--application-name', APP, 'exec', '--name', 'app.api-key', '--', process.execPath, '-e', script], {
      env: s.env,
    });
  // (0 passes through in every test above that runs a command to completion.)
  expect((await run('process.exit(7)')).code).toBe(7);
  expect((await run("process.kill(process.pid, 'SIGKILL')")).code).toBe(137);
  expect((await run("process.kill(process.pid, 'SIGTERM')")).code).toBe(143);
});

test('a missing secret: exit 1, one line naming it, and the command is never started', async () => {
  const marker = path.join(dir, 'started');
  const r = await runCli(
    [
      '--application-name',
      APP,
      'exec',
      '--name',
      'app.api-key',
      '--name',
      'app.nope',
      '--',
      process.execPath,
      '-e',
      `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`,
    ],
    {
      env: s.env,
    },
  );
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/^ecs-secrets: secret app\.nope not found \(no active version\)\n$/);
  expect(fs.existsSync(marker)).toBe(false);
});

test('bad input: one line, exit 2, nothing started', async () => {
  const marker = path.join(dir, 'bad-started');
  const cmd = ['--', process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`];
  const cases: Array<[string[], RegExp]> = [
    [
      ['--name', 'app.api-key', '--on-change', 'reload', ...cmd],
      /unknown --on-change "reload": use restart, exit or signal:SIG/,
    ],
    [['--name', 'app.api-key', '--on-change', 'signal:SIGNOPE', ...cmd], /unknown signal "SIGNOPE"/],
    [['--name', 'app.api-key', '--watch', '0', ...cmd], /invalid --watch "0"/],
    [['--name', 'app.api-key', '--stop-timeout', 'soon', ...cmd], /invalid --stop-timeout "soon"/],
    [['--name', 'app.api-key'], /name the command to run after --/],
    [cmd, /select secrets with --name/],
    [['--name', 'app.db-password', '--name', 'app.db.password', ...cmd], /both map to the variable APP_DB_PASSWORD/],
  ];
  for (const [args, pattern] of cases) {
    const r = await runCli(['--application-name', APP, 'exec', ...args], { env: s.env });
    expect({ args, code: r.code, line: r.stderr.split('\n')[0] }).toEqual({
      args,
      code: 2,
      line: expect.stringMatching(pattern),
    });
    expect(r.stderr).not.toContain('k1');
  }
  expect(fs.existsSync(marker)).toBe(false);
});

test('a command that cannot be run: 127 when it does not exist, 126 when it is not executable, as a shell says', async () => {
  const notExecutable = path.join(dir, 'not-executable.sh');
  fs.writeFileSync(notExecutable, '#!/bin/sh\necho started\n', { mode: 0o644 });
  const cases: Array<[string, number, RegExp]> = [
    [path.join(dir, 'no-such-command'), 127, /^ecs-secrets: cannot run ".*no-such-command": command not found\n$/],
    ['no-such-command-on-path', 127, /^ecs-secrets: cannot run "no-such-command-on-path": command not found\n$/],
    [notExecutable, 126, /^ecs-secrets: cannot run ".*not-executable\.sh": permission denied\n$/],
  ];
  for (const [command, code, pattern] of cases) {
    const r = await runCli(['--application-name', APP, 'exec', '--name', 'app.api-key', '--', command], { env: s.env });
    expect({ command, code: r.code, stderr: r.stderr }).toEqual({
      command,
      code,
      stderr: expect.stringMatching(pattern),
    });
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toContain('k1');
  }
});

test('signals are forwarded once each; SIGTERM ends the child and exec exits with its code', async () => {
  const e = startExec([
    '--name',
    'app.api-key',
    ...nodeChild(
      "process.on('SIGTERM', () => { console.log('got SIGTERM'); process.exit(0); }); setInterval(() => {}, 1000);",
    ),
  ]);
  const pid = Number((await e.waitFor(/ready (\d+)/))[1]);
  for (const sig of ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGINT', 'SIGQUIT'] as const) {
    e.child.kill(sig);
    await e.waitFor(new RegExp(`got ${sig}\\n`));
  }
  e.child.kill('SIGTERM');
  expect(await e.exit).toEqual({ code: 0, signal: null });
  expect(e.stdout()).toBe(`ready ${pid}\ngot SIGHUP\ngot SIGUSR1\ngot SIGUSR2\ngot SIGINT\ngot SIGQUIT\ngot SIGTERM\n`);
  expect(alive(pid)).toBe(false);
}, 60_000);

test('a child ignoring SIGTERM is killed after --stop-timeout: exit 137, no process left', async () => {
  const e = startExec([
    '--name',
    'app.api-key',
    '--stop-timeout',
    '1',
    ...nodeChild("process.on('SIGTERM', () => console.log('ignored SIGTERM')); setInterval(() => {}, 1000);"),
  ]);
  const pid = Number((await e.waitFor(/ready (\d+)/))[1]);
  e.child.kill('SIGTERM');
  await e.waitFor(/ignored SIGTERM/);
  expect(await e.exit).toEqual({ code: 137, signal: null });
  expect(e.stderr()).toMatch(/did not stop after SIGTERM: sending SIGKILL/);
  expect(alive(pid)).toBe(false);
}, 60_000);

describe('--watch 1', () => {
  test('a new version restarts the child with the new value', async () => {
    expect((await cli(['create', '--name', 'w1.token', '--payload', 'v1'])).code).toBe(0);
    const e = startExec([
      '--prefix',
      'w1.',
      '--watch',
      '1',
      '--stop-timeout',
      '5',
      '--',
      process.execPath,
      '-e',
      "console.log('start ' + process.env.TOKEN + ' ' + process.pid); setInterval(() => {}, 1000);",
    ]);
    const first = Number((await e.waitFor(/start v1 (\d+)/))[1]);
    expect((await cli(['create', '--name', 'w1.token', '--payload', 'v2'])).code).toBe(0);
    const second = Number((await e.waitFor(/start v2 (\d+)/))[1]);
    expect(second).not.toBe(first);
    expect(alive(first)).toBe(false);
    expect(e.stderr()).toMatch(/"changed":\["w1\.token#2"\].*secrets changed/);
    // A rotation is routine: logged at info, not as a warning.
    const changedLine = JSON.parse(
      e
        .stderr()
        .split('\n')
        .find((l) => l.includes('secrets changed'))!,
    );
    expect([30, 'info']).toContain(changedLine.level);
    expect(e.stderr()).not.toMatch(/v1|v2/);
    e.child.kill('SIGTERM');
    expect(await e.exit).toEqual({ code: 143, signal: null });
  }, 90_000);

  test('--on-change signal:SIGHUP signals the child instead; exit stops it and exits 0', async () => {
    expect((await cli(['create', '--name', 'w2.token', '--payload', 'v1'])).code).toBe(0);
    const e = startExec([
      '--prefix',
      'w2.',
      '--watch',
      '1',
      '--on-change',
      'signal:SIGHUP',
      ...nodeChild('setInterval(() => {}, 1000);'),
    ]);
    await e.waitFor(/ready/);
    expect((await cli(['create', '--name', 'w2.token', '--payload', 'v2'])).code).toBe(0);
    await e.waitFor(/got SIGHUP/);
    expect(e.stdout().match(/ready/g)).toHaveLength(1); // not restarted
    e.child.kill('SIGTERM');
    await e.exit;

    const x = startExec([
      '--prefix',
      'w2.',
      '--watch',
      '1',
      '--on-change',
      'exit',
      ...nodeChild('setInterval(() => {}, 1000);'),
    ]);
    const pid = Number((await x.waitFor(/ready (\d+)/))[1]);
    expect((await cli(['create', '--name', 'w2.token', '--payload', 'v3'])).code).toBe(0);
    expect(await x.exit).toEqual({ code: 0, signal: null });
    expect(alive(pid)).toBe(false);
  }, 90_000);

  test('a backend outage during the watch logs a warning and keeps the child running', async () => {
    expect((await cli(['create', '--name', 'w3.token', '--payload', 'v1'])).code).toBe(0);
    const e = startExec(['--prefix', 'w3.', '--watch', '1', ...nodeChild('setInterval(() => {}, 1000);')]);
    const pid = Number((await e.waitFor(/ready (\d+)/))[1]);
    await s.dynamo.setFault({ down: true });
    try {
      for (;;) {
        if (/re-reading the secrets failed: the command keeps running/.test(e.stderr())) break;
        expect(e.child.exitCode).toBeNull();
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await s.dynamo.setFault(null);
    }
    expect(alive(pid)).toBe(true);
    expect(e.stdout().match(/ready/g)).toHaveLength(1);
    // and once the backend is back, a rotation is applied again
    expect((await cli(['create', '--name', 'w3.token', '--payload', 'v2'])).code).toBe(0);
    await e.waitFor(/ready[\s\S]*ready/);
    e.child.kill('SIGTERM');
    await e.exit;
  }, 120_000);

  test('through a daemon (--daemon-url, token): a rotation written through it restarts the child', async () => {
    fs.writeFileSync(path.join(dir, 'token'), 'tok');
    const d = await spawnDaemon(
      ['--application-name', APP, '--token-file', path.join(dir, 'token'), '--cache-ttl', '1'],
      { env: s.env, waitHealthy: true, timeoutMs: 60_000 },
    );
    try {
      expect((await cli(['create', '--name', 'w4.token', '--payload', 'v1'])).code).toBe(0);
      const e = startExec(
        [
          '--prefix',
          'w4.',
          '--watch',
          '1',
          '--',
          process.execPath,
          '-e',
          "console.log('start ' + process.env.TOKEN); setInterval(() => {}, 1000);",
        ],
        {
          ECS_SECRETS_DAEMON_URL: d.url,
          ECS_SECRETS_TOKEN: 'tok',
          // no AWS access at all: everything goes through the daemon
          AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9',
          AWS_ENDPOINT_URL_KMS: 'http://127.0.0.1:9',
        },
      );
      await e.waitFor(/start v1/);
      const post = await fetch(`${d.url}/v1/secrets/w4.token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-ecs-secrets-token': 'tok' },
        body: JSON.stringify({ payload: 'v2' }),
      });
      expect(post.status).toBe(201);
      await e.waitFor(/start v2/);
      e.child.kill('SIGTERM');
      await e.exit;
    } finally {
      await d.stop();
    }
  }, 90_000);
});

describe('--local: what CMD inherits from exec', () => {
  let data: string;
  const globals = () => ['--local', '--data-dir', data, '--application-name', 'demo'];
  const local = (args: string[], input?: string) => runCli([...globals(), ...args], { input });
  beforeAll(async () => {
    data = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-exec-local-'));
    expect((await local(['create', '--name', 'fd.token', '--payload', 'v1'])).code).toBe(0);
  }, 60_000);
  afterAll(() => fs.rmSync(data, { recursive: true, force: true }));

  test('CMD holds no descriptor into the data dir, at start and after a restart under --watch', async () => {
    const real = fs.realpathSync(data);
    const e = startExec(
      [
        '--prefix',
        'fd.',
        '--watch',
        '1',
        '--',
        process.execPath,
        '-e',
        `const fs = require('fs');
         const targets = fs.readdirSync('/proc/self/fd').map((fd) => { try { return fs.readlinkSync('/proc/self/fd/' + fd); } catch { return ''; } });
         console.log('start ' + process.env.TOKEN + ' ' + JSON.stringify(targets.filter((t) => t.startsWith(${JSON.stringify(real)}))));
         setInterval(() => {}, 1000);`,
      ],
      {},
      globals(),
    );
    expect((await e.waitFor(/start v1 (.*)\n/))[1]).toBe('[]');
    expect((await local(['create', '--name', 'fd.token', '--payload', 'v2'])).code).toBe(0);
    expect((await e.waitFor(/start v2 (.*)\n/))[1]).toBe('[]');
    e.child.kill('SIGTERM');
    expect(await e.exit).toEqual({ code: 143, signal: null });
  }, 90_000);

  test("CMD gets the umask exec was started with, not the store's 077", async () => {
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(
        'sh',
        [
          '-c',
          'umask 027; exec "$@"',
          'sh',
          process.execPath,
          CLI,
          ...globals(),
          'exec',
          '--name',
          'fd.token',
          '--',
          'sh',
          '-c',
          'umask',
        ],
        { env: baseEnv() as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(r).toEqual({ code: 0, stdout: '0027\n', stderr: '' });
  }, 60_000);
});

describe("CMD's process group", () => {
  test("exec's SIGTERM stops everything CMD started: a grandchild ignoring SIGTERM gets SIGKILL after --stop-timeout", async () => {
    const e = startExec([
      '--name',
      'app.api-key',
      '--stop-timeout',
      '1',
      '--',
      'sh',
      '-c',
      // The first grandchild names itself only once it ignores SIGTERM, so the signal cannot come first.
      `sh -c 'trap "" TERM; echo "bg $$"; exec sleep 1000 >/dev/null 2>&1' & sleep 1000 >/dev/null 2>&1 & echo "bg $!"; wait`,
    ]);
    await e.waitFor(/bg \d+\n[\s\S]*bg \d+\n/);
    const pids = [...e.stdout().matchAll(/bg (\d+)/g)].map((m) => Number(m[1]));
    e.child.kill('SIGTERM');
    expect((await e.exit).code).toBe(143);
    for (const pid of pids) expect({ pid, gone: await gone(pid, 20_000) }).toEqual({ pid, gone: true });
    expect(e.stderr()).toMatch(/processes the command started did not stop after SIGTERM: sending SIGKILL/);
  }, 60_000);

  test('a CMD that exits leaves nothing of its group behind', async () => {
    const e = startExec([
      '--name',
      'app.api-key',
      '--stop-timeout',
      '1',
      '--',
      'sh',
      '-c',
      'sleep 1000 >/dev/null 2>&1 & echo "bg $!"; exit 3',
    ]);
    const bg = Number((await e.waitFor(/bg (\d+)\n/))[1]);
    expect((await e.exit).code).toBe(3);
    expect(await gone(bg, 20_000)).toBe(true);
  }, 60_000);

  test('a restart under --watch stops the old group whole before the new CMD starts', async () => {
    expect((await cli(['create', '--name', 'w5.token', '--payload', 'v1'])).code).toBe(0);
    const e = startExec([
      '--prefix',
      'w5.',
      '--watch',
      '1',
      '--stop-timeout',
      '5',
      '--',
      'sh',
      '-c',
      'sleep 1000 >/dev/null 2>&1 & echo "start $TOKEN $!"; wait',
    ]);
    const first = Number((await e.waitFor(/start v1 (\d+)\n/))[1]);
    expect((await cli(['create', '--name', 'w5.token', '--payload', 'v2'])).code).toBe(0);
    const second = Number((await e.waitFor(/start v2 (\d+)\n/))[1]);
    // stopped before the new one started: gone already, not eventually
    expect(alive(first)).toBe(false);
    expect(alive(second)).toBe(true);
    e.child.kill('SIGTERM');
    await e.exit;
    expect(await gone(second, 20_000)).toBe(true);
  }, 90_000);
});

describe('an environment too large for execve', () => {
  const BIG = 'x'.repeat(140_000); // a legal payload, over Linux's 128 KiB per variable

  test('at start: exit 2, one line naming the secret and variable, CMD not started', async () => {
    expect((await cli(['create', '--name', 'big.blob', '--payload-location', '-'], BIG)).code).toBe(0);
    const marker = path.join(dir, 'big-started');
    const r = await runCli(
      [
        '--application-name',
        APP,
        'exec',
        '--name',
        'big.blob',
        '--',
        process.execPath,
        '-e',
        `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`,
      ],
      { env: s.env },
    );
    expect(r).toEqual({
      code: 2,
      stdout: '',
      stderr:
        'ecs-secrets: secret "big.blob" as BIG_BLOB is 140010 bytes as "BIG_BLOB=value"; an environment variable holds at most 131072 bytes: render it to a file instead\n',
    });
    expect(fs.existsSync(marker)).toBe(false);
  }, 60_000);

  test('on a rotation: CMD keeps running on the old environment, the reason is logged once, a later fit version applies', async () => {
    expect((await cli(['create', '--name', 'w6.token', '--payload', 'v1'])).code).toBe(0);
    const e = startExec([
      '--prefix',
      'w6.',
      '--watch',
      '1',
      '--',
      process.execPath,
      '-e',
      "console.log('start ' + process.env.TOKEN.slice(0, 2) + ' ' + process.pid); setInterval(() => {}, 1000);",
    ]);
    const pid = Number((await e.waitFor(/start v1 (\d+)/))[1]);
    expect((await cli(['create', '--name', 'w6.token', '--payload-location', '-'], BIG)).code).toBe(0);
    while (!/cannot be delivered as an environment/.test(e.stderr())) {
      expect(e.child.exitCode).toBeNull();
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(alive(pid)).toBe(true);
    expect(e.stderr()).toMatch(/secret \\"w6\.token\\" as TOKEN is 140007 bytes/);
    expect(e.stderr()).not.toContain('xxxxxxxx');
    expect((await cli(['create', '--name', 'w6.token', '--payload', 'v3'])).code).toBe(0);
    await e.waitFor(/start v3/);
    expect(alive(pid)).toBe(false);
    expect(e.stdout().match(/start/g)).toHaveLength(2);
    expect(e.stderr().match(/cannot be delivered/g)).toHaveLength(1);
    e.child.kill('SIGTERM');
    await e.exit;
  }, 90_000);
});

test('a prefix never sets PATH, NODE_OPTIONS and other loader variables, even with --pristine; --name VAR=NAME does', async () => {
  const seeded = await cli(
    ['import', 'json', '-'],
    JSON.stringify({ 'lo.node_options': '--title=from-a-secret', 'lo.path': '/from-a-secret', 'lo.ok': 'fine' }),
  );
  expect([seeded.code, JSON.parse(seeded.stdout).imported.length]).toEqual([0, 3]);
  const marker = path.join(dir, 'loader-started');
  const cmd = ['--', process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`];
  for (const extra of [[], ['--pristine']]) {
    const r = await runCli(['--application-name', APP, 'exec', '--prefix', 'lo.', ...extra, ...cmd], { env: s.env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^ecs-secrets: secret "lo\.node_options" would set NODE_OPTIONS, secret "lo\.path" would set PATH, which changes how programs load: a prefix never sets it; deliver it on purpose with --name NODE_OPTIONS=lo\.node_options\n$/,
    );
  }
  expect(fs.existsSync(marker)).toBe(false);
  const ok = await runCli(
    [
      '--application-name',
      APP,
      'exec',
      '--prefix',
      'lo.',
      '--name',
      'NODE_OPTIONS=lo.node_options',
      '--name',
      'PATH=lo.path',
      '--',
      process.execPath,
      '-e',
      'process.stdout.write(JSON.stringify([process.title, process.env.PATH, process.env.OK]))',
    ],
    { env: s.env },
  );
  expect([ok.code, ok.stderr, ok.stdout]).toEqual([0, '', JSON.stringify(['from-a-secret', '/from-a-secret', 'fine'])]);
}, 60_000);

test('--name __proto__=NAME is delivered as the variable __proto__', async () => {
  const r = await runCli(['--application-name', APP, 'exec', '--name', '__proto__=app.api-key', '--', 'env'], {
    env: s.env,
  });
  expect(r.code).toBe(0);
  expect(r.stdout.split('\n')).toContain('__proto__=k1');
});
