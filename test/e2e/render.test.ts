/**
 * `daemon --render`, spawned as a user runs it, against the stand-ins: files written atomically
 * with the mode asked for, before /health turns 200; rewritten within a TTL of a new version and
 * only then; no temp file left, even one a crash left behind; no torn read during rewrites; bad
 * targets refused at start with one line and exit 2.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import * as os from 'node:os';
import * as path from 'node:path';
import { CLI, baseEnv, runCli } from '../helpers/cli';
import { cliFor } from '../helpers/cli-for-user';
import { type SpawnedDaemon, spawnDaemon } from '../helpers/daemon';
import { until } from '../helpers/wait';
import { type StandIns, createAppResources, startStandIns } from '../standins';

const APP = 'web';
/** Every character a shell or a JSON parser could trip on. */
const AWKWARD = `it's "quoted" $HOME \`id\` \\ back\\slash\nsecond line\ttab ünïcödé 🎉 %s !x`;
const BINARY = randomBytes(256 * 1024); // the largest payload allowed
let s: StandIns;
let root: string;
const daemons: SpawnedDaemon[] = [];

const cli = (args: string[], input?: string | Buffer) =>
  runCli(['--application-name', APP, ...args], { env: s.env, input });
async function daemon(args: string[], waitHealthy = true): Promise<SpawnedDaemon> {
  const d = await spawnDaemon(['--application-name', APP, ...args], { env: s.env, waitHealthy, timeoutMs: 30_000 });
  daemons.push(d);
  return d;
}
const newDir = () => fs.mkdtempSync(path.join(root, 'out-'));
const mode = (f: string) => fs.statSync(f).mode & 0o777;
const backendReads = () => (s.dynamo.counts.Query ?? 0) + (s.dynamo.counts.GetItem ?? 0);
async function create(name: string, payload: string): Promise<number> {
  const r = await cli(['create', '--name', name, '--payload-location', '-'], payload);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  return JSON.parse(r.stdout).serial;
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-render-'));
  s = await startStandIns();
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
  await create('app.db-password', AWKWARD);
  await create('app.api-key', 'k1');
  await create('tls.key', 'KEY-1');
  expect((await cli(['create', '--name', 'blob', '--binary', '--payload-location', '-'], BINARY)).code).toBe(0);
});
afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});
afterAll(async () => {
  await s.close();
  fs.rmSync(root, { recursive: true, force: true });
});

test('every file is written, with mode 0440, before /health turns 200; raw, binary, dotenv and json contents are exact', async () => {
  const dir = newDir();
  const f = (n: string) => path.join(dir, n);
  const d = await daemon(
    [
      '--cache-ttl',
      '30',
      '--render',
      `${f('tls.key')}=tls.key`,
      '--render',
      `${f('blob.bin')}=blob`,
      '--render',
      `${f('app.env')}=dotenv:app.*`,
      '--render',
      `${f('app.json')}=json:DB=app.db-password,app.api-key`,
    ],
    false,
  );
  // At the first 200, every file is already there.
  await until('/health 200', async () => (await fetch(`${d.url}/health`)).status === 200, 30_000);
  expect(fs.readdirSync(dir).sort()).toEqual(['app.env', 'app.json', 'blob.bin', 'tls.key']); // and no temp file
  for (const n of fs.readdirSync(dir)) expect([n, mode(f(n))]).toEqual([n, 0o440]);

  expect(fs.readFileSync(f('tls.key'), 'utf8')).toBe('KEY-1');
  expect(fs.readFileSync(f('blob.bin')).equals(BINARY)).toBe(true);
  expect(JSON.parse(fs.readFileSync(f('app.json'), 'utf8'))).toEqual({ APP_API_KEY: 'k1', DB: AWKWARD });
  // The dotenv file loads in a shell with every character intact (variables: the prefix stripped).
  const sourced = spawnSync(
    'bash',
    ['-c', `set -a; . ${JSON.stringify(f('app.env'))}; printf %s "$DB_PASSWORD"; printf '\\0%s' "$API_KEY"`],
    { encoding: 'utf8' },
  );
  expect(sourced.status).toBe(0);
  expect(sourced.stdout).toBe(`${AWKWARD}\0k1`);
  // Secrets are in the files only: never in the logs.
  for (const secret of [AWKWARD, 'KEY-1', 'k1']) expect(d.logs()).not.toContain(secret);
}, 60_000);

test('--render-mode sets the mode; a file is rewritten within a TTL of a new version, and only then', async () => {
  const dir = newDir();
  const file = path.join(dir, 'tls.key');
  const ttlS = 1;
  const d = await daemon(['--cache-ttl', String(ttlS), '--render-mode', '0600', '--render', `${file}=tls.key`]);
  expect([fs.readFileSync(file, 'utf8'), mode(file)]).toEqual(['KEY-1', 0o600]);
  const first = fs.statSync(file);

  // Several refreshes with nothing new: the file is checked each time but not rewritten.
  const reads = backendReads();
  await until('three refreshes', () => backendReads() >= reads + 3, 30_000);
  expect(fs.statSync(file).ino).toBe(first.ino);
  expect(fs.statSync(file).mtimeMs).toBe(first.mtimeMs);

  await create('tls.key', 'KEY-2');
  // A refresh starts at most one TTL later; its read has the read deadline (4 s) to finish.
  await until(
    'the new version in the file',
    () => fs.readFileSync(file, 'utf8') === 'KEY-2',
    ttlS * 1000 + 4_000 + 10_000,
  );
  expect(fs.statSync(file).ino).not.toBe(first.ino); // replaced by a rename, never written in place
  expect(mode(file)).toBe(0o600);
  expect(fs.readdirSync(dir)).toEqual(['tls.key']);
  expect(d.logs()).not.toContain('KEY-');
}, 60_000);

test('the file is always our own: a planted link with the right bytes is replaced, not kept; a file edited on disk is written again', async () => {
  const dir = newDir();
  const file = path.join(dir, 'tls.key');
  const payload = JSON.parse((await cli(['fetch', '--name', 'tls.key'])).stdout).payload as string;
  const elsewhere = path.join(newDir(), 'theirs');
  fs.writeFileSync(elsewhere, payload);
  fs.chmodSync(elsewhere, 0o644); // exactly: a jest worker's umask may be 077 (an in-process --local backend sets it)
  fs.symlinkSync(elsewhere, file);
  const d = await daemon(['--cache-ttl', '1', '--render', `${file}=tls.key`]);
  expect([fs.lstatSync(file).isFile(), fs.readFileSync(file, 'utf8'), mode(file)]).toEqual([true, payload, 0o440]);
  expect(mode(elsewhere)).toBe(0o644); // the link's target was neither used nor changed

  fs.chmodSync(file, 0o644);
  fs.writeFileSync(file, 'ATTACKER-CONTENT');
  // The next refresh (one TTL, plus the read deadline, plus margin) puts the secret back.
  await until('the file written again', () => fs.readFileSync(file, 'utf8') === payload, 1_000 + 4_000 + 10_000);
  expect(mode(file)).toBe(0o440);
  // Logged before the write, but the daemon's log is written asynchronously: the file can be seen first.
  expect(await d.waitForLog(/changed on disk by someone else/, 10_000)).toMatch(/changed on disk by someone else/);
}, 60_000);

test('1,000 concurrent reads during rewrites never see a torn file', async () => {
  const dir = newDir();
  const file = path.join(dir, 'big');
  const size = 64 * 1024;
  const versionOf = (letter: string) => letter.repeat(size);
  await create('big', versionOf('a'));
  await daemon(['--cache-ttl', '1', '--render', `${file}=big`]);
  const seen = new Set<string>();
  let reads = 0;
  // The stand-ins answer the creates from this process's event loop: 1,000 reads of 64 KiB at a
  // time, run here, starved them past the CLI's request timeout on a busy machine. The readers run
  // on a worker thread, reporting each version they see and every torn read.
  const torn: string[] = [];
  const worker = new Worker(
    `const { parentPort, workerData: { file, size } } = require('node:worker_threads');
     const fs = require('node:fs');
     let writing = true;
     parentPort.on('message', () => (writing = false));
     (async () => {
       let reads = 0;
       while (writing) {
         const batch = await Promise.all(Array.from({ length: 1000 }, () => fs.promises.readFile(file, 'latin1')));
         const seen = new Set();
         for (const text of batch) {
           // Whole and uniform: one version, never a mix of two or a short read.
           if (text.length === size && text === text[0].repeat(size)) seen.add(text[0]);
           else parentPort.postMessage({ torn: text.length + ' bytes starting ' + text.slice(0, 8) });
         }
         reads += batch.length;
         parentPort.postMessage({ seen: [...seen] });
       }
       parentPort.postMessage({ reads });
     })();`,
    { eval: true, workerData: { file, size } },
  );
  const readers = new Promise<void>((resolve, reject) => {
    worker.on('message', (m: { seen?: string[]; torn?: string; reads?: number }) => {
      for (const letter of m.seen ?? []) seen.add(letter);
      if (m.torn) torn.push(m.torn);
      if (m.reads !== undefined) {
        reads = m.reads;
        resolve();
      }
    });
    worker.on('error', reject);
  });
  const writer = (async () => {
    try {
      for (const letter of ['b', 'c', 'd', 'e']) {
        await create('big', versionOf(letter));
        await until(`version ${letter} rendered`, () => seen.has(letter), 30_000);
      }
    } finally {
      worker.postMessage('stop');
    }
  })();
  await Promise.all([writer, readers]).finally(() => worker.terminate());
  expect(torn).toEqual([]);
  expect(seen.size).toBeGreaterThanOrEqual(4); // the reads really spanned the rewrites
  expect(reads).toBeGreaterThanOrEqual(1000);
  expect(fs.readdirSync(dir)).toEqual(['big']);
}, 120_000);

test('temp files a crashed run left next to a target are removed at start; other files are not touched', async () => {
  const dir = newDir();
  const stale = path.join(dir, '.tls.key.ecs-secrets-tmp-12345-abcdef');
  fs.writeFileSync(stale, 'half a secr', { mode: 0o440 });
  fs.writeFileSync(path.join(dir, '.keep'), 'x');
  fs.writeFileSync(path.join(dir, 'other.txt'), 'y');
  const d = await daemon(['--render', `${path.join(dir, 'tls.key')}=tls.key`]);
  expect(fs.readdirSync(dir).sort()).toEqual(['.keep', 'other.txt', 'tls.key']);
  expect(await d.waitForLog(/removed a temp file left by an earlier run/, 10_000)).toMatch(
    /removed a temp file left by an earlier run/,
  );
  await d.stop();
  // A folder under a temp name (another user's, in a shared directory) neither stops the start
  // nor gets removed.
  const planted = path.join(dir, '.tls.key.ecs-secrets-tmp-x');
  fs.mkdirSync(planted);
  fs.writeFileSync(path.join(planted, 'inside'), 'z');
  const d2 = await daemon(['--render', `${path.join(dir, 'tls.key')}=tls.key`]);
  expect(fs.readFileSync(path.join(planted, 'inside'), 'utf8')).toBe('z');
  expect(await d2.waitForLog(/left alone a folder named like our temp files/, 10_000)).toMatch(
    /left alone a folder named like our temp files/,
  );
}, 60_000);

describe('bad render targets are refused at start: exit 2, one line, no stack trace', () => {
  /** The CLI's usage-error shape: one line, `ecs-secrets: <message>`. */
  const oneLine = (stderr: string) => {
    const lines = stderr.trim().split('\n');
    expect({
      first: lines[0].startsWith('ecs-secrets: '),
      rest: lines.slice(1),
      stack: /\n\s+at /.test(stderr),
    }).toEqual({
      first: true,
      rest: [],
      stack: false,
    });
    return lines[0];
  };
  const refused = async (args: string[]) => {
    const r = await runCli(['daemon', '--application-name', APP, '--host', '127.0.0.1', '--port', '0', ...args], {
      env: s.env,
    });
    expect(r.code).toBe(2);
    return oneLine(r.stderr);
  };

  test('a directory that does not exist', async () => {
    expect(await refused(['--render', `${path.join(root, 'no-such-dir', 'f')}=tls.key`])).toMatch(
      /no-such-dir.*does not exist/,
    );
  });
  test('a directory that is not writable', async () => {
    const dir = newDir();
    fs.chmodSync(dir, 0o555);
    // root writes anywhere: run the daemon as nobody then, as an ECS task's non-root user would.
    const asRoot = process.getuid?.() === 0;
    if (asRoot) fs.chmodSync(root, 0o755);
    const nobody = asRoot ? cliFor(65534) : { cli: CLI, cleanup: () => undefined };
    const r = spawnSync(
      process.execPath,
      [nobody.cli, 'daemon', '--application-name', APP, '--port', '0', '--render', `${path.join(dir, 'f')}=tls.key`],
      {
        env: { ...(baseEnv() as NodeJS.ProcessEnv), ...s.env },
        encoding: 'utf8',
        ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
      },
    );
    nobody.cleanup();
    expect(r.status).toBe(2);
    expect(oneLine(r.stderr)).toMatch(/is not writable \(EACCES\)/);
  });
  test('a target that is a directory, a path given twice, an unknown kind, a bad selector, a bad mode, no cache', async () => {
    const dir = newDir();
    expect(await refused(['--render', `${dir}=tls.key`])).toMatch(/is a directory/);
    expect(await refused(['--render', `${dir}/a=tls.key`, '--render', `${dir}/a=app.api-key`])).toMatch(/twice/);
    expect(await refused(['--render', `${dir}/a=xml:app.*`])).toMatch(/unknown kind "xml"/);
    expect(await refused(['--render', `${dir}/a=dotenv:app.,,x`])).toMatch(/selector/);
    expect(await refused(['--render', `${dir}/a=dotenv:A=x,A=y`])).toMatch(/both map to the variable A/);
    expect(await refused(['--render', `${dir}/a`])).toMatch(/expected FILE=NAME/);
    expect(await refused(['--render', `${dir}/a=bad name`])).toMatch(/invalid secret name/);
    expect(await refused(['--render', `${dir}/a=tls.key`, '--render-mode', '0999'])).toMatch(/--render-mode/);
    expect(await refused(['--render', `${dir}/a=tls.key`, '--cache-ttl', '0'])).toMatch(/--cache-ttl/);
    expect(await refused(['--prefetch', 'bad/name'])).toMatch(/invalid secret name/);
    expect(await refused(['--prefetch-prefix', 'bad/'])).toMatch(/prefix/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
