/** The sidecar's own HTTP headers, named once for the daemon that reads them and the clients that send them. */

/** The shared secret of --token-file (lower case: the form node gives request headers in). */
export const TOKEN_HEADER = 'x-ecs-secrets-token';
/** On every cached answer: hit, miss, stale or bypass. */
export const CACHE_HEADER = 'X-ECS-Secrets-Cache';
