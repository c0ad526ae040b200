/**
 * daemon/config.ts: the daemon's typed configuration. Its defaults are the ones `daemon --help`
 * shows and the CLI applies; every bad value is a usage error naming the flag an operator would
 * fix; the CLI's flags become nothing but typed fields (milliseconds, bytes, parsed selections).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type DaemonFlags, daemonConfigFromFlags } from '../../src/cli/commands/daemon';
import { buildParser } from '../../src/cli/main';
import { AppError } from '../../src/core/errors';
import {
  DAEMON_DEFAULTS,
  MIN_CACHE_MAX_BYTES,
  daemonConfig,
  formatRenderMode,
  parseAccessLog,
  parseAllowedHosts,
  parseCacheMaxBytes,
  parsePrefetchNames,
  parsePrefetchPrefixes,
  parseRenderMode,
  parseWholeNumber,
  readToken,
} from '../../src/daemon/config';

class Parsed extends Error {
  constructor(readonly argv: DaemonFlags) {
    super('parsed');
  }
}

/** The flags as the CLI's own parser gives them to the daemon command (its defaults filled in), no handler run. */
async function flags(args: string[]): Promise<DaemonFlags> {
  const parser = buildParser(['daemon', '--application-name', 'app', ...args], {
    onResult: () => undefined,
    out: () => undefined,
  });
  parser.middleware((argv) => {
    throw new Parsed(argv as unknown as DaemonFlags);
  }, false);
  try {
    await parser.parseAsync();
  } catch (err) {
    if (err instanceof Parsed) return err.argv;
    throw err;
  }
  throw new Error('the CLI ran no command');
}

/** The configuration `daemon ARGS` would run with (no token in the environment). */
const fromArgs = async (args: string[]) => daemonConfigFromFlags(await flags(args), {});

/** The usage error `fn` throws, as `kind: message`. */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof AppError) return `${err.kind}: ${err.message}`;
    throw err;
  }
  throw new Error('accepted');
}

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-daemon-config-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('the defaults: one object, the same whether the CLI fills them in or an in-process caller does', async () => {
  expect(DAEMON_DEFAULTS).toMatchObject({
    port: 8080,
    host: '127.0.0.1',
    cacheTtlMs: 600_000,
    watchIntervalMs: 5_000,
    staleIfErrorMs: 300_000,
    cacheSize: 10_000,
    cacheMaxBytes: 32 * 1024 ** 2,
    maxConnections: 512,
    readOnly: false,
    renderMode: 0o440,
    accessLog: 'errors',
    hotPath: true,
    prefetch: { names: [], prefixes: [] },
    render: [],
    allowedHosts: [],
  });
  expect(Object.isFrozen(DAEMON_DEFAULTS)).toBe(true);
  const byCli = await fromArgs([]);
  expect(byCli).toEqual({
    ...DAEMON_DEFAULTS,
    app: 'app',
    dataDir: '.ecs-secrets',
    region: undefined,
    token: undefined,
    // The CLI's default follows the terminal (pretty on one): jest's workers write to pipes, a run in band may not.
    logFormat: process.stderr.isTTY ? 'pretty' : 'json',
  });
  expect(daemonConfig({ app: 'app' })).toEqual({ ...DAEMON_DEFAULTS, app: 'app' });
  expect(formatRenderMode(DAEMON_DEFAULTS.renderMode)).toBe('0440');
  // Without watching the TTL alone bounds staleness: its default is short again; an explicit one wins.
  expect((await fromArgs(['--watch-interval=0'])).cacheTtlMs).toBe(30_000);
  expect((await fromArgs(['--watch-interval=0', '--cache-ttl=7'])).cacheTtlMs).toBe(7_000);
  expect((await fromArgs(['--cache-ttl=7'])).cacheTtlMs).toBe(7_000);
  expect((await fromArgs(['--watch-interval=2'])).watchIntervalMs).toBe(2_000);
});

test('flags become typed fields: seconds to milliseconds, sizes to bytes, selections and targets parsed', async () => {
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, '  s3cret-token \n', { mode: 0o600 });
  fs.chmodSync(tokenFile, 0o600);
  const c = await fromArgs([
    '--port=0',
    '--host=127.0.0.1',
    '--cache-ttl=600',
    '--stale-if-error=0',
    '--cache-size=0',
    '--cache-max-bytes=64mib',
    '--max-connections=9',
    '--allowed-host=sidecar.local',
    '--allowed-host=[::1]',
    `--token-file=${tokenFile}`,
    '--read-only',
    '--prefetch=a,b',
    '--prefetch=a',
    '--prefetch-prefix=team-a.',
    '--prefetch-prefix=team-a.',
    `--render=${dir}/f=db.password`,
    '--render-mode=600',
    '--access-log=all',
  ]);
  expect(c).toMatchObject({
    port: 0,
    host: '127.0.0.1',
    cacheTtlMs: 600_000,
    staleIfErrorMs: 0,
    cacheSize: 1, // 0 would cache nothing: the least used is 1
    cacheMaxBytes: 64 * 1024 ** 2,
    maxConnections: 9,
    allowedHosts: ['sidecar.local', '::1'],
    token: 's3cret-token',
    readOnly: true,
    prefetch: { names: ['a', 'b'], prefixes: ['team-a.'] },
    renderMode: 0o600,
    accessLog: 'all',
  });
  expect(c.render.map((t) => [t.file, t.content])).toEqual([[`${dir}/f`, { kind: 'raw', name: 'db.password' }]]);
  // Below the CLI nothing is keyed by a flag name.
  expect(Object.keys(c).filter((k) => k.includes('-'))).toEqual([]);
});

test('each bad value is a usage error naming its flag', () => {
  const cases: Array<[() => unknown, string]> = [
    [() => parseWholeNumber('port', 'http'), 'usage: invalid --port "http": expected a whole number from 0 to 65535'],
    [() => parseWholeNumber('port', '65536'), 'usage: invalid --port "65536"'],
    [
      () => parseWholeNumber('cacheTtlMs', '-5'),
      'usage: invalid --cache-ttl "-5": expected a whole number from 0 to 86400',
    ],
    [() => parseWholeNumber('cacheTtlMs', '1.5'), 'usage: invalid --cache-ttl "1.5"'],
    [() => parseWholeNumber('staleIfErrorMs', '86401'), 'usage: invalid --stale-if-error "86401"'],
    [() => parseWholeNumber('cacheSize', '1e3'), 'usage: invalid --cache-size "1e3"'],
    [() => parseWholeNumber('maxConnections', ''), 'usage: invalid --max-connections ""'],
    [() => parseCacheMaxBytes('32MB'), 'usage: invalid --cache-max-bytes "32MB"'],
    [() => parseCacheMaxBytes(String(MIN_CACHE_MAX_BYTES - 1)), 'usage: invalid --cache-max-bytes'],
    [() => parseCacheMaxBytes('2048GiB'), 'usage: invalid --cache-max-bytes "2048GiB"'],
    [() => parseAllowedHosts(['https://x.example']), 'usage: invalid --allowed-host "https://x.example"'],
    [() => parseAllowedHosts(['x.example:8080']), 'usage: invalid --allowed-host "x.example:8080"'],
    [() => parsePrefetchNames(['a,,b']), 'usage: invalid --prefetch "a,,b": expected NAME[,NAME...]'],
    [() => parsePrefetchNames(['bad/name']), 'usage: invalid secret name "bad/name"'],
    [() => parsePrefetchPrefixes(['bad/']), 'usage: invalid --prefetch-prefix "bad/"'],
    [() => parsePrefetchPrefixes(['']), 'usage: invalid --prefetch-prefix ""'],
    [() => parseRenderMode('0999'), 'usage: invalid --render-mode "0999": expected octal permissions such as 0440'],
    [() => parseRenderMode('4755'), 'usage: invalid --render-mode "4755"'],
    [() => parseRenderMode('rw-r-----'), 'usage: invalid --render-mode "rw-r-----"'],
    [() => parseAccessLog('debug'), 'usage: invalid --access-log "debug": expected all, errors, off'],
    [() => parseAccessLog('ALL'), 'usage: invalid --access-log "ALL"'],
    [() => readToken(path.join(dir, 'none'), undefined), `usage: cannot read --token-file "${dir}/none": ENOENT`],
    [() => readToken(undefined, 'tab\there'), 'usage: the token from ECS_SECRETS_TOKEN has a control character'],
    [
      () => daemonConfig({ app: 'app', cacheTtlMs: 0, prefetch: { names: ['a'], prefixes: [] } }),
      'usage: --prefetch, --prefetch-prefix and --render keep secrets in the cache: they need --cache-ttl above 0',
    ],
  ];
  for (const [fn, message] of cases) expect(refusal(fn).slice(0, message.length)).toBe(message);
});

test('the token file: empty, writable by others, or not ASCII is refused; without one, a blank ECS_SECRETS_TOKEN is none', () => {
  const file = path.join(dir, 'token');
  fs.writeFileSync(file, ' \n');
  fs.chmodSync(file, 0o600);
  expect(refusal(() => readToken(file, 'ignored'))).toBe(`usage: --token-file ${JSON.stringify(file)} is empty`);
  fs.writeFileSync(file, 'tökén');
  expect(refusal(() => readToken(file, undefined))).toMatch(/--token-file .* has a non-ASCII character at position 2/);
  fs.writeFileSync(file, 'good');
  fs.chmodSync(file, 0o620);
  expect(refusal(() => readToken(file, undefined))).toMatch(
    /^usage: refusing --token-file .*writable by group or others/,
  );
  expect([readToken(undefined, '  '), readToken(undefined, undefined), readToken(undefined, ' t ')]).toEqual([
    undefined,
    undefined,
    't',
  ]);
});

test("the token file must be a regular file (a FIFO is refused without blocking), ours or root's, not writable by others", () => {
  const fifo = path.join(dir, 'token-fifo');
  fs.rmSync(fifo, { force: true });
  execFileSync('mkfifo', ['-m', '0666', fifo]);
  expect(refusal(() => readToken(fifo, undefined))).toMatch(/^usage: refusing --token-file .*not a regular file/);
  const other = path.join(dir, 'token-other');
  fs.writeFileSync(other, 'chosen-by-them', { mode: 0o644 });
  fs.chmodSync(other, 0o644);
  if (process.getuid?.() === 0) {
    fs.chownSync(other, 65534, 65534);
    expect(refusal(() => readToken(other, undefined))).toMatch(/^usage: refusing --token-file .*owned by uid 65534/);
    fs.chownSync(other, 0, 0);
  }
  expect(readToken(other, undefined)).toBe('chosen-by-them');
});

test('--render-mode refuses modes that let group or others write a rendered file', () => {
  for (const text of ['0666', '0620', '0602', '622'])
    expect(refusal(() => parseRenderMode(text))).toMatch(
      /^usage: invalid --render-mode .*not be writable by group or others/,
    );
  expect(parseRenderMode('0644')).toBe(0o644);
});

test('through the CLI: the first bad flag is the one named, and the token comes from the environment only without --token-file', async () => {
  await expect(fromArgs(['--cache-ttl', '-5'])).rejects.toThrow(/^invalid --cache-ttl "-5"/);
  await expect(fromArgs([`--render=${dir}/a=x`, '--cache-ttl=0'])).rejects.toThrow(/need --cache-ttl above 0/);
  expect(daemonConfigFromFlags(await flags([]), { ECS_SECRETS_TOKEN: 'from-env' }).token).toBe('from-env');
  const missingApp = await flags([]);
  missingApp['application-name'] = undefined;
  expect(refusal(() => daemonConfigFromFlags(missingApp, {}))).toMatch(/^usage: missing application name/);
});
