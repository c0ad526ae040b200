/**
 * Generated secret values (`create --generate`, `rotate --generate`): crypto-random characters
 * drawn uniformly from one alphabet (crypto.randomInt rejects the biased draws, so no character
 * is likelier than another).
 */
import { randomInt } from 'node:crypto';
import { AppError } from './errors';

const DIGITS = '0123456789';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = LOWER.toUpperCase();

export const CHARSETS: Readonly<Record<string, string>> = {
  alnum: UPPER + LOWER + DIGITS,
  hex: `${DIGITS}abcdef`,
  base64url: `${UPPER}${LOWER}${DIGITS}-_`,
  // Every visible ASCII character, 0x21 to 0x7E: no space, so the value survives unquoted copying.
  printable: Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i)).join(''),
};

const DEFAULT_LENGTH = 32;
/** Shorter is no secret worth generating; longer than any password field takes. */
const MIN_LENGTH = 8;
const MAX_LENGTH = 4096;

export interface GenerateOptions {
  length?: unknown;
  charset?: unknown;
}

/** Check the options (usage errors naming the flag) before anything is generated or run. */
export function validateGenerateOptions(opts: GenerateOptions): { length: number; charset: string } {
  const raw = opts.length ?? DEFAULT_LENGTH;
  const text = String(raw);
  const length = Number(text);
  if (!/^[0-9]{1,5}$/.test(text) || length < MIN_LENGTH || length > MAX_LENGTH)
    throw new AppError(
      'usage',
      `invalid --length ${JSON.stringify(text.slice(0, 20))}: a whole number from ${MIN_LENGTH} to ${MAX_LENGTH}`,
    );
  const charset = String(opts.charset ?? 'alnum');
  if (!Object.hasOwn(CHARSETS, charset))
    throw new AppError(
      'usage',
      `invalid --charset ${JSON.stringify(charset.slice(0, 20))}: one of ${Object.keys(CHARSETS).join(', ')}`,
    );
  return { length, charset };
}

export function generateValue(opts: GenerateOptions = {}): string {
  const { length, charset } = validateGenerateOptions(opts);
  const alphabet = CHARSETS[charset];
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}
