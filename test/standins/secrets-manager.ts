/**
 * An in-process Secrets Manager stand-in speaking the JSON 1.1 protocol to the real
 * SecretsManagerClient (AWS_ENDPOINT_URL_SECRETS_MANAGER): ListSecrets (name prefix filter),
 * ListSecretVersionIds and GetSecretValue with small pages, version stages moved as
 * PutSecretValue moves them (AWSCURRENT → AWSPREVIOUS → no stage), AWSPENDING, SecretBinary.
 */
import { randomUUID } from 'node:crypto';
import { JsonStandIn, type JsonInput, ServiceError, epoch, page } from './json11';

const SM_OPS = ['ListSecrets', 'ListSecretVersionIds', 'GetSecretValue'] as const;
const ACCOUNT = '123456789012';

interface SmVersion {
  id: string;
  value: string | Buffer;
  stages: string[];
  created: Date;
}
interface SmSecret {
  name: string;
  arn: string;
  versions: SmVersion[];
}

export class SecretsManagerStandIn extends JsonStandIn {
  pageSize = 2;
  private readonly secrets = new Map<string, SmSecret>();

  constructor(
    port: number,
    readonly region: string,
  ) {
    super(port, 'secretsmanager', SM_OPS, 'ThrottlingException');
  }

  /** A new current version (PutSecretValue); `pending` adds an AWSPENDING one instead. Returns its id. */
  put(name: string, value: string | Buffer, opts: { pending?: boolean } = {}): string {
    let s = this.secrets.get(name);
    if (!s) {
      s = {
        name,
        arn: `arn:aws:secretsmanager:${this.region}:${ACCOUNT}:secret:${name}-${randomUUID().slice(0, 6)}`,
        versions: [],
      };
      this.secrets.set(name, s);
    }
    const id = randomUUID();
    const created = new Date(Date.UTC(2024, 1, s.versions.length + 1));
    if (opts.pending) {
      for (const v of s.versions) v.stages = v.stages.filter((x) => x !== 'AWSPENDING');
      s.versions.push({ id, value, stages: ['AWSPENDING'], created });
      return id;
    }
    for (const v of s.versions) {
      if (v.stages.includes('AWSPREVIOUS')) v.stages = v.stages.filter((x) => x !== 'AWSPREVIOUS');
      if (v.stages.includes('AWSCURRENT')) v.stages = [...v.stages.filter((x) => x !== 'AWSCURRENT'), 'AWSPREVIOUS'];
    }
    s.versions.push({ id, value, stages: ['AWSCURRENT'], created });
    return id;
  }

  arnOf(name: string): string {
    return (this.secrets.get(name) as SmSecret).arn;
  }

  private find(id: unknown): SmSecret {
    const s = [...this.secrets.values()].find((x) => x.name === id || x.arn === id);
    if (!s) throw new ServiceError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    return s;
  }

  protected dispatch(op: string, input: JsonInput): object {
    if (op === 'ListSecrets') {
      const filters = (input.Filters ?? []) as Array<{ Key: string; Values: string[] }>;
      const prefixes = filters.filter((f) => f.Key === 'name').flatMap((f) => f.Values);
      const all = [...this.secrets.values()]
        .filter((s) => prefixes.length === 0 || prefixes.some((p) => s.name.startsWith(p)))
        .sort((a, b) => (a.name < b.name ? -1 : 1));
      const p = page(all, input, this.pageSize);
      return {
        SecretList: p.items.map((s) => ({ ARN: s.arn, Name: s.name })),
        ...(p.NextToken ? { NextToken: p.NextToken } : {}),
      };
    }
    const s = this.find(input.SecretId);
    if (op === 'ListSecretVersionIds') {
      const p = page(s.versions, input, this.pageSize);
      return {
        ARN: s.arn,
        Name: s.name,
        Versions: p.items.map((v) => ({ VersionId: v.id, VersionStages: v.stages, CreatedDate: epoch(v.created) })),
        ...(p.NextToken ? { NextToken: p.NextToken } : {}),
      };
    }
    const v =
      typeof input.VersionId === 'string'
        ? s.versions.find((x) => x.id === input.VersionId)
        : s.versions.find((x) => x.stages.includes(String(input.VersionStage ?? 'AWSCURRENT')));
    if (!v)
      throw new ServiceError('ResourceNotFoundException', "Secrets Manager can't find the specified secret value.");
    return {
      ARN: s.arn,
      Name: s.name,
      VersionId: v.id,
      VersionStages: v.stages,
      CreatedDate: epoch(v.created),
      ...(Buffer.isBuffer(v.value) ? { SecretBinary: v.value.toString('base64') } : { SecretString: v.value }),
    };
  }
}

export async function startSecretsManager(
  opts: { port?: number; region?: string } = {},
): Promise<SecretsManagerStandIn> {
  const s = new SecretsManagerStandIn(opts.port ?? 0, opts.region ?? 'us-east-1');
  await s.start();
  return s;
}
