/**
 * AWS Secrets Manager (`import secretsmanager --name-prefix P | --name NAME...`). Versions by
 * stage: AWSPREVIOUS then AWSCURRENT with --history, so the current value becomes the latest
 * serial; never AWSPENDING (a rotation not finished, not in use yet) nor versions without a stage.
 */
import {
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  type ListSecretVersionIdsCommandOutput,
  ListSecretsCommand,
  type ListSecretsCommandOutput,
  type SecretVersionsListEntry,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { AppError, fromAwsError } from '../core/errors';
import {
  type ImportSource,
  type SourceSecret,
  type SourceValue,
  type SourceVersion,
  isoDate,
  secretsManagerClient,
} from './import-source';

export interface SecretsManagerOptions {
  /** Exactly one of these two. */
  namePrefix?: string;
  names?: string[];
  history: boolean;
  region?: string;
}

export class SecretsManagerSource implements ImportSource {
  readonly versioned = true;
  private readonly client: SecretsManagerClient;
  constructor(private readonly opts: SecretsManagerOptions) {
    if ((opts.namePrefix === undefined) === (opts.names === undefined || opts.names.length === 0))
      throw new AppError('usage', 'import secretsmanager needs one of --name-prefix P or --name NAME (repeatable)');
    this.client = secretsManagerClient(opts.region);
  }

  async list(): Promise<SourceSecret[]> {
    const found: SourceSecret[] = [];
    if (this.opts.names) {
      // The whole name maps: `prod/app/stripe` becomes `prod.app.stripe`.
      for (const name of this.opts.names) found.push(await this.secret(name, name));
      return found;
    }
    const prefix = this.opts.namePrefix as string;
    let token: string | undefined;
    do {
      let page: ListSecretsCommandOutput;
      try {
        page = await this.client.send(
          new ListSecretsCommand({ Filters: [{ Key: 'name', Values: [prefix] }], NextToken: token }),
        );
      } catch (err) {
        throw fromAwsError(err, `listing Secrets Manager secrets named ${prefix}*`);
      }
      // The name filter also matches words inside a name: keep the real prefixes only.
      for (const s of page.SecretList ?? [])
        if (s.Name?.startsWith(prefix)) found.push(await this.secret(s.ARN ?? s.Name, s.Name.slice(prefix.length)));
      token = page.NextToken;
    } while (token);
    return found;
  }

  async read(secret: SourceSecret, versions: SourceVersion[]): Promise<SourceValue[]> {
    const out: SourceValue[] = [];
    for (const v of versions) {
      const [arn, versionId] = splitSource(v.source);
      try {
        const got = await this.client.send(new GetSecretValueCommand({ SecretId: arn, VersionId: versionId }));
        if (got.SecretBinary !== undefined) out.push({ bytes: Buffer.from(got.SecretBinary), binary: true });
        else if (got.SecretString !== undefined)
          out.push({ bytes: Buffer.from(got.SecretString, 'utf8'), binary: false });
        else throw new AppError('integrity', `${v.source} has neither SecretString nor SecretBinary`);
      } catch (err) {
        throw fromAwsError(err, `reading ${secret.source}`);
      }
    }
    return out;
  }

  close(): void {
    this.client.destroy();
  }

  /** One secret's versions to import, by stage; `relativeName` keeps its `/`s for the planner. */
  private async secret(id: string, relativeName: string): Promise<SourceSecret> {
    const entries: SecretVersionsListEntry[] = [];
    let arn = id;
    let token: string | undefined;
    do {
      let page: ListSecretVersionIdsCommandOutput;
      try {
        page = await this.client.send(new ListSecretVersionIdsCommand({ SecretId: id, NextToken: token }));
      } catch (err) {
        if ((err as Error).name === 'ResourceNotFoundException')
          throw new AppError('not_found', `no Secrets Manager secret ${id} (check the name and region)`);
        throw fromAwsError(err, `listing the versions of Secrets Manager secret ${id}`);
      }
      arn = page.ARN ?? arn;
      entries.push(...(page.Versions ?? []));
      token = page.NextToken;
    } while (token);
    const stages = this.opts.history ? ['AWSPREVIOUS', 'AWSCURRENT'] : ['AWSCURRENT'];
    const versions = stages.flatMap((stage) =>
      entries
        .filter((e) => e.VersionStages?.includes(stage))
        .map((e) => ({ source: `secretsmanager:${arn}#${e.VersionId}`, createdAt: isoDate(e.CreatedDate) })),
    );
    return { source: `secretsmanager:${arn}`, relativeName, versions };
  }
}

/** `secretsmanager:<arn>#<VersionId>` back into its parts (an ARN has no `#`). */
function splitSource(source: string): [string, string] {
  const rest = source.slice('secretsmanager:'.length);
  const hash = rest.lastIndexOf('#');
  return [rest.slice(0, hash), rest.slice(hash + 1)];
}
