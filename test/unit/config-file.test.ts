/**
 * cli/config-file.ts: a config file's values reach the flags as the text written (no YAML number,
 * octal or null rules in between), lists only where a flag repeats, and nothing is set by an
 * empty file.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readConfigFile } from '../../src/cli/config-file';

const SETTINGS = new Set(['port', 'render-mode', 'cache-ttl', 'read-only', 'host', 'render', 'prefetch', 'config']);
const REPEATABLE = new Set(['render', 'prefetch']);

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecs-secrets-config-unit-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const read = (text: string) => {
  const file = path.join(dir, 'c.yaml');
  fs.writeFileSync(file, text, { mode: 0o600 });
  return Object.fromEntries(readConfigFile(file, SETTINGS, REPEATABLE));
};

test('scalars are the text written: 0440 stays octal text, true and ~ are words for the flag to judge', () => {
  expect(read('port: 08080\nrender-mode: 0440\ncache-ttl: 1e3\nread-only: true\nhost: ~\n')).toEqual({
    port: '08080',
    'render-mode': '0440',
    'cache-ttl': '1e3',
    'read-only': 'true',
    host: '~',
  });
});

test('JSON reads the same; its numbers are text too', () => {
  expect(read('{"port": 8080, "read-only": false, "render": ["a=b", 7]}')).toEqual({
    port: '8080',
    'read-only': 'false',
    render: ['a=b', '7'],
  });
});

test('a repeatable flag takes a list, or one value (lines, as in its variable); anchors resolve', () => {
  expect(read('render: &r [x=a, y=b]\nprefetch: |\n  a\n  b\n')).toEqual({
    render: ['x=a', 'y=b'],
    prefetch: 'a\nb\n',
  });
  expect(read('port: &p 9000\nhost: *p\n')).toEqual({ port: '9000', host: '9000' });
});

test('an empty value is empty text (unset, as an empty variable is); an empty file sets nothing', () => {
  expect(read('port:\n? host\n')).toEqual({ port: '', host: '' });
  expect(read('')).toEqual({});
  expect(read('# nothing yet\n')).toEqual({});
});
