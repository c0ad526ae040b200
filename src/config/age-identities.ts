/**
 * The age identities a decrypt may use, as sops finds them: SOPS_AGE_KEY (the key text itself),
 * SOPS_AGE_KEY_FILE (a key file), and the data dir's own age.key; every identity in each, since a
 * key file holds one per line. Reading never creates a key: a missing data dir file is no
 * identities, not a new one (that would be a key nobody encrypted for).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AppError } from '../core/errors';
import { checkPrivateFile } from '../core/private-files';

/** The data dir's age identity file (--local), created by the key source on first use. */
export const AGE_IDENTITY_FILE = 'age.key';

const IDENTITY_LINE = /^AGE-SECRET-KEY-[A-Z0-9-]+$/;

/** Every `AGE-SECRET-KEY-...` line of a key file's text (comments and blank lines skipped). */
export function identitiesIn(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => IDENTITY_LINE.test(l));
}

export function ageIdentities(dataDir: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  if (env.SOPS_AGE_KEY) out.push(...identitiesIn(env.SOPS_AGE_KEY));
  const keyFile = env.SOPS_AGE_KEY_FILE;
  if (keyFile) {
    try {
      out.push(...identitiesIn(fs.readFileSync(keyFile, 'utf8')));
    } catch (err) {
      throw new AppError(
        'usage',
        `cannot read SOPS_AGE_KEY_FILE ${JSON.stringify(keyFile)}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`,
      );
    }
  }
  const own = path.join(dataDir, AGE_IDENTITY_FILE);
  if (fs.existsSync(own)) {
    checkPrivateFile(own, 'age identity');
    out.push(...identitiesIn(fs.readFileSync(own, 'utf8')));
  }
  return [...new Set(out)];
}
