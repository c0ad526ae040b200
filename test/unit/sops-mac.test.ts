/**
 * The MAC equals what real sops computes for the same plaintext: sops reads YAML with yaml.v3
 * (resolve.go), so a plain date is a timestamp hashed as Go's time.MarshalText writes it (sops
 * 3.10 and later), `1_000` is 1000, `0755` is octal 493, `1e3` the float 1000; comments are not
 * hashed; integer keys are refused (sops: "only string keys are supported"). The inputs are the
 * peers' x-*.yaml when present, else the same text inline. Expected hashes are computed here
 * from those rules, independently of the module.
 */
import { createDecipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { decryptDocument, encryptDocument, parseConfig, printConfig } from '../../src/config/sops';
import { hasSopsReal, sopsReal } from '../helpers/peers';

const KEY = Buffer.alloc(32, 7);
const AGE = { age: [{ recipient: 'age1test', enc: 'not used here' }] };

const INLINE: Record<string, string> = {
  'x-date.yaml': '# plain unquoted YAML date\nservice: checkout\nvalid_until: 2025-12-31\ntoken_ecs_secret: abc\n',
  'x-underscore.yaml': '# plain integer with underscores\nservice: checkout\nlimit: 1_000\ntoken_ecs_secret: abc\n',
  'x-octal.yaml': '# plain legacy-octal integer\nservice: checkout\nmode: 0755\ntoken_ecs_secret: abc\n',
  'x-intkey.yaml': '# integer map key\nstatus_pages:\n    404: not found\ntoken_ecs_secret: abc\n',
};
const input = (name: string): string => (hasSopsReal ? fs.readFileSync(sopsReal('input', name), 'utf8') : INLINE[name]);

/** The MAC's plaintext: the sops block's mac opened with AAD = lastmodified (sops.go). */
function macOf(encrypted: string): string {
  const block = /\n {4}lastmodified: "([^"]+)"\n {4}mac: ENC\[AES256_GCM,data:([^,]*),iv:([^,]*),tag:([^,]*),/.exec(
    encrypted,
  )!;
  const d = createDecipheriv('aes-256-gcm', KEY, Buffer.from(block[3], 'base64'));
  d.setAAD(Buffer.from(block[1]));
  d.setAuthTag(Buffer.from(block[4], 'base64'));
  return Buffer.concat([d.update(Buffer.from(block[2], 'base64')), d.final()]).toString('utf8');
}

const sha = (...values: string[]): string =>
  values
    .reduce((h, v) => h.update(v, 'utf8'), createHash('sha512'))
    .digest('hex')
    .toUpperCase();

function roundTrip(text: string): { encrypted: string; decrypted: string } {
  const cd = parseConfig(text);
  encryptDocument(cd, KEY, AGE);
  const encrypted = printConfig(cd);
  const back = parseConfig(encrypted);
  decryptDocument(back, KEY);
  return { encrypted, decrypted: printConfig(back) };
}

test.each([
  ['x-date.yaml', '2025-12-31T00:00:00Z'],
  ['x-underscore.yaml', '1000'],
  ['x-octal.yaml', '493'],
])('%s: the MAC hashes the value as sops reads it (%s), and the text is kept', (name, bytes) => {
  const { encrypted, decrypted } = roundTrip(input(name));
  expect(macOf(encrypted)).toBe(sha('checkout', bytes, 'abc'));
  expect(decrypted).toBe(input(name));
  expect(encrypted).toContain('version: 3.10.2');
});

test('an integer key is refused, as sops refuses it (quoted, it is a string and fine)', () => {
  expect(() => parseConfig(input('x-intkey.yaml'))).not.toThrow();
  expect(() => encryptDocument(parseConfig(input('x-intkey.yaml')), KEY, AGE)).toThrow(
    /key "status_pages.404" is not a string/,
  );
  expect(() => roundTrip(input('x-intkey.yaml').replace('404:', '"404":'))).not.toThrow();
});

test('plain numbers keep their text; the MAC hashes the numbers sops reads', () => {
  const text = 'a: 1e3\nb: .5\nc: +5\nd: 0755\ne: 0x1F\nf: 1.50\ng: yes\nh: 2025-12-31T10:00:00+02:00\n';
  const { encrypted, decrypted } = roundTrip(text);
  expect(decrypted).toBe(text);
  expect(macOf(encrypted)).toBe(sha('1000', '0.5', '5', '493', '31', '1.5', 'yes', '2025-12-31T10:00:00+02:00'));
});

test('an encrypted plain date is a sops time value', () => {
  const { encrypted, decrypted } = roundTrip('until_ecs_secret: 2025-12-31\n');
  expect(encrypted).toMatch(/until_ecs_secret: ENC\[AES256_GCM,.*type:time\]/);
  expect(decrypted).toBe('until_ecs_secret: 2025-12-31T00:00:00Z\n');
});

test('a multi-line comment in an encrypted map: one ENC per line, as sops writes it', () => {
  const text = 'creds_ecs_secret:\n    # first line\n    # second line\n    user: admin\n';
  const { encrypted, decrypted } = roundTrip(text);
  expect(encrypted).toMatch(
    /\n {4}#ENC\[AES256_GCM,[^\n]*type:comment\]\n {4}#ENC\[AES256_GCM,[^\n]*type:comment\]\n {4}user: ENC/,
  );
  expect(decrypted).toBe(text);
});

describe('decrypted strings in YAML are quoted where a YAML 1.1 reader would misread them', () => {
  const risky = ['yes', '1:20', '2024-01-01', '0777', 'on', '1_000'];
  test('YAML: secrets quoted, the author’s own plain text kept', () => {
    const text = `${risky.map((v, i) => `s${i}_ecs_secret: "${v}"`).join('\n')}\nplain: yes\n`;
    const { decrypted } = roundTrip(text);
    expect(decrypted).toBe(text);
    const y11 = require('yaml').parse(decrypted, { version: '1.1' });
    expect(risky.map((_, i) => y11[`s${i}_ecs_secret`])).toEqual(risky);
  });

  test('a JSON document printed as YAML (config build --format yaml, GET /config, rendered .yaml)', () => {
    const cd = parseConfig(`{"a_ecs_secret": ${JSON.stringify(risky)}, "b": "plain text"}`);
    encryptDocument(cd, KEY, AGE);
    const back = parseConfig(printConfig(cd));
    decryptDocument(back, KEY);
    const yaml = printConfig(back, 'yaml');
    expect(require('yaml').parse(yaml, { version: '1.1' }).a_ecs_secret).toEqual(risky);
    expect(yaml).toContain('b: plain text');
  });
});
