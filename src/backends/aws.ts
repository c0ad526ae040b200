/**
 * AWS SDK v3 clients. No endpoint is hard-coded: the SDK's own configuration chain applies, so
 * AWS_REGION, the credentials chain and AWS_ENDPOINT_URL[_DYNAMODB|_KMS|_CLOUDFORMATION] work as
 * everywhere else (this is also how tests reach the in-process stand-ins).
 *
 * Every call has explicit time limits and bounded retries: a sidecar must answer "unavailable"
 * quickly rather than hang an application's start-up.
 */
import type { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { KMSClient } from '@aws-sdk/client-kms';
import type { STSClient } from '@aws-sdk/client-sts';
import type { NodeHttpHandler } from '@smithy/node-http-handler';
import type { HttpAuthScheme, HttpSigner } from '@smithy/types';
import { AppError } from '../core/errors';
import { kmsSdk } from '../core/keys';

// The SDK warns on every process start that Node 20 support ends; that is for us to act on
// (the Docker image runs a newer LTS), not noise for every user's stderr.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/**
 * The limits, chosen for an operator: DynamoDB and KMS answer in tens of milliseconds, so an
 * attempt that takes 2 s is broken, not slow. Three attempts (the SDK's backoff between them is
 * at most a few hundred ms, up to 3 s when throttled) bound one failing call to about 6.5 s:
 * a CLI command fails in well under 10 s, and the daemon's 4 s read deadline (READ_DEADLINE_MS, daemon/daemon.ts) still
 * gets a second attempt. Writes have no deadline of their own: they are bounded by these limits.
 */
export const CONNECT_TIMEOUT_MS = 1000;
export const REQUEST_TIMEOUT_MS = 2000;
export const MAX_ATTEMPTS = 3;

/**
 * Options for every NodeHttpHandler we build. `throwOnRequestTimeout`: without it the SDK's
 * requestTimeout only logs a warning and the request waits as long as the server takes.
 */
export const HTTP_HANDLER_OPTIONS = {
  connectionTimeout: CONNECT_TIMEOUT_MS,
  requestTimeout: REQUEST_TIMEOUT_MS,
  throwOnRequestTimeout: true,
} as const;

export interface ClientOptions {
  region?: string;
  /** Embedded backend: a fixed endpoint, static credentials and our own request handler. */
  embedded?: { endpoint: string; requestHandler: NodeHttpHandler };
}

/**
 * The SDK's own option to resolve a client's middleware stack once per command class instead of
 * on every call: without it each call copies, sorts and links the whole stack again, which was
 * about half of the 400 KB a daemon allocated per cold read (a DynamoDB read and a KMS Decrypt),
 * garbage that grows the heap. Our one middleware (open-backend.ts, metrics) is added when the
 * client is built, before any call, as the option requires. The DynamoDB client goes without it:
 * the document client (core/storage.ts) refuses it.
 */
const CACHED_MIDDLEWARE = { cacheMiddleware: true } as const;

/**
 * The embedded store's requests are not signed, only given the shape of a SigV4 header that
 * dynalite checks for: dynalite verifies no signature, and the store authenticates its clients by
 * the store key (backends/embedded.ts), so a real signature would be CPU for nothing (the SDK
 * builds a signer and derives a key per request: a twentieth of an import's CPU).
 */
const EMBEDDED_SIGNER: HttpSigner = {
  async sign(request) {
    const date = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
    request.headers['x-amz-date'] = date;
    request.headers.authorization = `AWS4-HMAC-SHA256 Credential=local/${date.slice(0, 8)}/local/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=unsigned`;
    return request;
  },
};
const EMBEDDED_AUTH: HttpAuthScheme[] = [
  {
    schemeId: 'aws.auth#sigv4',
    identityProvider: (config) => config.getIdentityProvider('aws.auth#sigv4'),
    signer: EMBEDDED_SIGNER,
  },
];

function common(opts: ClientOptions) {
  if (opts.embedded)
    return {
      region: 'local',
      endpoint: opts.embedded.endpoint,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      requestHandler: opts.embedded.requestHandler,
      maxAttempts: MAX_ATTEMPTS,
      httpAuthSchemes: EMBEDDED_AUTH,
    };
  return {
    ...(opts.region ? { region: opts.region } : {}),
    maxAttempts: MAX_ATTEMPTS,
    requestHandler: new (
      require('@smithy/node-http-handler') as typeof import('@smithy/node-http-handler')
    ).NodeHttpHandler(HTTP_HANDLER_OPTIONS),
  };
}

/**
 * A client whose region cannot be resolved fails its first call with a usage error saying how to
 * give one. The SDK's own error for that is a plain Error with nothing but its message to tell it
 * apart, so it is caught here, where the region is resolved, rather than recognised later by text.
 */
function requireRegion<C extends { config: { region: () => Promise<string> } }>(client: C): C {
  const resolve = client.config.region;
  const checked = async () => {
    let region: string | undefined;
    try {
      region = await resolve();
    } catch (err) {
      throw new AppError('usage', NO_REGION, { cause: err });
    }
    if (!region) throw new AppError('usage', NO_REGION);
    return region;
  };
  // The SDK asks for the region several times per call; once found, it does not change.
  let found: Promise<string> | undefined;
  client.config.region = () => {
    if (found) return found;
    const attempt = checked();
    found = attempt;
    attempt.catch(() => {
      if (found === attempt) found = undefined;
    });
    return attempt;
  };
  return client;
}

/** Without a region the likely mistake is a forgotten --local (e.g. beside --data-dir): say so. */
const NO_REGION = 'no AWS region: pass --region or set AWS_REGION (for the embedded store, add --local)';

/**
 * Each SDK package is loaded when its first client is built, not when this module is imported:
 * `fetch` never pays for CloudFormation, the daemon neither, and `--help` or a usage error pays
 * for no SDK at all. A plain require, so the bundle (dist/src/cli.js, esbuild) still contains the
 * packages and only defers running them (literal names: esbuild follows those).
 */
export const dynamoClient = (opts: ClientOptions): DynamoDBClient =>
  requireRegion(
    new (require('@aws-sdk/client-dynamodb') as typeof import('@aws-sdk/client-dynamodb')).DynamoDBClient(common(opts)),
  );
export const kmsClient = (opts: ClientOptions): KMSClient =>
  requireRegion(
    new (kmsSdk().KMSClient)({
      ...common(opts),
      ...CACHED_MIDDLEWARE,
    }),
  );
export const cloudFormationClient = (opts: ClientOptions): CloudFormationClient =>
  requireRegion(
    new (
      require('@aws-sdk/client-cloudformation') as typeof import('@aws-sdk/client-cloudformation')
    ).CloudFormationClient(common(opts)),
  );
export const stsClient = (opts: ClientOptions): STSClient =>
  requireRegion(new (require('@aws-sdk/client-sts') as typeof import('@aws-sdk/client-sts')).STSClient(common(opts)));
