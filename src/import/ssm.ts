/**
 * SSM Parameter Store (`import ssm --path`) and chamber's layout on it (`import chamber --service`):
 * parameters listed by path, versions from GetParameterHistory, SecureString values decrypted only
 * when read for writing. A run that writes reads each parameter's history once, decrypted, when
 * it writes that parameter (readPending); only `--dry-run` lists the histories, undecrypted.
 */
import {
  GetParameterHistoryCommand,
  type GetParameterHistoryCommandOutput,
  GetParametersByPathCommand,
  type GetParametersByPathCommandOutput,
  type ParameterHistory,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { AppError, fromAwsError } from '../core/errors';
import {
  type ImportSource,
  type PendingValues,
  type SourceSecret,
  type SourceValue,
  type SourceVersion,
  isoDate,
  ssmClient,
} from './import-source';

export interface SsmOptions {
  path: string;
  recursive: boolean;
  history: boolean;
  /** `ssm`, or `chamber` (same layout, chamber's word in each `Source`). */
  label: 'ssm' | 'chamber';
  region?: string;
  /**
   * With `history`: list() reads every parameter's history (`--dry-run` shows the versions). A
   * run that writes leaves it false: the writer reads the history with the values (readPending),
   * one request per parameter instead of one at listing and one at reading.
   */
  listHistory?: boolean;
}

/** SSM paths: `/` or `/a/b/`, as GetParametersByPath takes them; the trailing `/` is added if missing. */
function normalizePath(p: string): string {
  if (!p.startsWith('/')) throw new AppError('usage', `invalid --path ${JSON.stringify(p)}: an SSM path starts with /`);
  return p.endsWith('/') ? p : `${p}/`;
}

/** The value SSM sent for one version (history is read with decryption): `why` names its absence. */
function sentValue(h: { Value?: string } | undefined, source: string, why: string): SourceValue {
  if (h?.Value === undefined) throw new AppError('not_found', `${source} ${why}`);
  return { bytes: Buffer.from(h.Value, 'utf8'), binary: false };
}

export class SsmSource implements ImportSource {
  readonly versioned = true;
  private readonly client: SSMClient;
  private readonly path: string;
  /** Each listed parameter's current version number: readPending's shortcut when all are imported. */
  private readonly current = new Map<string, number>();
  constructor(private readonly opts: SsmOptions) {
    this.path = normalizePath(opts.path);
    this.client = ssmClient(opts.region);
  }

  async list(): Promise<SourceSecret[]> {
    const found: SourceSecret[] = [];
    let token: string | undefined;
    do {
      let page: GetParametersByPathCommandOutput;
      try {
        page = await this.client.send(
          new GetParametersByPathCommand({
            Path: this.path,
            Recursive: this.opts.recursive,
            WithDecryption: false,
            NextToken: token,
          }),
        );
      } catch (err) {
        throw fromAwsError(err, `listing SSM parameters under ${this.path}`);
      }
      // One page's histories at a time: a few requests in flight, which SSM's rate allows.
      const secrets = (page.Parameters ?? []).map(async (p): Promise<SourceSecret> => {
        const name = p.Name ?? '';
        if (typeof p.Version === 'number') this.current.set(name, p.Version);
        const versions =
          this.opts.history && this.opts.listHistory
            ? (await this.history(name, false)).map((h) => this.version(name, h))
            : [this.version(name, { Version: p.Version, LastModifiedDate: p.LastModifiedDate })];
        return { source: `${this.opts.label}:${name}`, relativeName: name.slice(this.path.length), versions };
      });
      found.push(...(await Promise.all(secrets)));
      token = page.NextToken;
    } while (token);
    return found;
  }

  async read(secret: SourceSecret, versions: SourceVersion[]): Promise<SourceValue[]> {
    const name = this.parameterOf(secret);
    const byVersion = new Map((await this.history(name, true)).map((h) => [this.version(name, h).source, h]));
    return versions.map((v) => sentValue(byVersion.get(v.source), v.source, "is no longer in the parameter's history"));
  }

  async readPending(secret: SourceSecret, recorded: ReadonlySet<string>): Promise<PendingValues> {
    if (!this.opts.history) {
      const versions = secret.versions.filter((v) => !recorded.has(v.source));
      return { versions, values: versions.length > 0 ? await this.read(secret, versions) : [] };
    }
    const name = this.parameterOf(secret);
    // SSM numbers versions 1, 2, ... and adds new ones above the current: when 1 to the current
    // are all recorded, the history holds nothing new, and nothing is decrypted to learn that. (A
    // parameter whose oldest versions SSM has dropped, past 100, is read: its #1 is not recorded.)
    const current = this.current.get(name);
    if (current !== undefined) {
      let all = true;
      for (let v = 1; all && v <= current; v++) all = recorded.has(this.version(name, { Version: v }).source);
      if (all) return { versions: [], values: [] };
    }
    const pending = (await this.history(name, true)).filter((h) => !recorded.has(this.version(name, h).source));
    const versions = pending.map((h) => this.version(name, h));
    return { versions, values: pending.map((h, i) => sentValue(h, versions[i].source, 'came without its value')) };
  }

  /** The SSM parameter name a listed secret came from (its source without the label). */
  private parameterOf(secret: SourceSecret): string {
    return secret.source.slice(this.opts.label.length + 1);
  }

  close(): void {
    this.client.destroy();
  }

  private version(name: string, h: Pick<ParameterHistory, 'Version' | 'LastModifiedDate' | 'LastModifiedUser'>) {
    return {
      source: `${this.opts.label}:${name}#${h.Version}`,
      author: h.LastModifiedUser,
      createdAt: isoDate(h.LastModifiedDate),
    };
  }

  /** Every version of one parameter, oldest first (as SSM lists them). */
  private async history(name: string, decrypt: boolean): Promise<ParameterHistory[]> {
    const out: ParameterHistory[] = [];
    let token: string | undefined;
    do {
      let page: GetParameterHistoryCommandOutput;
      try {
        page = await this.client.send(
          new GetParameterHistoryCommand({ Name: name, WithDecryption: decrypt, NextToken: token }),
        );
      } catch (err) {
        if ((err as Error).name === 'ParameterNotFound')
          throw new AppError('not_found', `SSM parameter ${name} is gone`);
        throw fromAwsError(err, `reading the history of SSM parameter ${name}`);
      }
      out.push(...(page.Parameters ?? []));
      token = page.NextToken;
    } while (token);
    return out.sort((a, b) => (a.Version ?? 0) - (b.Version ?? 0));
  }
}
