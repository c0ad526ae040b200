/**
 * Who is writing: what every new version records as CreatedBy and every revoke as RevokedBy.
 * On AWS the caller's ARN from STS GetCallerIdentity, asked once per process (it cannot change
 * while the process runs, and it needs no IAM permission); under --local `local:<os user>`.
 * @aws-sdk/client-sts is loaded on the first write only: reads never pay for it.
 */
import * as os from 'node:os';
import type { STSClient } from '@aws-sdk/client-sts';
import type { Logger } from './log';

export interface IdentityOptions {
  local: boolean;
  /** Builds the STS client (backends/aws.ts: the standard chain, AWS_ENDPOINT_URL_STS included). */
  sts?: () => STSClient;
  logger?: Logger;
}

/** `local:<user>` for the embedded backend: the OS account that ran the command or daemon. */
function localPrincipal(): string {
  let user: string;
  try {
    user = os.userInfo().username;
  } catch {
    // A container user without a passwd entry: the uid still names it.
    user = String(process.getuid?.() ?? 'unknown');
  }
  return `local:${user}`;
}

let awsPrincipal: Promise<string | undefined> | undefined;

/**
 * The principal for this process, memoised. When STS cannot be reached (a private subnet
 * without an STS endpoint) the write still goes ahead without CreatedBy and the log says why
 * once: losing a rotation because an audit field is unknown would be the worse failure, and
 * CloudTrail still has the DynamoDB call.
 */
export function principalResolver(opts: IdentityOptions): () => Promise<string | undefined> {
  if (opts.local) {
    const who = localPrincipal();
    return async () => who;
  }
  return () => {
    awsPrincipal ??= callerArn(opts.sts).catch((err: unknown) => {
      opts.logger?.warn(
        { error: (err as Error)?.name ?? 'Error' },
        `cannot tell who is writing (STS GetCallerIdentity failed: ${(err as Error)?.message ?? err}); CreatedBy/RevokedBy are not recorded`,
      );
      return undefined;
    });
    return awsPrincipal;
  };
}

async function callerArn(makeClient: (() => STSClient) | undefined): Promise<string | undefined> {
  if (!makeClient) return undefined;
  const { GetCallerIdentityCommand } = require('@aws-sdk/client-sts') as typeof import('@aws-sdk/client-sts');
  const client = makeClient();
  try {
    return (await client.send(new GetCallerIdentityCommand({}))).Arn;
  } finally {
    client.destroy();
  }
}
