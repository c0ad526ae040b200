/**
 * The daemon's connection limits, in one place: the server applies them and a test checks that
 * README.md and SECURITY.md state these very numbers.
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
/** Default of --max-connections: far above what one task's containers open, far below a container's file limit. */
export const DEFAULT_MAX_CONNECTIONS = 512;
/**
 * Default --cache-max-bytes: 32 MiB for the caches, 7/8 for secrets, 1/16 for data keys, 1/16 for
 * decrypted configuration documents (GET /config). A 512 MiB
 * Fargate task keeps over 350 MiB for its application: the daemon idles at about 75 MiB RSS, and
 * V8 needs room about the size of the live data on top of it to collect garbage. 28 MiB hold
 * thousands of typical secrets (about 1 KiB each with their JSON), or a dozen at the worst case
 * (daemon.ts, the most one cached secret can cost).
 * (Here, not in daemon.ts, so that the `daemon` command's flags can show it without loading the
 * daemon's server: issue 13.)
 */
export const DEFAULT_CACHE_MAX_BYTES = 32 * 1024 * 1024;
