import { AppError } from '../../src/core/errors';
import { keyAlias, parseSerial, stackName, tableName, validateAppName, validateSecretName } from '../../src/core/names';
import { validatePayload } from '../../src/core/payload';

function usage(fn: () => unknown, kind = 'usage'): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).kind).toBe(kind);
    return (err as AppError).message;
  }
  throw new Error('expected an error');
}

test('resource names are the original ones', () => {
  expect(stackName('shop')).toBe('ECS-Secrets-shop');
  expect(tableName('shop')).toBe('ECS-Secrets-shop-Secrets');
  expect(keyAlias('shop')).toBe('alias/ECSSecretsMaskerKey-shop');
});

test('application names', () => {
  expect(validateAppName('a')).toBe('a');
  expect(validateAppName('Shop-2')).toBe('Shop-2');
  expect(validateAppName('a'.repeat(64))).toHaveLength(64);
  for (const bad of ['', '1shop', '-x', 'shop_1', 'a'.repeat(65), 'sh op', 'shop.x'])
    expect(usage(() => validateAppName(bad))).toMatch(
      bad === '' ? /missing application name/ : /invalid application name/,
    );
  expect(usage(() => validateAppName(undefined))).toMatch(/--application-name/);
});

test('secret names', () => {
  for (const ok of ['x', 'com.foo.app1.mysql', 'A_b-c.9', 'a'.repeat(255), '...x'])
    expect(validateSecretName(ok)).toBe(ok);
  for (const bad of ['', '.', '..', 'a/b', 'a b', 'a'.repeat(256), 'é', 'a%2Fb', 'a\nb'])
    expect(usage(() => validateSecretName(bad))).toMatch(/secret name/);
  // A 300-character name is shortened in the message, which stays one line.
  const msg = usage(() => validateSecretName('x'.repeat(300)));
  expect(msg.length).toBeLessThan(250);
  expect(msg).not.toMatch(/\n/);
});

test('serials are positive decimal integers', () => {
  expect(parseSerial('1')).toBe(1);
  expect(parseSerial('42')).toBe(42);
  expect(parseSerial(7)).toBe(7);
  for (const bad of ['abc', '0', '-1', '1e3', '1.5', '01', '', ' 1', '99999999999999999', '0x10', 'Infinity'])
    expect(usage(() => parseSerial(bad))).toMatch(/invalid serial/);
});

test('payloads: 1 byte to 256 KiB of UTF-8', () => {
  expect(validatePayload('x')).toBe('x');
  expect(validatePayload('é'.repeat(128 * 1024))).toHaveLength(128 * 1024); // 256 KiB in UTF-8 bytes
  expect(usage(() => validatePayload(`${'é'.repeat(128 * 1024)}x`), 'too_large')).toMatch(/262145 bytes.*262144/);
  expect(usage(() => validatePayload(''))).toMatch(/empty/);
  expect(usage(() => validatePayload(Buffer.from([0xff, 0xfe])))).toMatch(/UTF-8/);
  expect(validatePayload(Buffer.from('ünïcode'))).toBe('ünïcode');
});

test('no error message echoes a payload', () => {
  const canary = `CANARY-${'z'.repeat(260 * 1024)}`;
  expect(usage(() => validatePayload(canary), 'too_large')).not.toContain('CANARY');
});
