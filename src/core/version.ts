/** The package version, read once from the nearest package.json named ecs-secrets above this module (src/core or dist/src/core). */
import * as fs from 'node:fs';
import * as path from 'node:path';

function readVersion(): string {
  for (let dir = path.join(__dirname, '..'); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
      if (pkg.name === 'ecs-secrets') return String(pkg.version);
    } catch {
      // try the next candidate
    }
  }
  return '0.0.0';
}

export const VERSION = readVersion();
/** The REST API version the daemon serves (/latest and /v1 are the same routes). */
export const API_VERSION = 'v1';
