/** `setup --local`: the embedded backend prepared in the data dir (idempotent). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openBackend } from '../backends/open-backend';
import { MASTER_KEY_FILE } from '../core/keys';
import { tableName } from '../core/names';

export interface LocalSetupResult {
  application: string;
  local: true;
  /** false: the data dir already held a master key (setup --local is idempotent). */
  created: boolean;
  dataDir: string;
  tableName: string;
  keyFile: string;
}

export async function setupLocal(app: string, dataDir: string): Promise<LocalSetupResult> {
  const dir = path.resolve(dataDir);
  const keyFile = path.join(dir, MASTER_KEY_FILE);
  const existed = fs.existsSync(keyFile);
  const backend = await openBackend({ app, local: true, dataDir: dir });
  try {
    await backend.service.check();
  } finally {
    await backend.close();
  }
  return { application: app, local: true, created: !existed, dataDir: dir, tableName: tableName(app), keyFile };
}
