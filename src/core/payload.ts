/** Payload rules shared by every front end: the size limit, UTF-8 text, binary bytes, base64 input. */
import { AppError } from './errors';

/**
 * The payload limit: 256 KiB, text (UTF-8 bytes) or binary, the same for the CLI and the daemon.
 * Sealed and base64-encoded that is about 350 KB, so the item stays under DynamoDB's 400 KB.
 */
export const MAX_PAYLOAD_BYTES = 256 * 1024;
/** With the u flag a well-formed surrogate pair is one code point; only an unpaired half matches. */
const LONE_SURROGATE = /\p{Cs}/u;

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
  return decodeUtf8(bytes, 'payload');
}

/**
 * The one decoding of input bytes as text: strict UTF-8 (an invalid sequence is a usage error
 * naming `what`, never echoing the bytes), and every byte kept. TextDecoder drops a leading
 * byte-order mark unless told not to, which would store a secret one character shorter than the
 * file it came from, and different from the same bytes sent over HTTP.
 */
export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new AppError('usage', `the ${what} is not valid UTF-8 text`);
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
