/**
 * Planning, before anything is written: source names mapped to secret names, every name that
 * breaks the rule and every collision found and reported at once (exit 2), then for each secret
 * the versions still to write. `--dry-run` prints that plan and stops.
 */
import { AppError } from '../core/errors';
import { SECRET_NAME_RULE, validateSecretName } from '../core/names';
import { type SecretsService, payloadBytes } from '../core/secrets-service';
import type { ImportSource, SourceSecret, SourceVersion } from './import-source';

export interface PlannedSecret {
  secret: SourceSecret;
  name: string;
}

/** How many offenders one error line names before it says "and N more". */
const NAMED_IN_ERROR = 5;

/**
 * The secret name of a source name: relative to the path/service/prefix, `/` becoming `.`,
 * then `prefix` in front (`/prod/app/db/password` under `/prod/` → `app.db.password`).
 */
function mapName(relativeName: string, prefix: string): string {
  return `${prefix}${relativeName.replace(/^\/+/, '').replace(/\//g, '.')}`;
}

export function planNames(secrets: SourceSecret[], prefix: string): PlannedSecret[] {
  const planned = secrets.map((secret) => ({ secret, name: mapName(secret.relativeName, prefix) }));
  const invalid = planned.filter((p) => !SECRET_NAME_RULE.test(p.name) || p.name === '.' || p.name === '..');
  if (invalid.length > 0)
    throw new AppError(
      'usage',
      `nothing imported: ${invalid.length} source name(s) make invalid secret names (A-Z a-z 0-9 . _ -, 1 to 255): ${list(invalid.map((p) => `${p.secret.source} → ${JSON.stringify(p.name)}`))}`,
    );
  const bySecretName = new Map<string, PlannedSecret[]>();
  for (const p of planned) bySecretName.set(p.name, [...(bySecretName.get(p.name) ?? []), p]);
  const collisions = [...bySecretName.entries()].filter(([, ps]) => ps.length > 1);
  if (collisions.length > 0)
    throw new AppError(
      'usage',
      `nothing imported: ${collisions.length} secret name(s) would come from more than one source: ${list(
        collisions.map(([name, ps]) => `${name} ← ${ps.map((p) => p.secret.source).join(' and ')}`),
      )}`,
    );
  return planned;
}

function list(items: string[]): string {
  const shown = items.slice(0, NAMED_IN_ERROR).join('; ');
  return items.length > NAMED_IN_ERROR ? `${shown}; and ${items.length - NAMED_IN_ERROR} more` : shown;
}

/** What is left to write of one secret, and the name's highest serial when the check read it. */
export interface Pending {
  todo: SourceVersion[];
  latestSerial?: number;
}

/**
 * The names that have at least one version, read once before an import's secrets are looked at
 * (one strongly consistent scan of the keys): a name not among them has nothing recorded and no
 * serial yet, so its versions need no read of the name before they are written, each put being
 * conditional all the same. On a first import, the common case, that is one read instead of one
 * per secret.
 */
export async function storedNames(service: SecretsService): Promise<StoredNames> {
  try {
    return new Set((await service.store.listNames({ consistent: true })).map((n) => n.name));
  } catch (err) {
    // A malformed item must fail only its own name: without the scan every name is read, and the
    // read of the malformed one fails that secret alone.
    if (err instanceof AppError && err.kind === 'integrity') return { has: () => true };
    throw err;
  }
}

/** Which names may have versions (storedNames): a name it does not have has none. */
export type StoredNames = Pick<ReadonlySet<string>, 'has'>;

/**
 * The versions of one secret not yet in the store. Versioned sources: those whose `Source` is not
 * recorded on any version of the name (so a re-run, or a run after a kill, resumes). Files: the
 * value, unless the name's latest active payload is byte-equal to it (`value` reads it; for a
 * file that decrypts nothing in the source). `stored` (storedNames): a name not in it has no
 * version, and is not read.
 */
export async function pendingVersions(
  service: SecretsService,
  source: ImportSource,
  p: PlannedSecret,
  stored: StoredNames,
): Promise<Pending> {
  const name = validateSecretName(p.name);
  if (!stored.has(name)) return { todo: p.secret.versions, latestSerial: 0 };
  if (source.versioned) {
    const { recorded, latestSerial } = await service.store.sources(name);
    return { todo: p.secret.versions.filter((v) => !recorded.has(v.source)), latestSerial };
  }
  const latest = await service.store.latestActive(name);
  if (!latest) return { todo: p.secret.versions };
  const [value] = await source.read(p.secret, p.secret.versions);
  const current = payloadBytes(await service.open(latest));
  const same = current.equals(value.bytes);
  current.fill(0);
  value.bytes.fill(0);
  return { todo: same ? [] : p.secret.versions };
}
