/** render.ts on the real file system: the atomic write, and flag parsing. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseRenderMode, parseRenderTargets, writeAtomic } from '../../src/daemon/render';

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-render-unit-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('writeAtomic sets the exact mode whatever the umask, and replaces the file by a rename', async () => {
  const file = path.join(dir, 'f');
  const old = process.umask(0o077);
  try {
    await writeAtomic(file, Buffer.from('one'), 0o644);
    const first = fs.statSync(file);
    await writeAtomic(file, Buffer.from('two'), 0o644);
    expect([fs.readFileSync(file, 'utf8'), fs.statSync(file).mode & 0o777]).toEqual(['two', 0o644]);
    expect(fs.statSync(file).ino).not.toBe(first.ino);
  } finally {
    process.umask(old);
  }
  expect(fs.readdirSync(dir)).toEqual(['f']);
});

test('writeAtomic leaves no temp file behind when the rename fails', async () => {
  const target = path.join(dir, 'taken');
  fs.mkdirSync(target);
  fs.writeFileSync(path.join(target, 'x'), 'x'); // a non-empty directory: rename over it fails
  await expect(writeAtomic(target, Buffer.from('secret'), 0o440)).rejects.toThrow();
  expect(fs.readdirSync(dir)).toEqual(['taken']);
});

test('render flags: kinds, paths made absolute, modes', () => {
  const [raw, env, json] = parseRenderTargets([
    'out/a=db.password',
    '/x/b.env=dotenv:team-a.*',
    '/x/c.json=json:DB=db.password,api.key',
  ]);
  expect(raw.file).toBe(path.resolve('out/a'));
  expect(raw.source.needs).toEqual({ names: ['db.password'], prefixes: [] });
  expect(env.source.needs).toEqual({ names: [], prefixes: ['team-a.'] });
  expect(json.source.needs).toEqual({ names: ['db.password', 'api.key'], prefixes: [] });
  expect(() => parseRenderTargets(['/x/a=config:app/settings'])).toThrow(/unknown kind "config"/);
  // The extension point: another kind, passed in by the daemon, with no change to render.ts.
  const custom = parseRenderTargets(['/x/a=config:app/settings'], {
    config: () => ({ needs: { names: [], prefixes: [] }, render: async () => Buffer.from('doc') }),
  });
  expect(custom[0].source.needs.names).toEqual([]);
  expect([parseRenderMode('0440'), parseRenderMode('600')]).toEqual([0o440, 0o600]);
  for (const bad of ['0999', '4755', '', 'rw-r-----']) expect(() => parseRenderMode(bad)).toThrow(/--render-mode/);
});
