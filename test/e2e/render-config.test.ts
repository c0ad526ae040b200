/**
 * `daemon --render FILE=config:PATH`: the decrypted configuration document written like any
 * rendered file (atomically, the mode asked for, before /health turns 200), in the format the
 * file's extension names, rewritten within a TTL of a new version; a missing document keeps
 * /health at 503; a bad path is refused at start.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../helpers/cli';
import { type SpawnedDaemon, spawnDaemon } from '../helpers/daemon';
import { sleep, until } from '../helpers/wait';
import { type StandIns, createAppResources, startStandIns } from '../standins';

const APP = 'web';
const SEED = '# team-a api\nplain: hello\nsecret_ecs_secret: my-secret\nport_ecs_secret: 5432\n';
let s: StandIns;
let root: string;
const daemons: SpawnedDaemon[] = [];

const cli = (args: string[], input?: string) => runCli(['--application-name', APP, ...args], { env: s.env, input });
async function daemon(args: string[], waitHealthy: boolean): Promise<SpawnedDaemon> {
  const d = await spawnDaemon(['--application-name', APP, ...args], { env: s.env, waitHealthy, timeoutMs: 30_000 });
  daemons.push(d);
  return d;
}
const health = async (d: SpawnedDaemon) => (await fetch(`${d.url}/health`)).status;

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-render-config-'));
  s = await startStandIns();
  await createAppResources(s.kms, s.dynamo.endpoint, APP);
  expect((await cli(['config', 'push', '--path', 'team-a/api', '-'], SEED)).code).toBe(0);
});
afterEach(async () => {
  await Promise.all(daemons.splice(0).map((d) => d.stop()));
});
afterAll(async () => {
  await s.close();
  fs.rmSync(root, { recursive: true, force: true });
});

test('config:PATH renders the decrypted document (YAML, JSON or dotenv by extension), 0440, before /health 200, and follows a new version', async () => {
  const dir = fs.mkdtempSync(path.join(root, 'out-'));
  const f = (n: string) => path.join(dir, n);
  const TTL_S = 1;
  const d = await daemon(
    [
      '--cache-ttl',
      String(TTL_S),
      '--render',
      `${f('api.yaml')}=config:team-a/api`,
      '--render',
      `${f('api.json')}=config:team-a/api`,
      '--render',
      `${f('api.env')}=config:team-a/api`,
    ],
    false,
  );
  await until('/health 200', async () => (await health(d)) === 200, 30_000);
  expect(fs.readdirSync(dir).sort()).toEqual(['api.env', 'api.json', 'api.yaml']);
  for (const n of fs.readdirSync(dir)) expect([n, fs.statSync(f(n)).mode & 0o777]).toEqual([n, 0o440]);
  expect(fs.readFileSync(f('api.yaml'), 'utf8')).toBe(SEED);
  expect(JSON.parse(fs.readFileSync(f('api.json'), 'utf8'))).toEqual({
    plain: 'hello',
    secret_ecs_secret: 'my-secret',
    port_ecs_secret: 5432,
  });
  expect(fs.readFileSync(f('api.env'), 'utf8')).toContain("secret_ecs_secret='my-secret'");
  // The secret value is in the files the operator asked for, never in the daemon's logs.
  expect(d.logs()).not.toContain('my-secret');

  expect((await cli(['config', 'push', '--path', 'team-a/api', '-'], SEED.replace('my-secret', 'rotated'))).code).toBe(
    0,
  );
  // Bounded by the TTL, with a wide margin for a loaded machine.
  const rotated = () =>
    ['api.yaml', 'api.json', 'api.env'].every((n) => fs.readFileSync(f(n), 'utf8').includes('rotated'));
  await until('the rotated value in every file', rotated, TTL_S * 1000 + 20_000);
  // Every file is rewritten now, and an unchanged document writes nothing: no temp file is left.
  expect(fs.readdirSync(dir).sort()).toEqual(['api.env', 'api.json', 'api.yaml']);
});

test('a document that does not exist keeps /health at 503 and the file unwritten; a bad path is a usage error at start', async () => {
  const dir = fs.mkdtempSync(path.join(root, 'out-'));
  const d = await daemon(['--cache-ttl', '1', '--render', `${path.join(dir, 'x.yaml')}=config:team-b/none`], false);
  await until('the daemon to reach the backend', () => /table and key reached|render/.test(d.logs()), 30_000);
  await sleep(1500);
  expect(await health(d)).toBe(503);
  expect(fs.readdirSync(dir)).toEqual([]);

  const bad = await runCli(
    ['daemon', '--application-name', APP, '--port', '0', '--render', `${path.join(dir, 'y.yaml')}=config:/abs/../path`],
    { env: s.env },
  );
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/path/);
  expect(bad.stderr.trim().split('\n')).toHaveLength(1);
});
