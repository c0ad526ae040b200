/**
 * `config decrypt` on files written by the real sops for age recipients (every rule they use),
 * with identities from SOPS_AGE_KEY_FILE, SOPS_AGE_KEY, and a key file holding several; decrypt
 * never creates a key. `config push` keeps requiring our rule and says so. PGP-only files get one
 * clear line. Skipped when ../shared/peers is absent.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../helpers/cli';
import { hasSopsReal, sopsReal, sopsRealManifest } from '../helpers/peers';

const suite = hasSopsReal ? describe : describe.skip;
const files = sopsRealManifest();
const ageFiles = files.filter((f) => f.key !== 'pgp');
let dir: string;
const dataDir = () => path.join(dir, 'data');

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-sops-real-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const decrypt = (file: string, env: Record<string, string | undefined>, extra: string[] = []) =>
  runCli(['--data-dir', dataDir(), ...extra, 'config', 'decrypt', sopsReal('real', file)], { env });

suite('real sops files (age)', () => {
  test.each(ageFiles.map((f) => [f.file, f] as const))(
    '%s: config decrypt with SOPS_AGE_KEY_FILE gives its plaintext and creates no key',
    async (_n, entry) => {
      const r = await decrypt(entry.file, { SOPS_AGE_KEY_FILE: sopsReal('keys', entry.key) });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const expected = JSON.parse(fs.readFileSync(sopsReal('expected', entry.expected as string), 'utf8'));
      const got = entry.format === 'json' ? JSON.parse(r.stdout) : require('yaml').parse(r.stdout);
      expect(got).toEqual(expected);
      expect(fs.existsSync(path.join(dataDir(), 'age.key'))).toBe(false);
    },
  );

  test('SOPS_AGE_KEY and a key file holding several identities (the right one not first)', async () => {
    const entry = ageFiles.find((f) => f.file === 'flux-age.yaml')!;
    const key = fs.readFileSync(sopsReal('keys', entry.key), 'utf8');
    const other = fs.readFileSync(sopsReal('keys', 'sopsnix-age-keys.txt'), 'utf8');
    const both = path.join(dir, 'keys.txt');
    fs.writeFileSync(both, `${other}\n${key}`, { mode: 0o600 });
    const fromFile = await decrypt(entry.file, { SOPS_AGE_KEY_FILE: both }, ['--local']);
    expect(fromFile.code).toBe(0);
    expect(fromFile.stdout).toContain('key: value');
    const fromEnv = await decrypt(entry.file, { SOPS_AGE_KEY: `${other}\n${key}` });
    expect(fromEnv.code).toBe(0);
    expect(fromEnv.stdout).toContain('key: value');
    expect(fs.existsSync(path.join(dataDir(), 'age.key'))).toBe(false);
  });

  test('no matching identity: one line naming the recipients, exit 1, no key created', async () => {
    const r = await decrypt('flux-age.yaml', { SOPS_AGE_KEY_FILE: sopsReal('keys', 'sopsnix-age-keys.txt') }, [
      '--local',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('age1l44xcng8dqj32nlv6d930qvvrny05hglzcv9qpc7kxjc6902ma4qufys29');
    expect(fs.existsSync(path.join(dataDir(), 'age.key'))).toBe(false);
  });

  test('PGP-only files: one clear line, exit 2', async () => {
    for (const entry of files.filter((f) => f.key === 'pgp')) {
      const r = await decrypt(entry.file, {}, ['--local']);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/only with PGP .*not support/);
    }
  });

  test('config push refuses another rule and says which one it needs', async () => {
    const r = await runCli(
      [
        '--local',
        '--data-dir',
        dataDir(),
        '--application-name',
        'demo',
        'config',
        'push',
        '--path',
        'a/b',
        '--file',
      ].concat(sopsReal('real', 'flux-age.yaml')),
      { env: { SOPS_AGE_KEY_FILE: sopsReal('keys', 'flux-age.txt') } },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/encrypted_suffix.*_ecs_secret/);
    expect(r.stderr).toContain('config decrypt');
  });
});
