/**
 * Configuration documents on the embedded backend (--local): the data key goes in a sops.age
 * entry for the data dir's age identity (0600). An independent SOPS decoder, the sops-age npm
 * package, opens what we write (run in a child process: it is an ES module). Also the daemon's
 * GET /config/*path on the same data dir.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { json, runCli } from '../helpers/cli';
import { spawnDaemon } from '../helpers/daemon';

const SEED = '# team-a api\nplain: hello\nsecret_ecs_secret: my-secret\nport_ecs_secret: 5432\n';
let dir: string;
const local = (args: string[], input?: string) =>
  runCli(['--local', '--data-dir', path.join(dir, 'data'), '--application-name', 'demo', ...args], { input });

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-cfg-local-'));
  fs.writeFileSync(path.join(dir, 'seed.yaml'), SEED);
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Decrypt with sops-age in a child node process; resolves to its stdout (JSON) or rejects with its stderr. */
function sopsAgeDecrypt(text: string, secretKey: string): Promise<{ code: number | null; out: string; err: string }> {
  const script = `const { decryptSops } = require('sops-age');
let text = ''; process.stdin.on('data', (d) => (text += d)).on('end', async () => {
  try { process.stdout.write(JSON.stringify(await decryptSops(text, { fileType: 'yaml', secretKey: process.env.KEY }))); }
  catch (e) { process.stderr.write(String(e && e.message)); process.exit(1); } });`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], {
      cwd: path.join(__dirname, '..', '..'),
      env: { ...process.env, KEY: secretKey },
      stdio: 'pipe',
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
    child.stdin.end(text);
  });
}

test('the seed example on --local: push, build without and with --show-secrets; the age identity is 0600', async () => {
  expect(json(await local(['config', 'push', '--path', 'team-a/api', '--file', path.join(dir, 'seed.yaml')]))).toEqual({
    path: 'team-a/api',
    serial: 1,
  });
  const plain = await local(['config', 'build', '--path', 'team-a/api']);
  expect(plain.code).toBe(0);
  expect(plain.stdout).toContain('plain: hello');
  expect(plain.stdout).toMatch(/secret_ecs_secret: ENC\[AES256_GCM/);
  expect(plain.stdout).not.toContain('my-secret');
  const shown = await local(['config', 'build', '--path', 'team-a/api', '--show-secrets']);
  expect(shown.stdout).toBe(SEED);
  const dotenv = await local([
    'config',
    'build',
    '--path',
    'team-a/api',
    '--show-secrets',
    '--format',
    'dotenv',
    '--strip-suffix',
  ]);
  expect(dotenv.stdout).toBe("plain='hello'\nsecret='my-secret'\nport='5432'\n");
  expect(fs.statSync(path.join(dir, 'data', 'age.key')).mode & 0o777).toBe(0o600);
});

test('encrypt a file, an independent decoder (sops-age) opens it; decrypt and push as-is', async () => {
  const out = path.join(dir, 'seed.enc.yaml');
  expect(
    (await local(['config', 'encrypt', path.join(dir, 'seed.yaml'), '--path', 'team-a/api', '--out', out])).code,
  ).toBe(0);
  const enc = fs.readFileSync(out, 'utf8');
  expect(enc).toMatch(/^sops:\n {4}age:\n {8}- recipient: age1/m);
  expect(enc).not.toContain('my-secret');
  const key = fs
    .readFileSync(path.join(dir, 'data', 'age.key'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('AGE-SECRET-KEY-'))!;
  const ok = await sopsAgeDecrypt(enc, key);
  expect(ok.err).toBe('');
  expect(JSON.parse(ok.out)).toEqual({ plain: 'hello', secret_ecs_secret: 'my-secret', port_ecs_secret: 5432 });
  // (sops-age does not check the MAC; sops-decoder, in config-aws.test.ts, does and agrees with ours.)

  const dec = await local(['config', 'decrypt', out]);
  expect(dec.stdout).toBe(SEED);
  const plainOut = path.join(dir, 'plain.yaml');
  expect((await local(['config', 'decrypt', out, '--out', plainOut])).code).toBe(0);
  expect(fs.statSync(plainOut).mode & 0o777).toBe(0o600);
  const inPlace = path.join(dir, 'in-place.yaml');
  fs.writeFileSync(inPlace, SEED);
  expect((await local(['config', 'encrypt', inPlace, '--in-place'])).code).toBe(0);
  expect(fs.readFileSync(inPlace, 'utf8')).toMatch(/secret_ecs_secret: ENC\[AES256_GCM/);
  // Encrypted for this path: stored as it is.
  expect(json(await local(['config', 'push', '--path', 'team-a/api', '-'], enc))).toEqual({
    path: 'team-a/api',
    serial: 1,
  });
  expect((await local(['config', 'build', '--path', 'team-a/api'])).stdout).toBe(enc.replace(/\nsops:[\s\S]*$/, '\n'));
  // A tampered encrypted file is refused at push, with no value in the message.
  const refused = await local(
    ['config', 'push', '--path', 'team-a/api', '-'],
    enc.replace('plain: hello', 'plain: hellx'),
  );
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(/integrity check failed: the document MAC/);
  expect(refused.stderr).not.toMatch(/hell|my-secret/);
});

test('daemon: GET /config/*path under /latest and /v1, decrypted, cached, ?format=, errors as JSON', async () => {
  expect((await local(['config', 'push', '--path', 'team-a/api', '--file', path.join(dir, 'seed.yaml')])).code).toBe(0);
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, 'tok-123', { mode: 0o600 });
  const d = await spawnDaemon(
    [
      '--local',
      '--data-dir',
      path.join(dir, 'data'),
      '--application-name',
      'demo',
      '--token-file',
      tokenFile,
      '--cache-ttl',
      '300',
    ],
    { waitHealthy: true },
  );
  try {
    const h = { 'X-ECS-Secrets-Token': 'tok-123' };
    const r1 = await fetch(`${d.url}/latest/config/team-a/api`, { headers: h });
    expect(r1.status).toBe(200);
    expect(await r1.json()).toEqual({ plain: 'hello', secret_ecs_secret: 'my-secret', port_ecs_secret: 5432 });
    expect(r1.headers.get('x-ecs-secrets-cache')).toBe('miss');
    const r2 = await fetch(`${d.url}/v1/config/team-a/api?format=yaml`, { headers: h });
    expect(await r2.text()).toBe(SEED);
    const r3 = await fetch(`${d.url}/v1/config/team-a/api?format=yaml`, { headers: h });
    expect(r3.headers.get('x-ecs-secrets-cache')).toBe('hit');
    expect((await fetch(`${d.url}/latest/config/team-a/api?format=dotenv`, { headers: h })).status).toBe(200);

    const unauth = await fetch(`${d.url}/latest/config/team-a/api`);
    expect(unauth.status).toBe(401);
    expect(await unauth.text()).not.toContain('my-secret');
    const missing = await fetch(`${d.url}/latest/config/team-a/nope`, { headers: h });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: expect.stringContaining('configuration team-a/nope not found') });
    const badFormat = await fetch(`${d.url}/latest/config/team-a/api?format=xml`, { headers: h });
    expect(badFormat.status).toBe(400);
    const badPath = await fetch(`${d.url}/latest/config/team-a/.hidden`, { headers: h });
    expect(badPath.status).toBe(400);
    expect(d.logs()).not.toContain('my-secret');
  } finally {
    await d.stop();
  }
});

/** Debian's `age` (the Go reference implementation), when installed (`apt-get install age`); CI's machine may lack it. */
const ageBinary = ['/usr/bin/age', '/usr/local/bin/age'].find((p) => fs.existsSync(p));
(ageBinary ? test : test.skip)(
  'the reference age binary opens our sops.age entry, and wraps a data key that ecs-secrets uses',
  async () => {
    const { execFileSync } = await import('node:child_process');
    const { createCipheriv, createHash, randomBytes } = await import('node:crypto');
    const out = path.join(dir, 'seed.enc.yaml');
    expect((await local(['config', 'encrypt', path.join(dir, 'seed.yaml'), '--out', out])).code).toBe(0);
    const enc = fs.readFileSync(out, 'utf8');
    const armored = /enc: \|\n((?: {14}.*\n)+)/.exec(enc)![1].replace(/^ {14}/gm, '');
    const identity = path.join(dir, 'data', 'age.key');
    expect(execFileSync(ageBinary!, ['-d', '-i', identity], { input: armored }).length).toBe(32);

    // The other direction: a document made by hand to sops' rules, its data key wrapped by age itself.
    const recipient = /recipient: (age1[a-z0-9]+)/.exec(enc)![1];
    const key = randomBytes(32);
    const wrapped = execFileSync(ageBinary!, ['-r', recipient, '-a'], { input: key }).toString('utf8');
    const seal = (plain: string, aad: string) => {
      const iv = randomBytes(32);
      const c = createCipheriv('aes-256-gcm', key, iv);
      c.setAAD(Buffer.from(aad));
      const data = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
      return `ENC[AES256_GCM,data:${data.toString('base64')},iv:${iv.toString('base64')},tag:${c.getAuthTag().toString('base64')},type:str]`;
    };
    const lastmodified = '2026-11-30T12:00:00Z';
    const mac = createHash('sha512').update('hellomy-secret').digest('hex').toUpperCase();
    const doc = [
      'plain: hello',
      `secret_ecs_secret: ${seal('my-secret', 'secret_ecs_secret:')}`,
      'sops:',
      '    age:',
      `        - recipient: ${recipient}`,
      '          enc: |',
      ...wrapped
        .trim()
        .split('\n')
        .map((l) => `              ${l}`),
      `    lastmodified: "${lastmodified}"`,
      `    mac: ${seal(mac, lastmodified)}`,
      '    encrypted_suffix: _ecs_secret',
      '    version: 3.8.1',
      '',
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'ext.yaml'), doc);
    const dec = await local(['config', 'decrypt', path.join(dir, 'ext.yaml')]);
    expect([dec.code, dec.stdout]).toEqual([0, 'plain: hello\nsecret_ecs_secret: my-secret\n']);
  },
);

test('dotenv output refuses a key that is no variable name, and two keys that make one variable, naming the keys (never a value)', async () => {
  const file = (name: string, text: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  };
  expect(
    (
      await local([
        'config',
        'push',
        '--path',
        'dotenv/digit',
        '--file',
        file('digit.yaml', '"10": value-one\nok: 1\n'),
      ])
    ).code,
  ).toBe(0);
  const digit = await local(['config', 'build', '--path', 'dotenv/digit', '--format', 'dotenv']);
  expect([digit.code, digit.stdout]).toEqual([2, '']);
  expect(digit.stderr).toMatch(/key "10" does not make a variable name/);
  expect(digit.stderr).not.toContain('value-one');
  expect(
    (
      await local([
        'config',
        'push',
        '--path',
        'dotenv/clash',
        '--file',
        file('clash.yaml', 'a_b: one\na:\n  b_ecs_secret: two\n'),
      ])
    ).code,
  ).toBe(0);
  const clash = await local([
    'config',
    'build',
    '--path',
    'dotenv/clash',
    '--format',
    'dotenv',
    '--show-secrets',
    '--strip-suffix',
  ]);
  expect([clash.code, clash.stdout]).toEqual([2, '']);
  expect(clash.stderr).toMatch(/keys "a_b" and "a\.b(_ecs_secret)?" both make the variable a_b/);
  expect(clash.stderr).not.toMatch(/one|two/);
});

test('--strip-suffix refuses to print two keys that become one, in every format (never a value)', async () => {
  const p = path.join(dir, 'dup.yaml');
  fs.writeFileSync(p, 'db:\n  password: plain-value\n  password_ecs_secret: secret-value\n');
  expect((await local(['config', 'push', '--path', 'strip/dup', '--file', p])).code).toBe(0);
  // The refusal comes before any format prints: each format once, and both ways of reading the
  // document (as stored, and decrypted) among them.
  for (const [format, show] of [
    ['yaml', []],
    ['json', ['--show-secrets']],
    ['dotenv', []],
  ] as Array<[string, string[]]>) {
    const r = await local(['config', 'build', '--path', 'strip/dup', '--format', format, '--strip-suffix', ...show]);
    expect({ format, show, code: r.code, stdout: r.stdout, line: r.stderr.split('\n')[0] }).toEqual({
      format,
      show,
      code: 2,
      stdout: '',
      line: 'ecs-secrets: --strip-suffix makes keys "password" and "password_ecs_secret" under "db" the same key',
    });
    expect(r.stderr).not.toMatch(/plain-value|secret-value/);
  }
  // Without --strip-suffix the document prints as it is.
  expect(
    (await local(['config', 'build', '--path', 'strip/dup', '--format', 'json', '--show-secrets'])).stdout,
  ).toContain('"password_ecs_secret"');
});

test('the age identity is held to the master key rules: a symbolic link or a file others can read is refused, never used', async () => {
  const data = path.join(dir, 'ident-data');
  const seed = path.join(dir, 'ident.yaml');
  fs.writeFileSync(seed, SEED);
  const run = (args: string[]) => runCli(['--local', '--data-dir', data, '--application-name', 'demo', ...args]);
  expect((await run(['config', 'encrypt', seed])).code).toBe(0); // creates the identity
  const identity = path.join(data, 'age.key');
  const real = path.join(dir, 'elsewhere.key');
  fs.renameSync(identity, real);
  fs.symlinkSync(real, identity);
  const linked = await run(['config', 'encrypt', seed]);
  expect([linked.code, linked.stdout]).toEqual([1, '']);
  expect(linked.stderr).toMatch(/refusing to use age identity .*symbolic link/);
  fs.rmSync(identity);
  fs.renameSync(real, identity);
  fs.chmodSync(identity, 0o644);
  const loose = await run(['config', 'encrypt', seed]);
  expect([loose.code, loose.stdout]).toEqual([1, '']);
  expect(loose.stderr).toMatch(/readable by group or others \(mode 644\)/);
  // Commands that open the store first (which tightens what older versions left) refuse it too,
  // and leave its mode for the operator to see.
  const push = await run(['config', 'push', '--path', 'ident/x', '--file', seed]);
  expect([push.code, push.stdout]).toEqual([1, '']);
  expect(push.stderr).toMatch(/readable by group or others \(mode 644\)/);
  expect(fs.statSync(identity).mode & 0o777).toBe(0o644);
});

test('aliases and tags are refused with exit 2, quoting nothing of the document (an alias text may be a secret)', async () => {
  const cases = [
    'db:\n  password_ecs_secret: *CANARY-star-pass\n',
    'db:\n  a: &x CANARY-anchored\n  b_ecs_secret: *x\n',
    'db:\n  p_ecs_secret: !!binary CANARY%%%\n',
    'db:\n  p_ecs_secret: !custom CANARY-tagged\n',
  ];
  // push and encrypt read a document through the same parser: each case by one of them, so each
  // command meets an alias and a tag.
  for (const [i, text] of cases.entries()) {
    const file = path.join(dir, `bad-${i}.yaml`);
    fs.writeFileSync(file, text);
    const args = i % 2 === 0 ? ['config', 'push', '--path', `bad/d${i}`, '--file', file] : ['config', 'encrypt', file];
    const r = await local(args);
    expect({ text, args: args[1], code: r.code, stdout: r.stdout, line: r.stderr.trim() }).toEqual({
      text,
      args: args[1],
      code: 2,
      stdout: '',
      line: expect.stringMatching(/^ecs-secrets: YAML (aliases|tags) .* not supported in a configuration document$/),
    });
    expect(r.stderr).not.toContain('CANARY');
  }
});
