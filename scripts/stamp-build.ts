/**
 * `npm run build` runs this between tsc and the bundle: it rewrites dist/src/core/build-info.js
 * with the commit (ECS_SECRETS_BUILD_COMMIT, else `git rev-parse`, else "unknown": an image build
 * has no .git, so pass it as a build argument) and the build time (SOURCE_DATE_EPOCH for
 * reproducible builds, else now), for `ecs-secrets version`.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..');

function commit(): string {
  if (process.env.ECS_SECRETS_BUILD_COMMIT) return process.env.ECS_SECRETS_BUILD_COMMIT;
  try {
    const sha = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], {
      cwd: root,
      encoding: 'utf8',
      stdio: 'pipe',
    });
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: root,
      encoding: 'utf8',
      stdio: 'pipe',
    });
    return `${sha.trim()}${dirty.trim() ? '-dirty' : ''}`;
  } catch {
    return 'unknown';
  }
}

const epoch = Number(process.env.SOURCE_DATE_EPOCH);
const date = (Number.isFinite(epoch) && epoch > 0 ? new Date(epoch * 1000) : new Date()).toISOString();
const file = path.join(root, 'dist', 'src', 'core', 'build-info.js');
fs.writeFileSync(
  file,
  `"use strict";\nObject.defineProperty(exports, "__esModule", { value: true });\nexports.BUILD_COMMIT = ${JSON.stringify(commit())};\nexports.BUILD_DATE = ${JSON.stringify(date)};\n`,
);
