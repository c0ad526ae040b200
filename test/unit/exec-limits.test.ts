/** What execve accepts, checked before exec starts or stops anything (src/delivery/exec-limits.ts). */
import { AppError } from '../../src/core/errors';
import { MAX_STRING_BYTES, checkExecSize, totalLimit } from '../../src/delivery/exec-limits';

function failure(fn: () => unknown): AppError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return err as AppError;
  }
  throw new Error('expected an error');
}
const secretOf = (v: string) => (v === 'BIG' ? 'shop.big' : undefined);

test('one NAME=value string: up to 131,072 bytes with its NUL, counted in UTF-8 bytes', () => {
  // "BIG=" + value + NUL
  const fits = 'x'.repeat(MAX_STRING_BYTES - 5);
  expect(() => checkExecSize(['sh'], { BIG: fits }, secretOf)).not.toThrow();
  const e = failure(() => checkExecSize(['sh'], { BIG: `${fits}x` }, secretOf));
  expect(e.kind).toBe('too_large');
  expect(e.exitCode).toBe(2);
  expect(e.message).toBe(
    'secret "shop.big" as BIG is 131073 bytes as "BIG=value"; an environment variable holds at most 131072 bytes: render it to a file instead',
  );
  // two bytes per é: half as many characters
  expect(failure(() => checkExecSize(['sh'], { BIG: 'é'.repeat(MAX_STRING_BYTES / 2) }, secretOf)).kind).toBe(
    'too_large',
  );
  expect(failure(() => checkExecSize(['sh'], { OTHER: 'x'.repeat(140_000) }, secretOf)).message).toMatch(
    /^the variable OTHER is 140007 bytes/,
  );
});

test('all strings and their pointers: within the total limit', () => {
  const env = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`V${i}`, 'x'.repeat(100_000)]));
  expect(() => checkExecSize(['sh'], env, secretOf, 3_000_000)).not.toThrow();
  const e = failure(() => checkExecSize(['sh'], env, secretOf, 1_000_000));
  expect(e.kind).toBe('too_large');
  expect(e.message).toMatch(/^the command's arguments and environment would take \d+ bytes; the system allows 1000000/);
});

test('the total limit: a quarter of the stack limit, within the kernel floor (128 KiB) and cap (6 MiB)', () => {
  expect(totalLimit(8 * 1024 * 1024)).toBe(2 * 1024 * 1024);
  expect(totalLimit(64 * 1024)).toBe(128 * 1024);
  expect(totalLimit(1024 * 1024 * 1024)).toBe(6 * 1024 * 1024);
  expect(totalLimit(Number.POSITIVE_INFINITY)).toBe(6 * 1024 * 1024);
  expect(totalLimit()).toBeGreaterThanOrEqual(128 * 1024);
});
