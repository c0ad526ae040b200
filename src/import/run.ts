/**
 * The writer: each planned secret, a few at a time, read whole from its source and then written
 * version by version, oldest first, each with its `Source` in the same conditional put. A secret
 * whose versions cannot all be read, verified or decrypted writes nothing and is reported under
 * `failed`; the others go on. Values never leave this module but into the store.
 */
import { mapLimited } from '../core/concurrency';
import type { SecretsService } from '../core/secrets-service';
import { AppError } from '../core/errors';
import { validateSecretName } from '../core/names';
import { type Pending, type PlannedSecret, type StoredNames, pendingVersions, storedNames } from './plan';
import type { Progress } from './progress';
import type { ImportSource, SourceValue } from './import-source';

/**
 * Secrets imported at once. A few: enough to hide the source's and the store's latency, few
 * enough to stay under SSM's and KMS's request rates without leaning on throttling.
 */
export const IMPORT_CONCURRENCY = 4;

export interface ImportSummary {
  imported: Array<{ source: string; name: string; serials: number[] }>;
  skipped: Array<{ source: string; name: string }>;
  failed: Array<{ source: string; name: string; error: string; message: string }>;
}

export interface DryRunPlan {
  plan: Array<{ source: string; name: string; versions: string[] }>;
  skipped: Array<{ source: string; name: string }>;
}

export async function dryRun(
  service: SecretsService,
  source: ImportSource,
  planned: PlannedSecret[],
): Promise<DryRunPlan> {
  const out: DryRunPlan = { plan: [], skipped: [] };
  const stored = await storedNames(service);
  const pending = await mapLimited(planned, IMPORT_CONCURRENCY, (p) => pendingVersions(service, source, p, stored));
  planned.forEach((p, i) => {
    const entry = { source: p.secret.source, name: p.name };
    const { todo } = pending[i];
    if (todo.length === 0) out.skipped.push(entry);
    else out.plan.push({ ...entry, versions: todo.map((v) => v.source) });
  });
  return out;
}

/** The versions of one secret still to write, with their values, and the name's highest serial. */
async function readPending(
  service: SecretsService,
  source: ImportSource,
  p: PlannedSecret,
  stored: StoredNames,
): Promise<Pending & { values: SourceValue[] }> {
  if (source.versioned && source.readPending) {
    const name = validateSecretName(p.name);
    const { recorded, latestSerial } = stored.has(name)
      ? await service.store.sources(name)
      : { recorded: new Set<string>(), latestSerial: 0 };
    const { versions, values } = await source.readPending(p.secret, recorded);
    return { todo: versions, values, latestSerial };
  }
  const pending = await pendingVersions(service, source, p, stored);
  return { ...pending, values: pending.todo.length > 0 ? await source.read(p.secret, pending.todo) : [] };
}

export async function runImport(
  service: SecretsService,
  source: ImportSource,
  planned: PlannedSecret[],
  progress: Progress,
): Promise<ImportSummary> {
  const summary: ImportSummary = { imported: [], skipped: [], failed: [] };
  const stored = await storedNames(service);
  const outcomes = await mapLimited(planned, IMPORT_CONCURRENCY, async (p) => {
    const entry = { source: p.secret.source, name: p.name };
    try {
      // Read every version before writing one: a secret is imported whole or not at all.
      const { todo, values, latestSerial } = await readPending(service, source, p, stored);
      if (todo.length === 0) {
        progress.secretDone(entry, 'skipped');
        return { kind: 'skipped' as const, entry };
      }
      const serials: number[] = [];
      // Each version goes under the serial after the last one written, without re-reading the
      // end of the name first (a concurrent writer only costs the conditional put's retry).
      let next = latestSerial === undefined ? undefined : latestSerial + 1;
      try {
        for (const [i, v] of todo.entries()) {
          const created = await service.create(p.name, values[i].bytes, {
            binary: values[i].binary,
            origin: { source: v.source, sourceAuthor: v.author, sourceCreatedAt: v.createdAt },
            nextSerial: next,
            noteChange: false,
          });
          serials.push(created.serial);
          next = created.serial + 1;
        }
      } finally {
        for (const v of values) v.bytes.fill(0);
        // One change-record entry for the versions written (all, or those before a failure):
        // watching daemons read the latest. noteChange never throws.
        if (serials.length > 0) await service.store.noteChange(p.name, 'version');
      }
      progress.secretDone(entry, `${serials.length} version(s) written`);
      return { kind: 'imported' as const, entry: { ...entry, serials } };
    } catch (err) {
      const e =
        err instanceof AppError ? err : new AppError('internal', `unexpected error: ${(err as Error)?.message}`);
      progress.secretDone(entry, `failed: ${e.kind}`);
      return { kind: 'failed' as const, entry: { ...entry, error: e.kind, message: e.message } };
    }
  });
  for (const o of outcomes) {
    if (o.kind === 'imported') summary.imported.push(o.entry);
    else if (o.kind === 'skipped') summary.skipped.push(o.entry);
    else summary.failed.push(o.entry);
  }
  return summary;
}
