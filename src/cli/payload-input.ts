/**
 * A payload from --payload or --payload-location (a file, or - for standard input), read capped
 * at the limit and checked (core/payload.ts): text for most secrets, bytes for --binary.
 */
import { readCapped as readInput } from '../core/capped-input';
import { AppError } from '../core/errors';
import { MAX_PAYLOAD_BYTES, decodeBase64Payload, validateBinaryPayload, validatePayload } from '../core/payload';

/** Read the payload from --payload or --payload-location (a file, or - for stdin), capped at the limit. */
export async function readPayload(args: { payload?: string; 'payload-location'?: string }): Promise<string> {
  const { payload, 'payload-location': location } = args;
  if (payload !== undefined && location !== undefined)
    throw new AppError('usage', 'pass only one of --payload or --payload-location');
  if (payload !== undefined) return validatePayload(payload);
  if (location === undefined || location === '')
    throw new AppError('usage', 'pass one of --payload or --payload-location FILE (- reads standard input)');
  return validatePayload(await readCapped(location, MAX_PAYLOAD_BYTES + 1));
}

/**
 * The payload of a binary secret: `--binary` takes the bytes of --payload-location (file or stdin)
 * as they are; `--payload-encoding base64` decodes base64 text from --payload or the file.
 */
export async function readBinaryPayload(args: {
  payload?: string;
  'payload-location'?: string;
  binary?: boolean;
  'payload-encoding'?: string;
}): Promise<Buffer> {
  const { payload, 'payload-location': location } = args;
  if (payload !== undefined && location !== undefined)
    throw new AppError('usage', 'pass only one of --payload or --payload-location');
  if (args['payload-encoding'] === 'base64') {
    if (payload !== undefined) return decodeBase64Payload(payload);
    if (location === undefined || location === '')
      throw new AppError('usage', 'pass one of --payload or --payload-location FILE (- reads standard input)');
    // base64 is 4/3 of the bytes, plus line breaks: read enough to decode a payload at the limit.
    return decodeBase64Payload((await readCapped(location, 2 * MAX_PAYLOAD_BYTES)).toString('latin1'));
  }
  if (payload !== undefined)
    throw new AppError(
      'usage',
      '--binary reads the bytes of --payload-location FILE (- reads standard input), not --payload',
    );
  if (location === undefined || location === '')
    throw new AppError('usage', '--binary needs --payload-location FILE (- reads standard input)');
  return validateBinaryPayload(await readCapped(location, MAX_PAYLOAD_BYTES + 1));
}

/** How far past the cap standard input is still counted (not kept), to say how large it was. */
const STDIN_COUNT_LIMIT = 16 * 1024 * 1024;

/**
 * Read a payload file or stdin, keeping at most `cap` bytes. Past the cap only the size is of
 * use, for the error: a file's comes from fstat, stdin's from counting (up to 16 MiB) what
 * follows, so "the payload is N bytes" names the input's real size, not how much was read.
 */
async function readCapped(location: string, cap: number): Promise<Buffer> {
  const { data, size } = await readInput(location, cap, 'payload file', STDIN_COUNT_LIMIT);
  if (size > MAX_PAYLOAD_BYTES && size >= cap) {
    const shown = size > STDIN_COUNT_LIMIT && location === '-' ? `over ${STDIN_COUNT_LIMIT}` : `${size}`;
    throw new AppError('too_large', `the payload is ${shown} bytes; the limit is ${MAX_PAYLOAD_BYTES} bytes (256 KiB)`);
  }
  return data;
}
