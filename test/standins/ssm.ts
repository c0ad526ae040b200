/**
 * An in-process SSM Parameter Store stand-in speaking the JSON 1.1 protocol to the real SSMClient
 * (AWS_ENDPOINT_URL_SSM): GetParametersByPath and GetParameterHistory with small pages, every
 * version kept, SecureString values returned only WithDecryption (else a placeholder, as SSM
 * returns ciphertext), and `LastModifiedUser` per version. Tests fill it with put().
 */
import { JsonStandIn, type JsonInput, ServiceError, epoch, page } from './json11';

const SSM_OPS = ['GetParametersByPath', 'GetParameterHistory'] as const;

interface Version {
  value: string;
  type: 'String' | 'StringList' | 'SecureString';
  version: number;
  date: Date;
  user: string;
}

export class SsmStandIn extends JsonStandIn {
  /** Items per page (SSM allows up to 10 by path, 50 of history): small so pagination is exercised. */
  pageSize = 3;
  private readonly params = new Map<string, Version[]>();

  constructor(port: number) {
    super(port, 'AmazonSSM', SSM_OPS, 'ThrottlingException');
  }

  /** A new version of a parameter (version numbers from 1, as SSM counts). */
  put(name: string, value: string, opts: { type?: Version['type']; user?: string; date?: Date } = {}): number {
    const versions = this.params.get(name) ?? [];
    const version = versions.length + 1;
    versions.push({
      value,
      type: opts.type ?? 'String',
      version,
      date: opts.date ?? new Date(Date.UTC(2024, 0, version)),
      user: opts.user ?? 'arn:aws:iam::123456789012:user/alice',
    });
    this.params.set(name, versions);
    return version;
  }

  protected dispatch(op: string, input: JsonInput): object {
    const decrypt = input.WithDecryption === true;
    const shown = (v: Version) => (v.type === 'SecureString' && !decrypt ? `AQICAHj-ciphertext-${v.version}` : v.value);
    if (op === 'GetParametersByPath') {
      const path = String(input.Path ?? '');
      if (!path.startsWith('/')) throw new ServiceError('ValidationException', 'Path must start with /');
      const prefix = path.endsWith('/') ? path : `${path}/`;
      const names = [...this.params.keys()]
        .filter((n) => n.startsWith(prefix) && (input.Recursive === true || !n.slice(prefix.length).includes('/')))
        .sort();
      const p = page(names, input, this.pageSize);
      return {
        Parameters: p.items.map((name) => {
          const v = (this.params.get(name) as Version[]).at(-1) as Version;
          return { Name: name, Type: v.type, Value: shown(v), Version: v.version, LastModifiedDate: epoch(v.date) };
        }),
        ...(p.NextToken ? { NextToken: p.NextToken } : {}),
      };
    }
    const name = String(input.Name ?? '');
    const versions = this.params.get(name);
    if (!versions) throw new ServiceError('ParameterNotFound', `Parameter ${name} not found.`);
    const p = page(versions, input, this.pageSize);
    return {
      Parameters: p.items.map((v) => ({
        Name: name,
        Type: v.type,
        Value: shown(v),
        Version: v.version,
        LastModifiedDate: epoch(v.date),
        LastModifiedUser: v.user,
      })),
      ...(p.NextToken ? { NextToken: p.NextToken } : {}),
    };
  }
}

export async function startSsm(opts: { port?: number } = {}): Promise<SsmStandIn> {
  const s = new SsmStandIn(opts.port ?? 0);
  await s.start();
  return s;
}
