/** core/atomic-file.ts on the real file system (the atomic write), and render-targets.ts (the --render values). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic } from '../../src/core/atomic-file';
import { digest, keepIfSame, prepareTargets } from '../../src/daemon/render-files';
import { parseRenderTargets } from '../../src/daemon/render-targets';

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-render-unit-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('writeFileAtomic sets the exact mode whatever the umask, and replaces the file by a rename', async () => {
  const file = path.join(dir, 'f');
  const old = process.umask(0o077);
  try {
    await writeFileAtomic(file, Buffer.from('one'), 0o644);
    const first = fs.statSync(file);
    await writeFileAtomic(file, Buffer.from('two'), 0o644);
    expect([fs.readFileSync(file, 'utf8'), fs.statSync(file).mode & 0o777]).toEqual(['two', 0o644]);
    expect(fs.statSync(file).ino).not.toBe(first.ino);
  } finally {
    process.umask(old);
  }
  expect(fs.readdirSync(dir)).toEqual(['f']);
});

test('writeFileAtomic leaves no temp file behind when the rename fails', async () => {
  const target = path.join(dir, 'taken');
  fs.mkdirSync(target);
  fs.writeFileSync(path.join(target, 'x'), 'x'); // a non-empty directory: rename over it fails
  await expect(writeFileAtomic(target, Buffer.from('secret'), 0o440)).rejects.toThrow();
  expect(fs.readdirSync(dir)).toEqual(['taken']);
});

test('render targets: kinds, paths made absolute, what each needs prefetched', () => {
  const [raw, env, json, doc, docJson] = parseRenderTargets([
    'out/a=db.password',
    '/x/b.env=dotenv:team-a.*',
    '/x/c.json=json:DB=db.password,api.key',
    '/x/settings.yaml=config:app/settings',
    '/x/settings.JSON=config:app/settings',
  ]);
  expect(raw.file).toBe(path.resolve('out/a'));
  expect(raw.content).toEqual({ kind: 'raw', name: 'db.password' });
  expect(raw.needs).toEqual({ names: ['db.password'], prefixes: [] });
  expect(env.needs).toEqual({ names: [], prefixes: ['team-a.'] });
  expect(json.needs).toEqual({ names: ['db.password', 'api.key'], prefixes: [] });
  // A document is read from the table at each check, never prefetched; its format follows the extension.
  expect([doc.content, doc.needs]).toEqual([
    { kind: 'config', path: 'app/settings', format: 'yaml' },
    { names: [], prefixes: [] },
  ]);
  expect(docJson.content).toMatchObject({ format: 'json' });
});

test('render targets: every mistake is a usage error naming --render or the bad part', () => {
  for (const [spec, message] of [
    ['/x/a', /invalid --render "\/x\/a": expected FILE=NAME/],
    ['=db.password', /expected FILE=NAME/],
    ['/x/a=', /expected FILE=NAME/],
    ['/x/a=xml:app.*', /unknown kind "xml" \(use NAME or one of: dotenv:, json:, config:\)/],
    ['/x/a=constructor:x', /unknown kind "constructor"/],
    ['/x/a=bad name', /invalid secret name/],
    ['/x/a=dotenv:app.,,x', /selector/],
    ['/x/a=dotenv:A=x,A=y', /both map to the variable A/],
    ['/x/a=config:../up', /path/],
  ] as Array<[string, RegExp]>)
    expect(() => parseRenderTargets([spec])).toThrow(message);
  expect(() => parseRenderTargets(['/x/a=x', '/x/./a=y'])).toThrow(/--render names "\/x\/a" twice/);
});

test("a kept file's mode is fixed on the file that was checked: a path swapped for a link meanwhile lends nothing", async () => {
  const file = path.join(dir, 'app.env');
  const victim = path.join(dir, 'victim');
  fs.writeFileSync(file, 'A=1\n', { mode: 0o600 });
  fs.writeFileSync(victim, 'A=1\n', { mode: 0o600 });
  // Swap the path for a link to the victim right after the first thing keepIfSame does with it.
  const swap = () => {
    fs.rmSync(file);
    fs.symlinkSync(victim, file);
  };
  const spies = (['lstat', 'stat', 'open'] as const).map((name) => {
    const real = fs.promises[name] as (...a: unknown[]) => Promise<unknown>;
    let done = false;
    return jest.spyOn(fs.promises, name).mockImplementation((async (...a: unknown[]) => {
      const r = await real.apply(fs.promises, a);
      if (!done && a[0] === file) {
        done = true;
        swap();
      }
      return r;
    }) as never);
  });
  try {
    await keepIfSame(file, digest(Buffer.from('A=1\n')), 0o644);
  } finally {
    for (const s of spies) s.mockRestore();
  }
  expect(fs.statSync(victim).mode & 0o777).toBe(0o600);
  expect(await keepIfSame(file, digest(Buffer.from('A=1\n')), 0o644)).toBe(false); // a link is never kept
});

test('a render directory everyone may write is refused unless it has the sticky bit', () => {
  const shared = path.join(dir, 'shared');
  fs.mkdirSync(shared);
  fs.chmodSync(shared, 0o777);
  expect(() => prepareTargets([{ file: path.join(shared, 'a'), spec: 'a=x' }])).toThrow(
    /writable by everyone without the sticky bit/,
  );
  fs.chmodSync(shared, 0o1777);
  expect(() => prepareTargets([{ file: path.join(shared, 'a'), spec: 'a=x' }])).not.toThrow();
});
