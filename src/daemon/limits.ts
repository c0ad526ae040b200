/** Defaults of the daemon's --max-connections and --cache-max-bytes flags. */

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
 * daemon's server.)
 */
export const DEFAULT_CACHE_MAX_BYTES = 32 * 1024 * 1024;
