/**
 * Every failure the product reports is an AppError of one kind. The kind decides, in one table,
 * the CLI exit code and the daemon's HTTP status, so the two front ends never disagree.
 * Messages are written for operators: one line, no secret material, no stack trace.
 */
export type ErrorKind =
  | 'usage' // malformed command line or request: bad flag, name, serial, JSON
  | 'too_large' // payload or body over the size limit
  | 'unsupported_media' // daemon: a body that is not JSON
  | 'not_found' // unknown secret or serial
  | 'unauthorized' // daemon: missing or wrong token
  | 'forbidden' // daemon: write on a --read-only daemon, or a cross-site write from a web page
  | 'misdirected' // daemon: a Host header the sidecar is not reached by (DNS rebinding)
  | 'access_denied' // AWS refused our credentials (IAM or KMS key policy)
  | 'not_set_up' // the application's table or key does not exist
  | 'integrity' // a record failed authentication: tampered, moved, or wrong key
  | 'conflict' // could not allocate a serial after bounded retries
  | 'unavailable' // backend down, throttled or timing out
  | 'command_not_found' // exec: CMD does not exist (exit 127, as a shell and env(1) say)
  | 'command_not_executable' // exec: CMD exists but cannot be run (exit 126, as a shell says)
  | 'internal'; // a bug: anything we did not anticipate

export const ERROR_TABLE: Readonly<Record<ErrorKind, { exitCode: number; httpStatus: number }>> = {
  usage: { exitCode: 2, httpStatus: 400 },
  too_large: { exitCode: 2, httpStatus: 413 },
  unsupported_media: { exitCode: 2, httpStatus: 415 },
  not_found: { exitCode: 1, httpStatus: 404 },
  unauthorized: { exitCode: 1, httpStatus: 401 },
  forbidden: { exitCode: 1, httpStatus: 403 },
  misdirected: { exitCode: 1, httpStatus: 421 },
  access_denied: { exitCode: 1, httpStatus: 403 },
  not_set_up: { exitCode: 1, httpStatus: 503 },
  integrity: { exitCode: 1, httpStatus: 500 },
  conflict: { exitCode: 1, httpStatus: 409 },
  unavailable: { exitCode: 1, httpStatus: 503 },
  // exec only; no route raises these, the status is there because every kind has one.
  command_not_found: { exitCode: 127, httpStatus: 500 },
  command_not_executable: { exitCode: 126, httpStatus: 500 },
  internal: { exitCode: 1, httpStatus: 500 },
};

export class AppError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
  }
  get exitCode(): number {
    return ERROR_TABLE[this.kind].exitCode;
  }
  get httpStatus(): number {
    return ERROR_TABLE[this.kind].httpStatus;
  }
}

const ACCESS_DENIED = new Set([
  'AccessDeniedException',
  'AccessDenied',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignature',
  'ExpiredTokenException',
  'ExpiredToken',
  'InvalidClientTokenId',
  'CredentialsProviderError',
]);
const UNAVAILABLE = new Set([
  'ThrottlingException',
  'Throttling',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'LimitExceededException',
  'ServiceUnavailable',
  'InternalServerError',
  'InternalFailure',
  'KMSInternalException',
  'DependencyTimeoutException',
  'TimeoutError',
  'RequestTimeout',
  'AbortError',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

/**
 * Translate whatever an AWS SDK call threw into an AppError. `what` names the operation for the
 * message ("reading secret db.password"). SDK messages are kept (they name the denied action,
 * which is what an operator needs) but never carry payloads: we never send plaintext to AWS
 * except as a KMS data key, which is not echoed.
 */
export function fromAwsError(err: unknown, what: string): AppError {
  if (err instanceof AppError) return err;
  const e = err as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = e?.name ?? '';
  const detail = oneLine(e?.message ?? String(err));
  if (ACCESS_DENIED.has(name)) return new AppError('access_denied', `access denied ${what}: ${detail}`, { cause: err });
  if (name === 'ResourceNotFoundException' || name === 'NotFoundException')
    return new AppError('not_set_up', `${what}: ${detail} (has setup been run for this application and region?)`, {
      cause: err,
    });
  if (name === 'InvalidCiphertextException' || name === 'IncorrectKeyException')
    return new AppError('integrity', `integrity check failed ${what}: KMS refused the data key for this record`, {
      cause: err,
    });
  if (name === 'DisabledException' || name === 'KMSInvalidStateException')
    return new AppError('access_denied', `the KMS key cannot be used ${what}: ${detail}`, { cause: err });
  if (UNAVAILABLE.has(name) || NETWORK_CODES.has(e?.code ?? '') || NETWORK_CODES.has(name))
    return new AppError('unavailable', `backend unavailable ${what}: ${detail}`, { cause: err });
  if (/Region is missing/i.test(detail))
    return new AppError('usage', 'no AWS region: pass --region or set AWS_REGION', { cause: err });
  if ((e?.$metadata?.httpStatusCode ?? 0) >= 500)
    return new AppError('unavailable', `backend unavailable ${what}: ${detail}`, { cause: err });
  if (e?.$metadata === undefined && /connect|socket|network|timed? ?out/i.test(detail))
    return new AppError('unavailable', `backend unavailable ${what}: ${detail}`, { cause: err });
  return new AppError('internal', `unexpected error ${what}: ${name ? `${name}: ` : ''}${detail}`, { cause: err });
}

export function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}
