/**
 * The SOPS v3 format module: known answers computed here, independently, from the sops
 * specification (the sops sources: aes/cipher.go for the value cipher, sops.go for the MAC and
 * lastmodified, stores/ for the metadata), and tamper tests. Each vector says where it comes from.
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { AppError } from '../../src/core/errors';
import {
  aadOf,
  decryptDocument,
  decryptValue,
  encryptDocument,
  encryptValue,
  formatFloat,
  parseConfig,
  printConfig,
  rfc3339,
} from '../../src/config/sops';

const KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i)); // 00 01 ... 1f
const IV = Buffer.alloc(32, 1);
const AGE = { age: [{ recipient: 'age1test', enc: 'not used here' }] };

/** sops aes/cipher.go Encrypt: GCM with a 32-byte nonce, AAD = additionalData, data = sealed minus the 16-byte tag. */
function sopsSeal(plaintext: string, type: string, key: Buffer, iv: Buffer, aad: string): string {
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad));
  const data = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
  return `ENC[AES256_GCM,data:${data.toString('base64')},iv:${iv.toString('base64')},tag:${c.getAuthTag().toString('base64')},type:${type}]`;
}

function sopsOpen(enc: string, key: Buffer, aad: string): string {
  const m = /^ENC\[AES256_GCM,data:(.*),iv:(.*),tag:(.*),type:(.*)\]$/.exec(enc)!;
  const d = createDecipheriv('aes-256-gcm', key, Buffer.from(m[2], 'base64'));
  d.setAAD(Buffer.from(aad));
  d.setAuthTag(Buffer.from(m[3], 'base64'));
  return Buffer.concat([d.update(Buffer.from(m[1], 'base64')), d.final()]).toString('utf8');
}

function expectIntegrity(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).kind).toBe('integrity');
    expect((err as AppError).exitCode).toBe(1);
    return;
  }
  throw new Error('expected an integrity error');
}

const SEED =
  '# the seed example\nplain: hello\nsecret_ecs_secret: my-secret\nport_ecs_secret: 5432\ndb_ecs_secret:\n    # comment inside an encrypted map\n    user: admin\n    flags: [true, 1.5]\nempty_ecs_secret: ""\nnothing: null\n';

describe('value cipher (known answers: sops aes/cipher.go)', () => {
  test('a string value: ENC[] from a fixed key, IV and AAD equals an independent AES-256-GCM seal', () => {
    const aad = 'secret_ecs_secret:';
    expect(encryptValue('my-secret', 'str', KEY, aad, IV)).toBe(sopsSeal('my-secret', 'str', KEY, IV, aad));
    // The literal, so a change in both the module and the helper above still shows up.
    expect(encryptValue('my-secret', 'str', KEY, aad, IV)).toMatch(
      /^ENC\[AES256_GCM,data:[A-Za-z0-9+/]{12},iv:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=,tag:[A-Za-z0-9+/]{22}==,type:str\]$/,
    );
  });

  test('bools are encrypted Title-case (strings.Title(FormatBool)), empty strings not at all', () => {
    expect(sopsOpen(encryptValue('True', 'bool', KEY, 'a:', IV), KEY, 'a:')).toBe('True');
    expect(encryptValue('', 'str', KEY, 'a:', IV)).toBe('');
  });

  test('AAD: the key path joined with ":" plus a trailing ":" (sops tree walk), no list index', () => {
    expect(aadOf(['a', 'b_ecs_secret', 'c'])).toBe('a:b_ecs_secret:c:');
    const cd = parseConfig('a:\n  b_ecs_secret:\n    c: x\n    l: [y, z]\n');
    encryptDocument(cd, KEY, AGE);
    const out = parseConfig(printConfig(cd)).doc.toJSON();
    expect(sopsOpen(out.a.b_ecs_secret.c, KEY, 'a:b_ecs_secret:c:')).toBe('x');
    expect(sopsOpen(out.a.b_ecs_secret.l[1], KEY, 'a:b_ecs_secret:l:')).toBe('z');
  });

  test('a value moved to another key fails authentication', () => {
    const enc = encryptValue('v', 'str', KEY, 'a_ecs_secret:');
    expectIntegrity(() => decryptValue(enc, KEY, 'b_ecs_secret:', 'the value at b_ecs_secret'));
  });

  test("floats without exponent, as Go FormatFloat(f, 'f', -1, 64)", () => {
    expect(formatFloat(1.5)).toBe('1.5');
    expect(formatFloat(1e21)).toBe('1000000000000000000000');
    expect(formatFloat(1.25e-7)).toBe('0.000000125');
    expect(formatFloat(-2.5e22)).toBe('-25000000000000000000000');
  });

  test('lastmodified is Go RFC 3339: no fractional seconds', () => {
    expect(rfc3339(new Date('2026-11-30T12:00:00.123Z'))).toBe('2026-11-30T12:00:00Z');
  });
});

describe('documents', () => {
  const NOW = new Date('2026-11-30T12:00:00Z');

  test('the MAC: SHA-512 of every non-null leaf in document order, uppercase hex, encrypted with AAD = lastmodified (sops.go)', () => {
    const cd = parseConfig(SEED);
    encryptDocument(cd, KEY, AGE, NOW);
    const stored = parseConfig(printConfig(cd)).doc.toJSON();
    expect(stored.sops.lastmodified).toBe('2026-11-30T12:00:00Z');
    expect(stored.sops.encrypted_suffix).toBe('_ecs_secret');
    // Leaves in order: hello, my-secret, 5432, admin, True, 1.5, "" (null skipped; bool as True).
    const expected = createHash('sha512').update('hellomy-secret5432adminTrue1.5').digest('hex').toUpperCase();
    expect(sopsOpen(stored.sops.mac, KEY, '2026-11-30T12:00:00Z')).toBe(expected);
    expect(stored.plain).toBe('hello');
    expect(stored.nothing).toBeNull();
    expect(stored.empty_ecs_secret).toBe('');
    expect(sopsOpen(stored.port_ecs_secret, KEY, 'port_ecs_secret:')).toBe('5432');
    expect(stored.port_ecs_secret).toMatch(/type:int\]$/);
    expect(stored.db_ecs_secret.flags[0]).toMatch(/type:bool\]$/);
  });

  test('round trip keeps comments and key order; the comment inside the encrypted map is encrypted', () => {
    const cd = parseConfig(SEED);
    encryptDocument(cd, KEY, AGE, NOW);
    const text = printConfig(cd);
    expect(text).toContain('# the seed example');
    expect(text).not.toContain('comment inside');
    expect(text).not.toContain('my-secret');
    const back = parseConfig(text);
    decryptDocument(back, KEY);
    const out = printConfig(back);
    expect(out).toContain('# comment inside an encrypted map');
    expect(back.doc.toJSON()).toEqual({
      plain: 'hello',
      secret_ecs_secret: 'my-secret',
      port_ecs_secret: 5432,
      db_ecs_secret: { user: 'admin', flags: [true, 1.5] },
      empty_ecs_secret: '',
      nothing: null,
    });
    expect(out.indexOf('plain')).toBeLessThan(out.indexOf('secret_ecs_secret'));
  });

  test('JSON keeps key order, integer-like keys included', () => {
    const cd = parseConfig('{"b": 1, "2": "x", "1_ecs_secret": "s", "a": {"10": 1, "9": 2}}');
    encryptDocument(cd, KEY, AGE, NOW);
    const back = parseConfig(printConfig(cd));
    expect(back.format).toBe('json');
    decryptDocument(back, KEY);
    const json = printConfig(back);
    expect(JSON.parse(json)).toEqual({ b: 1, 2: 'x', '1_ecs_secret': 's', a: { 10: 1, 9: 2 } });
    expect([...json.matchAll(/"([^"]+)":/g)].map((m) => m[1])).toEqual(['b', '2', '1_ecs_secret', 'a', '10', '9']);
  });

  test('the sops block as sops writes it: lastmodified quoted; a JSON document printed as block YAML', () => {
    const cd = parseConfig('{"a": "x", "b_ecs_secret": {"c": [1, "two"]}}');
    encryptDocument(cd, KEY, AGE, NOW);
    expect(printConfig(cd, 'yaml')).toContain('    lastmodified: "2026-11-30T12:00:00Z"\n');
    decryptDocument(cd, KEY);
    expect(printConfig(cd, 'yaml')).toBe('a: x\nb_ecs_secret:\n    c:\n        - 1\n        - two\n');
  });

  test('a document encrypted by the sops rules alone (built here by hand) is decrypted', () => {
    const lastmodified = '2026-01-02T03:04:05Z';
    const mac = createHash('sha512').update('visibles3cretFalse').digest('hex').toUpperCase();
    const text = [
      'visible: visible',
      `token_ecs_secret: ${sopsSeal('s3cret', 'str', KEY, IV, 'token_ecs_secret:')}`,
      `on_ecs_secret: ${sopsSeal('False', 'bool', KEY, IV, 'on_ecs_secret:')}`,
      'sops:',
      '    lastmodified: "2026-01-02T03:04:05Z"',
      `    mac: ${sopsSeal(mac, 'str', KEY, IV, lastmodified)}`,
      '    encrypted_suffix: _ecs_secret',
      '    version: 3.8.1',
      '',
    ].join('\n');
    const cd = parseConfig(text);
    decryptDocument(cd, KEY);
    expect(cd.doc.toJSON()).toEqual({ visible: 'visible', token_ecs_secret: 's3cret', on_ecs_secret: false });
  });

  describe('tamper: integrity error, document untouched (never partial output)', () => {
    const encrypted = (): string => {
      const cd = parseConfig(SEED);
      encryptDocument(cd, KEY, AGE, NOW);
      return printConfig(cd);
    };
    test('one encrypted value changed', () => {
      const text = encrypted().replace(
        /(secret_ecs_secret: ENC\[AES256_GCM,data:)(.)/,
        (_m, a, c) => a + (c === 'A' ? 'B' : 'A'),
      );
      const cd = parseConfig(text);
      expectIntegrity(() => decryptDocument(cd, KEY));
      expect(printConfig(cd)).toBe(text);
    });
    test('two encrypted values swapped (AAD binds each to its key)', () => {
      const text = encrypted();
      const a = /secret_ecs_secret: (ENC\[[^\]]+\])/.exec(text)![1];
      const b = /port_ecs_secret: (ENC\[[^\]]+\])/.exec(text)![1];
      const swapped = text.replace(a, 'X').replace(b, a).replace('X', b);
      expectIntegrity(() => decryptDocument(parseConfig(swapped), KEY));
    });
    test('one plain value changed', () => {
      expectIntegrity(() => decryptDocument(parseConfig(encrypted().replace('plain: hello', 'plain: hellO')), KEY));
    });
    test('the MAC changed, or lastmodified', () => {
      const text = encrypted();
      const mac = /mac: (ENC\[[^\]]+\])/.exec(text)![1];
      const other = encryptValue('0'.repeat(128), 'str', KEY, '2026-11-30T12:00:00Z');
      expectIntegrity(() => decryptDocument(parseConfig(text.replace(mac, other)), KEY));
      expectIntegrity(() =>
        decryptDocument(parseConfig(text.replace('2026-11-30T12:00:00Z', '2026-11-30T12:00:01Z')), KEY),
      );
    });
    test('another data key', () => {
      expectIntegrity(() => decryptDocument(parseConfig(encrypted()), Buffer.alloc(32, 7)));
    });
  });

  test('malformed input: one line naming the position, never the text', () => {
    for (const [text, re] of [
      ['a: [unclosed my-secret-value', /malformed YAML document at line 1, column/],
      ['{"a": "my-secret-value",}', /malformed JSON document/],
      ['- just\n- a list\n', /must be a mapping/],
    ] as const) {
      try {
        parseConfig(text);
        throw new Error('expected an error');
      } catch (err) {
        expect((err as AppError).kind).toBe('usage');
        expect((err as Error).message).toMatch(re);
        expect((err as Error).message).not.toContain('my-secret-value');
        expect((err as Error).message).not.toContain('\n');
      }
    }
  });
});

test('dotenv refuses a NUL in a value as export does, naming the key (never the value)', () => {
  try {
    printConfig(parseConfig('db:\n  password: "se\\0cret"\nok: fine\n'), 'dotenv');
    throw new Error('expected an error');
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).kind).toBe('usage');
    expect((err as AppError).message).toBe(
      'cannot print the document as dotenv: key "db.password" holds a NUL character, which an environment variable cannot carry',
    );
  }
  expect(printConfig(parseConfig('ok: "fine\\x01"\n'), 'dotenv')).toBe("ok='fine\u0001'\n");
});
