/**
 * The embedded store belongs to its owner, and operators get clear errors for their own mistakes
 * with the data dir.
 *
 * The "other local user" is uid/gid 65534 (nobody), spawned with setpriv: the suite runs as root,
 * as CI does. It finds the store's port the way an attacker would (here: the test hands it over,
 * as `ss -ltnp` would) and talks DynamoDB's JSON protocol to it with node:http.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI, baseEnv, json, runCli, type CliResult } from '../helpers/cli';
import { spawnDaemon, type SpawnedDaemon } from '../helpers/daemon';
import { cliFor } from '../helpers/cli-for-user';

const NOBODY = 65534;
const APP = 'demo';
const TABLE = `ECS-Secrets-${APP}-Secrets`;
const asRoot = process.getuid?.() === 0;
// Without root there is no second user to be: say so rather than pass vacuously.
const rootOnly = asRoot ? test : test.skip;

let top: string;
/** The CLI as nobody can run it (a copy when this checkout is in a folder nobody cannot enter). */
let nobodyCli = CLI;
let cleanupCli = () => undefined as void;
beforeAll(() => {
  top = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-owner-'));
  fs.chmodSync(top, 0o755); // traversable by nobody, writable only by root
  if (asRoot) ({ cli: nobodyCli, cleanup: cleanupCli } = cliFor(NOBODY));
});
afterAll(() => {
  fs.rmSync(top, { recursive: true, force: true });
  cleanupCli();
});

let n = 0;
const freshDir = () => path.join(top, `d${++n}`);
const local = (dir: string, args: string[], input?: string) =>
  runCli(['--local', '--data-dir', dir, '--application-name', APP, ...args], { input });

/** Run a command as another user (nobody, no supplementary groups), collecting its output. */
function runAs(uid: number, argv: string[], opts: { cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...argv], {
      env: { ...baseEnv(), HOME: '/nonexistent' } as NodeJS.ProcessEnv,
      cwd: opts.cwd ?? '/',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * What another local user tries against a port it found: re-activate serial 1 (revoked), read it,
 * scan the table, list the tables; and read the data dir. Prints one JSON line of what happened.
 * `key`, when given, is sent as the store key: the control run, proving the attack works at all.
 */
const ATTACK = `
const http = require('node:http');
const fs = require('node:fs');
const [port, table, dir, key] = process.argv.slice(1);
const call = (op, body) => new Promise((resolve) => {
  const headers = { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.' + op,
    'x-amz-date': '20260101T000000Z', authorization: 'AWS4-HMAC-SHA256 Credential=local/20260101/local/dynamodb/aws4_request, SignedHeaders=host, Signature=0' };
  if (key) {
    // The store's proof (src/backends/embedded.ts): a nonce and its HMAC under the key.
    const nonce = require('node:crypto').randomBytes(16).toString('hex');
    headers['x-ecs-secrets-store-auth'] = nonce + '.' + require('node:crypto').createHmac('sha256', key).update('request\\n' + nonce).digest('hex');
  }
  const req = http.request({ host: '127.0.0.1', port: Number(port), method: 'POST', path: '/', headers }, (res) => {
    let text = ''; res.setEncoding('utf8'); res.on('data', (d) => (text += d)); res.on('end', () => resolve({ status: res.statusCode, text }));
  });
  req.on('error', (e) => resolve({ status: 0, text: e.code }));
  req.end(JSON.stringify(body));
});
(async () => {
  const k = { Name: { S: 'db.password' }, Serial: { N: '1' } };
  const out = {
    update: await call('UpdateItem', { TableName: table, Key: k, UpdateExpression: 'SET Active = :t', ExpressionAttributeValues: { ':t': { BOOL: true } } }),
    get: await call('GetItem', { TableName: table, Key: k }),
    scan: await call('Scan', { TableName: table }),
    list: await call('ListTables', {}),
  };
  const files = {};
  for (const f of ['endpoint.json', 'master.key', 'dynamodb/CURRENT']) {
    try { fs.readFileSync(dir + '/' + f); files[f] = 'read'; } catch (e) { files[f] = e.code; }
  }
  console.log(JSON.stringify({ ...out, files }));
})();
`;

interface AttackResult {
  update: { status: number; text: string };
  get: { status: number; text: string };
  scan: { status: number; text: string };
  list: { status: number; text: string };
  files: Record<string, string>;
}

describe('another local user cannot use the store, whatever port it finds', () => {
  let dir: string;
  let d: SpawnedDaemon;
  beforeAll(async () => {
    dir = freshDir();
    expect((await local(dir, ['create', '--name', 'db.password', '--payload', 'first'])).code).toBe(0);
    expect((await local(dir, ['create', '--name', 'db.password', '--payload', 'second'])).code).toBe(0);
    expect((await local(dir, ['revoke', '--name', 'db.password', '--serial', '1'])).code).toBe(0);
    // The daemon owns the store from now on: it serves it on a 127.0.0.1 port.
    d = await spawnDaemon(['--local', '--data-dir', dir, '--application-name', APP, '--cache-ttl', '0'], {
      waitHealthy: true,
    });
  });
  afterAll(async () => {
    await d?.stop();
  });

  rootOnly('nobody can neither read nor change it (and the same requests with the key do work)', async () => {
    const { port, key } = JSON.parse(fs.readFileSync(path.join(dir, 'endpoint.json'), 'utf8')) as {
      port: number;
      key: string;
    };
    const attacker = await runAs(NOBODY, [process.execPath, '-e', ATTACK, String(port), TABLE, dir]);
    expect([attacker.code, attacker.stderr]).toEqual([0, '']);
    const a = JSON.parse(attacker.stdout) as AttackResult;
    for (const op of ['update', 'get', 'scan', 'list'] as const) {
      expect(a[op].status).toBe(403);
      expect(a[op].text).not.toMatch(/EncryptedData|ECS-Secrets/);
    }
    expect(a.files).toEqual({ 'endpoint.json': 'EACCES', 'master.key': 'EACCES', 'dynamodb/CURRENT': 'EACCES' });
    // Serial 1 is still revoked, as the owner's daemon and a fresh CLI process see it.
    expect(json(await local(dir, ['fetch', '--name', 'db.password', '--serial', '1']))).toMatchObject({
      serial: 1,
      active: false,
    });
    const r = await fetch(`${d.url}/latest/secrets/db.password`);
    expect(await r.json()).toMatchObject({ serial: 2, payload: 'second' });

    // Control: the very same script, given the key, gets through. So the 403s above are the key
    // check at work, not a broken attack.
    const control = await runAs(NOBODY, [process.execPath, '-e', ATTACK, String(port), TABLE, dir, key]);
    const c = JSON.parse(control.stdout) as AttackResult;
    expect([c.get.status, c.list.status, c.get.text]).toEqual([200, 200, expect.stringContaining('EncryptedData')]);
    expect(c.list.text).toContain(TABLE);
  });

  test("a request without the key is refused even from the owner's own user", async () => {
    const { port } = JSON.parse(fs.readFileSync(path.join(dir, 'endpoint.json'), 'utf8')) as { port: number };
    const res = await fetch(`http://127.0.0.1:${port}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.ListTables' },
      body: '{}',
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ __type: expect.stringMatching(/AccessDeniedException$/) });
  });

  test("every file and folder in the data dir is private: 0600 and 0700, LevelDB's included", async () => {
    const modes: string[] = [];
    const walk = (p: string): void => {
      const st = fs.lstatSync(p);
      modes.push(`${(st.mode & 0o777).toString(8)} ${path.relative(dir, p) || '.'}`);
      if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
    };
    walk(dir);
    expect(modes.length).toBeGreaterThan(10); // LevelDB's files are there
    expect(modes.filter((m) => !/^(700|600) /.test(m))).toEqual([]);
    expect(modes).toEqual(
      expect.arrayContaining(['700 .', '600 master.key', '600 endpoint.json', '700 dynamodb', '600 dynamodb/CURRENT']),
    );
  });
});

test('a process that takes the port its owner left is not taken for the store: clients see no proof, learn it nothing, and elect a real owner', async () => {
  const dir = freshDir();
  expect((await local(dir, ['create', '--name', 'db.pw', '--payload', 'one'])).code).toBe(0);
  const owner = await spawnDaemon(['--local', '--data-dir', dir, '--application-name', APP, '--cache-ttl', '0'], {
    waitHealthy: true,
  });
  const client = await spawnDaemon(['--local', '--data-dir', dir, '--application-name', APP, '--cache-ttl', '0'], {
    waitHealthy: true,
  });
  const { port, key } = JSON.parse(fs.readFileSync(path.join(dir, 'endpoint.json'), 'utf8')) as {
    port: number;
    key: string;
  };
  const seen: string[] = [];
  // The impostor answers every request as DynamoDB would, with a serial of its choosing.
  const impostor = http.createServer((req, res) => {
    let body = '';
    req
      .on('data', (c) => (body += c))
      .on('end', () => {
        seen.push(JSON.stringify(req.headers) + body);
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(/Query/.test(String(req.headers['x-amz-target'])) ? '{"Items":[],"Count":0}' : '{}');
      });
  });
  try {
    await owner.stop();
    await new Promise<void>((resolve, reject) =>
      impostor.once('error', reject).listen(port, '127.0.0.1', () => resolve()),
    );
    const r = await fetch(`${client.url}/latest/secrets/db.pw`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"payload":"two"}',
    });
    expect([r.status, await r.json()]).toEqual([201, { name: 'db.pw', serial: 2 }]);
    // It reached the real store, and the impostor got requests without the key in them.
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.join('\n')).not.toContain(key);
  } finally {
    await client.stop();
    await new Promise((resolve) => impostor.close(resolve));
  }
  expect(json(await local(dir, ['fetch', '--name', 'db.pw']))).toMatchObject({ serial: 2, payload: 'two' });
}, 60_000);

describe('a data dir or master key that is not ours alone is refused, as ssh does', () => {
  const expectRefused = (r: CliResult, pattern: RegExp) => {
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 1, stdout: '' });
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  };

  test('reached through a symbolic link', async () => {
    const real = freshDir();
    expect((await local(real, ['create', '--name', 'a', '--payload', 'x'])).code).toBe(0);
    const link = freshDir();
    fs.symlinkSync(real, link);
    expectRefused(
      await local(link, ['list']),
      new RegExp(`refusing data dir ${link}: it is a symbolic link; pass the real directory \\(${real}\\)`),
    );
  });

  test.each([
    ['770', 0o770, 'writable by group or others \\(mode 770\\); run chmod 700'],
    ['703', 0o703, 'writable by group or others \\(mode 703\\); run chmod 700'],
  ])('writable by group or others (mode %s)', async (_label, mode, message) => {
    const dir = freshDir();
    fs.mkdirSync(dir);
    fs.chmodSync(dir, mode);
    expectRefused(await local(dir, ['list']), new RegExp(`refusing data dir ${dir}: it is ${message}`));
  });

  test('readable by others (an older version made it 0755): made private, then used', async () => {
    const dir = freshDir();
    fs.mkdirSync(dir);
    fs.chmodSync(dir, 0o755); // exactly, whatever the worker's umask
    expect((await local(dir, ['create', '--name', 'a', '--payload', 'x'])).code).toBe(0);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
  });

  rootOnly('owned by another user', async () => {
    const dir = freshDir();
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chownSync(dir, NOBODY, NOBODY);
    expectRefused(
      await local(dir, ['list']),
      new RegExp(`refusing data dir ${dir}: it is owned by uid ${NOBODY}, not by uid 0 that runs ecs-secrets`),
    );
  });

  rootOnly('a master key owned by another user', async () => {
    const dir = freshDir();
    expect((await local(dir, ['create', '--name', 'a', '--payload', 'x'])).code).toBe(0);
    fs.chownSync(path.join(dir, 'master.key'), NOBODY, NOBODY);
    expectRefused(
      await local(dir, ['fetch', '--name', 'a']),
      /refusing to use master key .*master\.key: it is owned by uid 65534, not by uid 0/,
    );
  });

  test('a master key that is a symbolic link', async () => {
    const dir = freshDir();
    expect((await local(dir, ['create', '--name', 'a', '--payload', 'x'])).code).toBe(0);
    const elsewhere = path.join(top, `key${n}`);
    fs.renameSync(path.join(dir, 'master.key'), elsewhere);
    fs.symlinkSync(elsewhere, path.join(dir, 'master.key'));
    expectRefused(await local(dir, ['fetch', '--name', 'a']), /refusing to use master key .*: it is a symbolic link/);
  });
});

describe('a data dir that is not writable is reported as exactly that', () => {
  const expectNotWritable = (r: CliResult, pattern: RegExp) => {
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 1, stdout: '' });
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/LEVEL_|leveldb|EACCES|\n\s+at /i);
  };

  // A Docker volume at /data owned by root while the image runs as uid 1000: here, a root-owned
  // 0755 folder and nobody.
  rootOnly(
    'the data dir cannot be created: names the folder in the way and the uid that needs write access',
    async () => {
      const volume = freshDir();
      fs.mkdirSync(volume);
      fs.chmodSync(volume, 0o755); // exactly: an in-process --local backend in this worker may have set umask 077
      const dir = path.join(volume, '.ecs-secrets');
      const r = await runAs(NOBODY, [
        process.execPath,
        nobodyCli,
        'create',
        '--local',
        '--application-name',
        APP,
        '--data-dir',
        dir,
        '--name',
        'a',
        '--payload',
        'x',
      ]);
      expectNotWritable(
        r,
        new RegExp(
          `^ecs-secrets: cannot create data dir ${dir}: ${volume} is not writable by uid ${NOBODY} \\(owned by uid 0, mode 755\\); give uid ${NOBODY} write access`,
        ),
      );
    },
  );

  rootOnly('the data dir exists but is read-only to its owner; the daemon says the same at start', async () => {
    const dir = freshDir();
    fs.mkdirSync(dir);
    fs.chmodSync(dir, 0o500); // exactly, whatever the worker's umask
    fs.chownSync(dir, NOBODY, NOBODY);
    const pattern = new RegExp(
      `^ecs-secrets: data dir ${dir} is not writable by uid ${NOBODY} \\(owned by uid ${NOBODY}, mode 500\\)`,
    );
    expectNotWritable(
      await runAs(NOBODY, [
        process.execPath,
        nobodyCli,
        'list',
        '--local',
        '--application-name',
        APP,
        '--data-dir',
        dir,
      ]),
      pattern,
    );
    const daemon = await runAs(NOBODY, [
      process.execPath,
      nobodyCli,
      'daemon',
      '--local',
      '--application-name',
      APP,
      '--data-dir',
      dir,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
    ]);
    expect(daemon.code).toBe(1);
    expect(daemon.stderr).toMatch(new RegExp(`data dir ${dir} is not writable by uid ${NOBODY}`));
  });
});

// Node's mkdirSync({recursive: true}) spins forever where a parent answers ENOENT to a new entry
// (/proc): a bad --data-dir must be an error, not a hung process (the test would time out).
(fs.existsSync('/proc/self') ? test : test.skip)(
  'a data dir that cannot be created under /proc is one clear error, not a hang',
  async () => {
    // create: the command that makes a data dir (a read refuses a missing one before trying).
    const r = await runCli([
      'create',
      '--local',
      '--application-name',
      APP,
      '--data-dir',
      '/proc/ecs-secrets-nope/data',
      '--name',
      'a',
      '--payload',
      'x',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^ecs-secrets: cannot create data dir \/proc\/ecs-secrets-nope\/data: ENOENT$/),
    ]);
  },
);
