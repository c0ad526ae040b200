/**
 * The embedded backend (--local): no AWS at all. Each CLI run is a fresh process, so every test
 * here is also a restart test; the daemon tests check that CLI commands work while a daemon holds
 * the store, and that the data survives the daemon.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openBackend } from '../../src/backends/open-backend';
import { json, runCli } from '../helpers/cli';
import { spawnDaemon } from '../helpers/daemon';

let dir: string;
const local = (args: string[], input?: string) =>
  runCli(['--local', '--data-dir', dir, '--application-name', 'demo', ...args], { input });

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-local-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('create, revoke, fetch, list and history on an empty data dir; the data survives restarts', async () => {
  const c1 = await local(['create', '--name', 'db.password', '--payload', 'first']);
  expect([c1.code, c1.stderr]).toEqual([0, '']);
  expect(json(c1)).toEqual({ name: 'db.password', serial: 1 });
  expect(json(await local(['create', '--name', 'db.password', '--payload-location', '-'], 'second'))).toEqual({
    name: 'db.password',
    serial: 2,
  });
  expect(json(await local(['revoke', '--name', 'db.password', '--serial', '1']))).toEqual({
    name: 'db.password',
    serial: 1,
    active: false,
  });
  expect(json(await local(['fetch', '--name', 'db.password']))).toEqual({
    name: 'db.password',
    serial: 2,
    payload: 'second',
    active: true,
  });
  expect(json(await local(['fetch', '--name', 'db.password', '--serial', '1']))).toEqual({
    name: 'db.password',
    serial: 1,
    payload: '',
    active: false,
  });
  expect(json(await local(['list']))).toEqual([{ name: 'db.password', latestSerial: 2 }]);
  expect(
    json<Array<{ serial: number; active: boolean }>>(await local(['history', '--name', 'db.password'])).map((h) => [
      h.serial,
      h.active,
    ]),
  ).toEqual([
    [1, false],
    [2, true],
  ]);
  const key = path.join(dir, 'master.key');
  expect(fs.statSync(key).mode & 0o777).toBe(0o600);
  expect(fs.readFileSync(key)).toHaveLength(32);
  // Nothing in the data dir holds the plaintext.
  for (const f of walk(dir)) expect(fs.readFileSync(f).includes('second')).toBe(false);
});

// A bad secret name is a usage error before any backend: test/e2e/cli-aws.test.ts checks it once.
test('revoking an unknown serial writes nothing', async () => {
  await local(['create', '--name', 'a', '--payload', 'x']);
  const r = await local(['revoke', '--name', 'a', '--serial', '5']);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/has no serial 5/);
  expect(json(await local(['history', '--name', 'a']))).toHaveLength(1);
});

test('a master key readable by others is refused', async () => {
  await local(['create', '--name', 'a', '--payload', 'x']);
  fs.chmodSync(path.join(dir, 'master.key'), 0o640);
  const r = await local(['fetch', '--name', 'a']);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/refusing to use master key .*chmod 600/);
  expect(r.stdout).toBe('');
});

test('concurrent CLI processes on one empty data dir agree on one store and one key', async () => {
  const results = await Promise.all(
    Array.from({ length: 6 }, (_, i) => local(['create', '--name', 'race', '--payload', `p${i}`])),
  );
  expect(results.map((r) => [r.code, r.stderr])).toEqual(Array(6).fill([0, '']));
  expect(results.map((r) => json<{ serial: number }>(r).serial).sort()).toEqual([1, 2, 3, 4, 5, 6]);
  // Read back after the race, in this process (the CLI's reads are tested above): every version
  // decrypts with the one key on disk and holds what the process that got its serial wrote.
  const b = await openBackend({ app: 'demo', local: true, dataDir: dir });
  try {
    for (const [i, r] of results.entries()) {
      const serial = json<{ serial: number }>(r).serial;
      expect(await b.service.fetch('race', serial)).toEqual({ name: 'race', serial, payload: `p${i}`, active: true });
    }
  } finally {
    await b.close();
  }
});

test('CLI commands work while a --local daemon holds the store, and the data survives it', async () => {
  await local(['create', '--name', 'before', '--payload', 'b']);
  const d = await spawnDaemon(['--local', '--data-dir', dir, '--application-name', 'demo'], { waitHealthy: true });
  try {
    expect(json(await local(['create', '--name', 'during', '--payload', 'from-cli']))).toEqual({
      name: 'during',
      serial: 1,
    });
    const got = await (await fetch(`${d.url}/latest/secrets/during`)).json();
    expect(got).toEqual({ name: 'during', serial: 1, payload: 'from-cli', active: true });
    const posted = await fetch(`${d.url}/latest/secrets/during`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ payload: 'from-daemon' }),
    });
    expect([posted.status, await posted.json()]).toEqual([201, { name: 'during', serial: 2 }]);
    expect(json(await local(['fetch', '--name', 'during']))).toMatchObject({ serial: 2, payload: 'from-daemon' });
    expect(json(await local(['fetch', '--name', 'before']))).toMatchObject({ serial: 1, payload: 'b' });
  } finally {
    expect(await d.stop()).toBe(0);
  }
  expect(json(await local(['list']))).toEqual([
    { name: 'before', latestSerial: 1 },
    { name: 'during', latestSerial: 2 },
  ]);
});

test('when the process that owns the store exits, a daemon using it takes it over', async () => {
  // This test process owns the store first; the daemon starts as its client.
  const owner = await openBackend({ app: 'demo', local: true, dataDir: dir });
  await owner.service.create('x', 'v1');
  const d = await spawnDaemon(['--local', '--data-dir', dir, '--application-name', 'demo', '--cache-ttl', '0'], {
    waitHealthy: true,
  });
  try {
    expect(await (await fetch(`${d.url}/latest/secrets/x`)).json()).toMatchObject({ serial: 1, payload: 'v1' });
    await owner.close(); // the owner goes away: the daemon's next request elects a new owner
    const posted = await fetch(`${d.url}/latest/secrets/x`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ payload: 'v2' }),
    });
    expect([posted.status, await posted.json()]).toEqual([201, { name: 'x', serial: 2 }]);
    expect(await (await fetch(`${d.url}/latest/secrets/x`)).json()).toMatchObject({ serial: 2, payload: 'v2' });
    expect(json(await local(['fetch', '--name', 'x', '--serial', '1']))).toMatchObject({ payload: 'v1' });
  } finally {
    expect(await d.stop()).toBe(0);
  }
});

function walk(d: string): string[] {
  return fs
    .readdirSync(d, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
}

test('a leading UTF-8 BOM is kept from --payload-location, file and standard input: stored bytes equal the input', async () => {
  const payload = '\ufeffBOM-led secret';
  const file = path.join(dir, 'bom.txt');
  fs.writeFileSync(file, payload);
  expect(fs.readFileSync(file).subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
  expect((await local(['create', '--name', 'bom.file', '--payload-location', file])).code).toBe(0);
  expect((await local(['create', '--name', 'bom.stdin', '--payload-location', '-'], payload)).code).toBe(0);
  // Both read back by one process, each by its own name.
  expect(json(await local(['export', '--name', 'FILE=bom.file', '--name', 'STDIN=bom.stdin']))).toEqual({
    FILE: payload,
    STDIN: payload,
  });
});
