/**
 * The embedded backend (--local) under faults: the process that owns the store (a daemon) is
 * killed with SIGKILL while CLI processes are writing through it. The kernel drops its lock, a
 * client takes the store over, and nothing is lost or written twice: every create that reported
 * success is stored exactly once, serials have no gap and no duplicate, and a new daemon serves
 * everything. Then the data dir is scanned for the canary.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MAX_ATTEMPTS, REQUEST_TIMEOUT_MS } from '../../src/backends/aws';
import { json } from '../helpers/cli';
import { Witness, get, loggedErrors, postJson, range, sleep, walk } from './support';

const APP = 'localflt';
const w = new Witness('local');
let dir: string;

const local = (args: string[], input?: string) =>
  w.cli(['--local', '--data-dir', dir, '--application-name', APP, ...args], { input, killAfterMs: 40_000 });

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-localflt-'));
});
afterAll(async () => {
  await w.finish();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('the owning daemon is SIGKILLed during concurrent CLI writes: nothing lost, nothing doubled, service resumes', async () => {
  const d = await w.daemon('owner', ['--local', '--data-dir', dir, '--application-name', APP], { waitHealthy: true });
  const seeded = await postJson(d.port, '/latest/secrets/canary', { payload: w.canary });
  expect(seeded.status).toBe(201);
  w.wrote();

  const N = 8;
  const payloads = range(1, N).map((i) => `crash-${i}-${w.canary}`);
  const each = payloads.map((p, i) =>
    sleep(i * 100).then(() => local(['create', '--name', 'crash', '--payload-location', '-'], p)),
  );
  // Kill the owner as soon as one write went through it: the others are starting or in flight.
  await Promise.race(each);
  await w.stopDaemon(d, 'SIGKILL');
  const results = await Promise.all(each);
  if (process.env.RELIABILITY_VERBOSE)
    console.log(results.map((r) => `${r.code} ${r.ms}ms ${r.stdout.trim()}${r.stderr.trim()}`).join('\n'));

  // Every create ended by itself: success, or one clean line (never a hang, never a stack).
  for (const r of results) {
    expect(r.killed).toBe(false);
    if (r.code !== 0) {
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^ecs-secrets: (backend unavailable|the embedded store)/);
    }
  }
  const ok = results.flatMap((r, i) =>
    r.code === 0 ? [{ serial: json<{ serial: number }>(r).serial, payload: payloads[i] }] : [],
  );
  expect(ok.length).toBeGreaterThanOrEqual(N - 2); // a write cut off mid-flight may fail; most get through the takeover

  // The store as a new daemon sees it: serials 1..M without gap or duplicate, each success stored once at its serial.
  const d2 = await w.daemon(
    'successor',
    ['--local', '--data-dir', dir, '--application-name', APP, '--cache-ttl', '0'],
    { waitHealthy: true },
  );
  const history = json<Array<{ serial: number }>>(await local(['history', '--name', 'crash']));
  const serials = history.map((h) => h.serial);
  expect(serials).toEqual(range(1, serials.length));
  const stored = new Map<number, string>();
  for (const serial of serials) {
    const r = await get(d2.port, `/latest/secrets/crash/${serial}`);
    w.checkHttpRead(r.status, r.text, `GET crash/${serial}`);
    expect(r.status).toBe(200);
    stored.set(serial, r.json().payload as string);
  }
  for (const { serial, payload } of ok) expect({ serial, payload: stored.get(serial) }).toEqual({ serial, payload });
  expect(new Set(stored.values()).size).toBe(stored.size); // no payload twice
  // Only writes that reported failure may be missing, and only those may be present without a success.
  expect(stored.size).toBeGreaterThanOrEqual(ok.length);
  expect(stored.size).toBeLessThanOrEqual(N);

  // Service resumed: the successor writes and reads.
  const more = await postJson(d2.port, '/latest/secrets/crash', { payload: 'after' });
  expect([more.status, more.json()]).toEqual([201, { name: 'crash', serial: serials.length + 1 }]);
  const c = await get(d2.port, '/latest/secrets/canary');
  w.checkHttpRead(c.status, c.text, 'GET canary');
  expect(await w.stopDaemon(d2)).toBe(0);
  expect(loggedErrors(d2.logs())).toEqual([]);
}, 90_000);

test('a CLI beside a busy owner waits for it: an owner stalled past the AWS request budget still answers the create', async () => {
  const d = await w.daemon('stalled', ['--local', '--data-dir', dir, '--application-name', APP], { waitHealthy: true });
  // A loaded machine can leave the owner unscheduled for seconds. Stall it outright (SIGSTOP) for
  // longer than every attempt the AWS limits allow together: a CLI that spent those limits on
  // the local owner would give up; the owner is alive, so the CLI must wait and succeed.
  const stallMs = MAX_ATTEMPTS * REQUEST_TIMEOUT_MS + 2_000;
  d.child.kill('SIGSTOP');
  let created: Awaited<ReturnType<typeof local>>;
  try {
    const pending = local(['create', '--name', 'stalled', '--payload', 'after-the-stall']);
    await sleep(stallMs);
    d.child.kill('SIGCONT');
    created = await pending;
  } finally {
    d.child.kill('SIGCONT');
  }
  expect({ code: created.code, stderr: created.stderr }).toEqual({ code: 0, stderr: '' });
  expect(json<{ serial: number }>(created).serial).toBe(1);
  expect(await w.stopDaemon(d)).toBe(0);
}, 90_000);

test('secret hygiene: the canary is in no process output and no file of the data dir; the master key is 0600', async () => {
  const f = await local(['fetch', '--name', 'canary', '--debug']);
  expect(json(f)).toMatchObject({ payload: w.canary });
  await w.finish();
  const files = walk(dir);
  expect(files.some((f) => path.basename(f) === 'master.key')).toBe(true);
  w.addFiles(files);
  expect(w.canaryWrites).toBeGreaterThan(0);
  expect(w.canaryReads).toBeGreaterThan(0);
  expect(w.leaks()).toEqual([]);
  expect(fs.statSync(path.join(dir, 'master.key')).mode & 0o777).toBe(0o600);
});
