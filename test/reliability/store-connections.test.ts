/**
 * The embedded store's port (--local) against a local user who holds connections to it: the owner
 * (here a daemon) keeps its descriptors and keeps answering reads that go to the store, and the
 * soft descriptor limit is raised to the hard one at start.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { storeConnectionBound } from '../../src/backends/embedded';
import { type SpawnedDaemon, spawnDaemon } from '../helpers/daemon';
import { until } from '../helpers/wait';

const APP = 'storeconn';
let dir: string;
const daemons: SpawnedDaemon[] = [];
const held: net.Socket[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-storeconn-'));
});
afterEach(async () => {
  for (const s of held.splice(0)) s.destroy();
  for (const d of daemons.splice(0)) await d.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A --local daemon started through `sh -c 'ulimit ...; exec daemon'`. */
async function localDaemon(ulimit: string, extra: string[] = []): Promise<SpawnedDaemon> {
  const d = await spawnDaemon(['--local', '--data-dir', path.join(dir, 'data'), '--application-name', APP, ...extra], {
    waitHealthy: true,
    timeoutMs: 60_000,
    launcher: ['sh', '-c', `ulimit ${ulimit} && exec "$@"`, 'sh'],
  });
  daemons.push(d);
  return d;
}

function limits(pid: number): { soft: number; hard: number } {
  const line = fs
    .readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'))!;
  const [soft, hard] = line.replace('Max open files', '').trim().split(/\s+/).map(Number);
  return { soft, hard };
}

const hasPrlimit = (() => {
  try {
    execFileSync('prlimit', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

test('a local user holding more store connections than the owner has descriptors: they are shed, no-cache reads still answer', async () => {
  // Soft and hard limit 256: nothing to raise, so only the connection bound protects the owner.
  const limit = 256;
  const d = await localDaemon(`-n ${limit}`, ['--cache-ttl', '0']);
  const created = await fetch(`${d.url}/latest/secrets/held`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ payload: 'still-served' }),
  });
  expect(created.status).toBe(201);
  const { port } = JSON.parse(fs.readFileSync(path.join(dir, 'data', 'endpoint.json'), 'utf8'));

  // More connections than the owner's whole descriptor limit, held open and never sending a byte.
  const attempts = limit + 100;
  let open = 0;
  let settled = 0;
  await Promise.all(
    Array.from(
      { length: attempts },
      () =>
        new Promise<void>((resolve) => {
          const s = net.connect({ port, host: '127.0.0.1' });
          held.push(s);
          let counted = false;
          s.once('connect', () => {
            open++;
            counted = true;
            settled++;
            resolve();
          });
          s.once('error', () => undefined);
          s.once('close', () => {
            if (counted) open--;
            else {
              settled++;
              resolve();
            }
          });
        }),
    ),
  );
  expect(settled).toBe(attempts);

  // Reads that bypass the cache go to the store through the same port: each is answered.
  for (let i = 0; i < 10; i++) {
    const r = await fetch(`${d.url}/latest/secrets/held`, { headers: { 'cache-control': 'no-cache' } });
    expect([r.status, ((await r.json()) as { payload?: string }).payload]).toEqual([200, 'still-served']);
  }
  // The owner keeps at most its bound of connections it has not authenticated.
  await until('the store shed the connections over its bound', () => open <= storeConnectionBound(limit), 30_000);
  expect(d.logs()).not.toMatch(/EMFILE/);
}, 120_000);

(hasPrlimit ? test : test.skip)(
  'the soft descriptor limit is raised to the hard one at start (prlimit, where it is installed)',
  async () => {
    const d = await localDaemon('-Sn 256');
    const { soft, hard } = limits(d.child.pid!);
    expect(hard).toBeGreaterThan(256);
    expect(soft).toBe(hard);
    const started = new RegExp(`"descriptorLimit":${hard}`);
    expect(await d.waitForLog(started, 10_000)).toMatch(started);
  },
  60_000,
);
