/**
 * Bench figure of `import` (issue 18): versions per second importing N SSM parameters with 3
 * versions each (`import ssm --history`) from the SSM stand-in, without throttling, into a fresh
 * `--local` store. Wall time of the whole CLI run (start-up, listing, history, writes), so the
 * figure is what an operator waits for. Self-contained: it fills the stand-in under its own path once.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { StandIns } from '../test/standins';
import type { Figures } from './figures';
import { runCli } from './procs';

export const IMPORT_VERSIONS_PER_PARAMETER = 3;
const SSM_PATH = '/bench-import/';
let seededFor: number | undefined;

function seed(s: StandIns, parameters: number): void {
  for (let i = 0; i < parameters; i++)
    for (let v = 0; v < IMPORT_VERSIONS_PER_PARAMETER; v++)
      s.ssm.put(`${SSM_PATH}app/param-${String(i).padStart(4, '0')}`, randomBytes(24).toString('base64'), {
        type: 'SecureString',
      });
  seededFor = parameters;
}

/** One measurement, into a new data dir under `tmp`. */
export async function measureImport(
  s: StandIns,
  tmp: string,
  app: string,
  parameters: number,
  nodeArgs: string[] = [],
): Promise<Figures> {
  if (seededFor === undefined) seed(s, parameters);
  const dataDir = fs.mkdtempSync(path.join(tmp, 'import-'));
  try {
    const r = await runCli(
      [
        '--local',
        '--data-dir',
        dataDir,
        '--application-name',
        app,
        'import',
        'ssm',
        '--path',
        SSM_PATH,
        '--recursive',
        '--history',
      ],
      s.env,
      nodeArgs,
    );
    if (r.code !== 0) throw new Error(`import ssm failed (${r.code}): ${r.stderr.slice(0, 300)}`);
    const summary = JSON.parse(r.stdout) as { imported: Array<{ serials: number[] }>; failed: unknown[] };
    const versions = summary.imported.reduce((n, i) => n + i.serials.length, 0);
    const expected = parameters * IMPORT_VERSIONS_PER_PARAMETER;
    if (versions !== expected || summary.failed.length > 0)
      throw new Error(`import ssm wrote ${versions} versions of ${expected}, ${summary.failed.length} failed`);
    return { 'import.versionsPerSecond': versions / (r.ms / 1000) };
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
