/**
 * What the daemon answers when something fails below the routes: whatever express or its body
 * parser threw becomes an AppError (whose kind gives the status, core/errors.ts), and node's own
 * protocol errors get the contract's JSON error body.
 */
import { AppError, ERROR_TABLE } from '../../core/errors';
import { BODY_LIMIT_BYTES, BODY_SHAPE_MESSAGE } from './json-body';
import { MAX_HEADER_BYTES } from './socket-limits';

/** Map whatever a route or express threw to an AppError. Never a 500 for a client's mistake. */
export function httpError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as { type?: string; status?: number; statusCode?: number; message?: string };
  switch (e?.type) {
    case 'entity.too.large':
      return new AppError('too_large', `the request body is over ${BODY_LIMIT_BYTES} bytes`);
    case 'entity.parse.failed':
      // Strict parsing refuses valid JSON that is no object or array (null, "x", 5) the same way.
      return new AppError(
        'usage',
        parsesAsJson((err as { body?: unknown }).body) ? BODY_SHAPE_MESSAGE : 'the body is not valid JSON',
      );
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new AppError('unsupported_media', 'unsupported body encoding or charset');
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return new AppError('usage', 'the request body is incomplete or malformed');
  }
  if (err instanceof URIError) return new AppError('usage', 'malformed percent-encoding in the URL');
  const status = e?.status ?? e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return new AppError('usage', 'malformed request');
  return new AppError('internal', 'internal error', { cause: err });
}

/**
 * A node parser error (malformed request line or headers, headers over the limit, a request not
 * received in time) as status and message. The two protocol statuses have no AppError kind: no
 * route and no command ever raises them.
 */
export function protocolError(code: string | undefined): [number, string] {
  if (code === 'HPE_HEADER_OVERFLOW') return [431, `the request headers are over ${MAX_HEADER_BYTES / 1024} KiB`];
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, 'the request did not arrive in time'];
  return [ERROR_TABLE.usage.httpStatus, 'malformed HTTP request'];
}

/** What the log says of an unexpected error (the client sees only the request id). */
export function describeError(err: unknown): { name?: string; message?: string; stack?: string } {
  const e = err as Error;
  return { name: e?.name, message: e?.message, stack: e?.stack };
}

function parsesAsJson(text: unknown): boolean {
  if (typeof text !== 'string') return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
