/** Names and validation rules shared by every front end (compatible with the original). */
import { AppError } from './errors';

export const APP_NAME_RULE = /^[A-Za-z][A-Za-z0-9-]{0,63}$/;
/** A secret name's alphabet and length as a pattern source, for the routes that embed it; SECRET_NAME_RULE anchors it. */
export const SECRET_NAME_PATTERN = '[A-Za-z0-9._-]{1,255}';
export const SECRET_NAME_RULE = new RegExp(`^${SECRET_NAME_PATTERN}$`);
/**
 * The payload limit: 256 KiB, text (UTF-8 bytes) or binary, the same for the CLI and the daemon.
 * Sealed and base64-encoded that is about 350 KB, so the item stays under DynamoDB's 400 KB.
 */
export const MAX_PAYLOAD_BYTES = 256 * 1024;
/** With the u flag a well-formed surrogate pair is one code point; only an unpaired half matches. */
const LONE_SURROGATE = /\p{Cs}/u;

export const stackName = (app: string): string => `ECS-Secrets-${app}`;
export const tableName = (app: string): string => `ECS-Secrets-${app}-Secrets`;
/** "Masker" is the original's spelling; keeping it lets existing stacks work unchanged. */
export const keyAlias = (app: string): string => `alias/ECSSecretsMaskerKey-${app}`;

export function validateAppName(app: unknown): string {
  if (typeof app !== 'string' || app === '')
    throw new AppError(
      'usage',
      'missing application name: pass --application-name or set ECS_SECRETS_APPLICATION_NAME',
    );
  if (!APP_NAME_RULE.test(app))
    throw new AppError(
      'usage',
      `invalid application name ${quote(app)}: it must start with a letter and contain only letters, digits and '-' (at most 64 characters)`,
    );
  return app;
}

export function validateSecretName(name: unknown): string {
  if (typeof name !== 'string' || name === '') throw new AppError('usage', 'missing secret name');
  if (!SECRET_NAME_RULE.test(name) || name === '.' || name === '..')
    throw new AppError(
      'usage',
      `invalid secret name ${quote(name)}: use 1 to 255 characters from A-Z a-z 0-9 . _ - (dots make namespaces, e.g. com.foo.app1.mysql)`,
    );
  return name;
}

/** Serials are positive integers written in plain decimal: no signs, exponents, fractions or leading zeros. */
export function parseSerial(value: unknown): number {
  const s = typeof value === 'number' ? String(value) : value;
  if (typeof s !== 'string' || !/^[1-9][0-9]{0,15}$/.test(s) || !Number.isSafeInteger(Number(s)))
    throw new AppError(
      'usage',
      `invalid serial ${quote(String(value))}: it must be a positive whole number (1, 2, 3, ...)`,
    );
  return Number(s);
}

/** Text payloads are UTF-8, 1 byte to 256 KiB. */
export function validatePayload(payload: Buffer | string): string {
  const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  checkPayloadSize(bytes);
  // A JS string can hold a lone UTF-16 surrogate (JSON "\ud800" does); it has no UTF-8 form and
  // would be stored as U+FFFD, so the secret read back would differ from the one written.
  if (typeof payload === 'string') {
    if (LONE_SURROGATE.test(payload))
      throw new AppError('usage', 'the payload is not valid Unicode text (it holds a lone surrogate)');
    return payload;
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new AppError('usage', 'the payload is not valid UTF-8 text');
  }
}

function checkPayloadSize(bytes: Buffer): void {
  if (bytes.length === 0) throw new AppError('usage', 'the payload is empty');
  if (bytes.length > MAX_PAYLOAD_BYTES)
    throw new AppError(
      'too_large',
      `the payload is ${bytes.length} bytes; the limit is ${MAX_PAYLOAD_BYTES} bytes (256 KiB)`,
    );
}

/** Binary payloads are any bytes, 1 byte to 256 KiB. */
export function validateBinaryPayload(bytes: Buffer): Buffer {
  checkPayloadSize(bytes);
  return bytes;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decode standard base64 (RFC 4648, padding optional; line breaks and spaces are ignored, as
 * `base64` wraps its output). Node's decoder silently skips bad characters, which would store a
 * different secret than the one meant: anything that does not re-encode to the same text is refused.
 * The error never shows the input: it is the secret.
 */
export function decodeBase64Payload(text: string): Buffer {
  const compact = text.replace(/[\r\n\t ]/g, '');
  const bytes = Buffer.from(compact, 'base64');
  if (
    !BASE64.test(compact) ||
    compact.length % 4 === 1 ||
    bytes.toString('base64').replace(/=+$/, '') !== compact.replace(/=+$/, '')
  )
    throw new AppError(
      'usage',
      'the payload is not valid base64 (standard alphabet A-Z a-z 0-9 + /, optional = padding)',
    );
  return validateBinaryPayload(bytes);
}

/** Quote user input for an error message, shortened so a 300-character name stays one readable line. */
function quote(s: string): string {
  const short = s.length > 80 ? `${s.slice(0, 77)}...` : s;
  return JSON.stringify(short);
}
