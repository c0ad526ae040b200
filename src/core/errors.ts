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
  access_denied: { exitCode: 1, httpStatus: 403 },
  forbidden: { exitCode: 1, httpStatus: 403 },
  misdirected: { exitCode: 1, httpStatus: 421 },
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
  /** The message without the remedy: what went wrong. */
  readonly detail: string;
  /** What the user can do about it, when that depends on where the error is reported; ends the message. */
  readonly remedy?: string;

  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: { cause?: unknown; remedy?: string },
  ) {
    super(options?.remedy ? `${message}; ${options.remedy}` : message, options);
    this.name = 'AppError';
    this.detail = message;
    this.remedy = options?.remedy;
  }
  get exitCode(): number {
    return ERROR_TABLE[this.kind].exitCode;
  }
  get httpStatus(): number {
    return ERROR_TABLE[this.kind].httpStatus;
  }
}

/**
 * Exit codes that are outcomes, not failures: the rest of the CLI's codes come from ERROR_TABLE.
 * `drift`: `config diff` found differences (as diff(1) says 1, but 1 is taken by runtime errors).
 */
export const OUTCOME_EXIT_CODES = { ok: 0, drift: 3 } as const;

/**
 * The kind an HTTP status stands for, for a client reading a daemon's answer (export and exec
 * through --daemon-url), so exit codes match a direct read: ERROR_TABLE read backwards. Where kinds
 * share a status the first in the table wins (403 reads back as access_denied); any 5xx reads back
 * as unavailable, since to the client the daemon failed to serve, whatever the cause.
 */
export function kindOfStatus(status: number): ErrorKind {
  if (status >= 500) return 'unavailable';
  return KIND_OF_STATUS.get(status) ?? 'internal';
}

const KIND_OF_STATUS = new Map<number, ErrorKind>();
for (const [kind, { httpStatus }] of Object.entries(ERROR_TABLE) as Array<[ErrorKind, { httpStatus: number }]>)
  if (!KIND_OF_STATUS.has(httpStatus)) KIND_OF_STATUS.set(httpStatus, kind);

/** Errors the SDK names for credentials or permissions that AWS refused. */
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
  // The KMS key exists but cannot be used (disabled, pending deletion): the operator must act on it.
  'DisabledException',
  'KMSInvalidStateException',
]);
const NOT_SET_UP = new Set(['ResourceNotFoundException', 'NotFoundException']);
const INTEGRITY = new Set(['InvalidCiphertextException', 'IncorrectKeyException']);
/**
 * Errors that pass with time. Most of them carry `$retryable` or a 5xx `$fault: 'server'`; these
 * names also cover the ones that arrive without (a client-side timeout, an exhausted retry budget
 * on throttling, KMS's own 4xx-coded internal errors).
 */
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
/** Socket errors (Node's errno codes), for requests that never got an HTTP answer. */
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

/** The fields of an SDK v3 error (a ServiceException, or a Node socket error) that classify it. */
interface SdkErrorFields {
  name?: string;
  code?: string;
  message?: string;
  $fault?: 'client' | 'server';
  $retryable?: { throttling?: boolean };
  $metadata?: { httpStatusCode?: number };
}

/** The kind of an SDK error, from its data only: name, $fault, $retryable, HTTP status, errno code. */
function kindOfAwsError(e: SdkErrorFields): ErrorKind {
  const name = e.name ?? '';
  const status = e.$metadata?.httpStatusCode ?? 0;
  if (ACCESS_DENIED.has(name)) return 'access_denied';
  if (NOT_SET_UP.has(name)) return 'not_set_up';
  if (INTEGRITY.has(name)) return 'integrity';
  if (UNAVAILABLE.has(name) || e.$retryable !== undefined || e.$fault === 'server' || status >= 500 || status === 429)
    return 'unavailable';
  if (NETWORK_CODES.has(e.code ?? '') || NETWORK_CODES.has(name)) return 'unavailable';
  if (status === 403) return 'access_denied';
  return 'internal';
}

/**
 * Translate whatever an AWS SDK call threw into an AppError. `what` names the operation for the
 * message ("reading secret db.password"). SDK messages are kept (they name the denied action,
 * which is what an operator needs) but never carry payloads: we never send plaintext to AWS
 * except as a KMS data key, which is not echoed.
 */
export function fromAwsError(err: unknown, what: string): AppError {
  if (err instanceof AppError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkErrorFields;
  const detail = oneLine(e.message ?? String(err));
  const kind = kindOfAwsError(e);
  return new AppError(kind, awsMessage(kind, e.name ?? '', what, detail), { cause: err });
}

function awsMessage(kind: ErrorKind, name: string, what: string, detail: string): string {
  switch (kind) {
    case 'access_denied':
      if (name === 'DisabledException' || name === 'KMSInvalidStateException')
        return `the KMS key cannot be used ${what}: ${detail}`;
      // No credentials at all is not a refusal by AWS, and most often a forgotten --local.
      if (name === 'CredentialsProviderError')
        return `no AWS credentials found (for the embedded store, add --local) ${what}: ${detail}`;
      return `access denied ${what}: ${detail}`;
    case 'not_set_up':
      return `${what}: ${detail} (has setup been run for this application and region?)`;
    case 'integrity':
      return `integrity check failed ${what}: KMS refused the data key for this record`;
    case 'unavailable':
      return `backend unavailable ${what}: ${detail}`;
    default:
      return `unexpected error ${what}: ${name ? `${name}: ` : ''}${detail}`;
  }
}

export function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}
