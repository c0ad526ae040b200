/**
 * What every import source gives the planner and the writer: secrets with their versions, listed
 * without decrypting anything (what `--dry-run` needs), and the values read only when written.
 */
import type { SSMClient } from '@aws-sdk/client-ssm';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { HTTP_HANDLER_OPTIONS } from '../backends/aws';

/** One version of a source secret, as it will be recorded in the item's `Source`. */
export interface SourceVersion {
  /** e.g. `ssm:/prod/app/db/password#3`: unique per source version, the exactly-once key. */
  source: string;
  author?: string;
  createdAt?: string;
}

export interface SourceSecret {
  /** The secret in the source's own words (`ssm:/prod/app/db/password`), for the plan and errors. */
  source: string;
  /** Its name relative to the path, service or prefix, `/` still in it (plan.ts maps it). */
  relativeName: string;
  /**
   * Oldest first: the last one becomes the latest serial. A source with `readPending` may list
   * only the current version here when the run writes: the writer learns the rest from it.
   */
  versions: SourceVersion[];
}

export interface SourceValue {
  bytes: Buffer;
  binary: boolean;
}

export interface ImportSource {
  /**
   * false for files: they have no versions, so a value is skipped when it equals the name's latest
   * active payload instead of by its recorded `Source`.
   */
  readonly versioned: boolean;
  /** Every secret and version to consider; reads no value that needs decrypting. */
  list(): Promise<SourceSecret[]>;
  /** The values of the given versions of one secret, in the order given. Throws AppError. */
  read(secret: SourceSecret, versions: SourceVersion[]): Promise<SourceValue[]>;
  /**
   * Versioned sources whose one request gives the versions and their values (SSM's
   * GetParameterHistory): every version of `secret` whose `Source` is not in `recorded`, oldest
   * first, with its value. The writer then reads each secret once, where listing the versions and
   * reading the values apart would cost two requests. Throws AppError.
   */
  readPending?(secret: SourceSecret, recorded: ReadonlySet<string>): Promise<PendingValues>;
  close(): void;
}

/** What `readPending` gives: the versions still to write and their values, in the same order. */
export interface PendingValues {
  versions: SourceVersion[];
  values: SourceValue[];
}

/**
 * How many attempts a source read gets. SSM allows tens of reads per second per account, so a
 * large import is throttled as a matter of course: the SDK's adaptive mode backs off and then
 * paces its requests, and enough attempts let it ride that out rather than fail the secret.
 */
const SOURCE_MAX_ATTEMPTS = 10;

function sourceClientConfig(region?: string) {
  return {
    ...(region ? { region } : {}),
    maxAttempts: SOURCE_MAX_ATTEMPTS,
    retryMode: 'adaptive',
    requestHandler: new (
      require('@smithy/node-http-handler') as typeof import('@smithy/node-http-handler')
    ).NodeHttpHandler(HTTP_HANDLER_OPTIONS),
  };
}

/**
 * The SSM and Secrets Manager packages are required here, when an import builds its client, and
 * never by the daemon or the other commands: they cost start-up time and memory nobody else needs.
 * Standard SDK settings apply (AWS_REGION, credentials chain, AWS_ENDPOINT_URL_SSM, ...), whatever
 * the destination.
 */
export const ssmClient = (region?: string): SSMClient =>
  new (require('@aws-sdk/client-ssm') as typeof import('@aws-sdk/client-ssm')).SSMClient(sourceClientConfig(region));
export const secretsManagerClient = (region?: string): SecretsManagerClient =>
  new (
    require('@aws-sdk/client-secrets-manager') as typeof import('@aws-sdk/client-secrets-manager')
  ).SecretsManagerClient(sourceClientConfig(region));

/** A Date from the SDK as ISO-8601, for `SourceCreatedAt`. */
export const isoDate = (d: Date | undefined): string | undefined =>
  d instanceof Date && !Number.isNaN(d.getTime()) ? d.toISOString() : undefined;
