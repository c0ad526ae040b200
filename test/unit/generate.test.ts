/** Generated values: the alphabet and length of each charset, crypto-random, bad options refused. */
import { CHARSETS, generateValue, validateGenerateOptions } from '../../src/core/generate';

test('each charset draws from its alphabet only, and uses all of it', () => {
  expect(CHARSETS.hex).toBe('0123456789abcdef');
  expect(CHARSETS.printable).toHaveLength(94);
  expect(CHARSETS.alnum).toHaveLength(62);
  expect(CHARSETS.base64url).toHaveLength(64);
  for (const [charset, alphabet] of Object.entries(CHARSETS)) {
    const value = generateValue({ length: 4096, charset });
    expect(value).toHaveLength(4096);
    const used = new Set(value);
    for (const c of used) expect(alphabet).toContain(c);
    // 4096 draws from at most 94 characters: every character shows up (a miss has odds below 1e-18).
    expect(used.size).toBe(alphabet.length);
  }
});

test('defaults: 32 alphanumeric characters, different each time', () => {
  const a = generateValue();
  expect(a).toMatch(/^[A-Za-z0-9]{32}$/);
  expect(generateValue()).not.toBe(a);
});

test('bad lengths and charsets are usage errors naming the flag', () => {
  for (const length of [0, 7, 4097, '1e3', '', ' 32', '32.0', -5])
    expect(() => validateGenerateOptions({ length })).toThrow(
      expect.objectContaining({ kind: 'usage', message: expect.stringMatching(/--length/) }),
    );
  expect(() => validateGenerateOptions({ charset: 'toString' })).toThrow(/--charset/);
  expect(validateGenerateOptions({ length: '8', charset: 'hex' })).toEqual({ length: 8, charset: 'hex' });
});
