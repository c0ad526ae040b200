/**
 * The CLI refuses ambiguity: a flag given twice is a usage error naming
 * the flag, before anything is read or written; flags declared as arrays may repeat.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import yargs from 'yargs';
import { AppError } from '../../src/core/errors';
import { type DeclaredOptions, refuseRepeatedFlags } from '../../src/cli/repeated-flags';
import { json, runCli } from '../helpers/cli';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-flags-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const local = (args: string[], input?: string) =>
  runCli(['--local', '--data-dir', path.join(dir, 'data'), '--application-name', 'demo', ...args], { input });

test.each([
  [['create', '--name', 'a', '--name', 'b', '--payload', 'x'], '--name'],
  [['create', '--name=a', '--name', 'b', '--payload', 'x'], '--name'],
  [['create', '--name', 'a', '--payload', 'x', '--payload', 'y'], '--payload'],
  // nargs 1: "-" is the flag's value, not a flag; the second --payload-location is still counted.
  [['create', '--name', 'a', '--payload-location', '-', '--payload-location', 'f'], '--payload-location'],
  [['revoke', '--name', 'a', '--serial', '1', '--serial', '2'], '--serial'],
  [['fetch', '--name', 'a', '--local'], '--local'], // --local is already on the line (global flag)
  [['fetch', '--name', 'a', '--no-local'], '--local was given more than once \\(as --local and --no-local\\)'],
  [['fetch', '--name', 'a', '--application-name', 'other'], '--application-name'],
  // (An invalid port: were the check missing, the daemon would fail rather than start and hang the test.)
  [['daemon', '--read-only', '--read-only', '--port', '99999'], '--read-only'],
])('%j is a usage error naming the flag', async (args, flag) => {
  const r = await local(args, 'from stdin');
  expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: '' });
  expect(r.stderr).toMatch(
    new RegExp(`^ecs-secrets: ${flag.includes(' ') ? flag : `${flag} was given more than once`}`),
  );
  expect(r.stderr).not.toMatch(/\n\s+at /);
  // Refused before the backend is opened: nothing was created, not even the data dir.
  expect(fs.existsSync(path.join(dir, 'data'))).toBe(false);
});

test('the error never echoes a value (the payload may be on the line)', async () => {
  const r = await local(['create', '--name', 'a', '--payload', 'TOPSECRET-1', '--payload', 'TOPSECRET-2']);
  expect(r.code).toBe(2);
  expect(r.stderr).not.toMatch(/TOPSECRET/);
});

test('each flag once still works, and "--" ends the flags', async () => {
  const r = await local(['create', '--name', 'a', '--payload-location', '-'], 'v');
  expect([r.code, json(r)]).toEqual([0, { name: 'a', serial: 1 }]);
  // A value that looks like a flag, given with "=", is a value.
  const r2 = await local(['create', '--name', 'b', '--payload=--name']);
  expect([r2.code, json(r2)]).toEqual([0, { name: 'b', serial: 1 }]);
});

describe('in the real yargs parser', () => {
  function parse(argv: string[]): unknown {
    let error: unknown;
    try {
      yargs(argv)
        .option('local', { type: 'boolean', default: false, global: true })
        .command('export', 'x', (c) =>
          c.option('name', { type: 'string', array: true }).option('format', { type: 'string' }),
        )
        .parserConfiguration({ 'duplicate-arguments-array': false, 'camel-case-expansion': false })
        .middleware(
          ((_a: unknown, y: { getOptions(): DeclaredOptions }) => refuseRepeatedFlags(argv, y.getOptions())) as never,
          true,
        )
        .exitProcess(false)
        .fail((_m, e) => {
          error = e;
        })
        .parse();
    } catch (e) {
      error = e; // middleware errors are thrown by parse()
    }
    return error;
  }

  test('a flag declared as an array may repeat (e.g. --name on a selecting command)', () => {
    expect(parse(['export', '--name', 'a', '--name', 'b'])).toBeUndefined();
  });

  test('the others may not', () => {
    const e = parse(['export', '--name', 'a', '--format', 'json', '--format', 'yaml']);
    expect(e).toBeInstanceOf(AppError);
    expect((e as AppError).kind).toBe('usage');
    expect((e as AppError).message).toMatch(/^--format was given more than once/);
  });

  test('after "--" nothing is a flag', () => {
    expect(parse(['export', '--format', 'json', '--', '--format', 'yaml'])).toBeUndefined();
  });
});
