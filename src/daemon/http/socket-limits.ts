/**
 * The daemon's socket limits, in one place: the server applies them and a test checks that
 * docs/daemon.md and SECURITY.md state these very numbers.
 */

/** A client must send its complete request headers within this time (slow-loris bound). */
export const HEADERS_TIMEOUT_MS = 10_000;
/** A whole request (headers and body) must arrive within this time. */
export const REQUEST_TIMEOUT_MS = 30_000;
/**
 * How often Node checks the two timeouts above. Node's default is 30 s, which would let a slow
 * client hold a connection for up to 40 s instead of 10; checked every second, the real bound is
 * HEADERS_TIMEOUT_MS + CONNECTIONS_CHECKING_INTERVAL_MS.
 */
export const CONNECTIONS_CHECKING_INTERVAL_MS = 1_000;
/** An idle keep-alive connection is closed after this long (above the usual 60 s of load balancers and agents). */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** Node's default maximum size of a request's headers; more is answered 431. */
export const MAX_HEADER_BYTES = 16 * 1024;
