/**
 * Files written by other implementations (real sops), kept outside the repository at
 * `../shared/peers/` from the repo root (ECS_SECRETS_PEERS overrides). Suites using them skip
 * when the folder is absent, so a clone without it still passes; the files are never copied in.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const PEERS_DIR = process.env.ECS_SECRETS_PEERS ?? path.resolve(__dirname, '../../../shared/peers');
export const SOPS_REAL = path.join(PEERS_DIR, 'sops-real');
export const hasSopsReal = fs.existsSync(path.join(SOPS_REAL, 'manifest.json'));

export interface SopsRealFile {
  file: string;
  format: 'yaml' | 'json';
  key: string;
  sops: string;
  rule: string;
  expected: string | null;
  expectedComments?: string[];
  pq?: boolean;
}

export function sopsRealManifest(): SopsRealFile[] {
  return hasSopsReal ? JSON.parse(fs.readFileSync(path.join(SOPS_REAL, 'manifest.json'), 'utf8')).files : [];
}

export const sopsReal = (...parts: string[]): string => path.join(SOPS_REAL, ...parts);
