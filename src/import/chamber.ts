/**
 * chamber keeps each service's secrets in SSM as `/<service>/<key>` (one level, no recursion),
 * with SSM's own version numbers: an SSM import of that path, named by key, with chamber's word in
 * every `Source` (`chamber:/<service>/<key>#<version>`).
 */
import { AppError } from '../core/errors';
import { SsmSource } from './ssm';

/** chamber's service names: letters, digits, `-`, `_`, `.` (its own rule for what it writes). */
const CHAMBER_SERVICE = /^[A-Za-z0-9._-]+$/;

export function chamberSource(opts: {
  service: string;
  history: boolean;
  region?: string;
  listHistory?: boolean;
}): SsmSource {
  if (!CHAMBER_SERVICE.test(opts.service))
    throw new AppError(
      'usage',
      `invalid --service ${JSON.stringify(opts.service)}: a chamber service is letters, digits, '.', '_' and '-'`,
    );
  return new SsmSource({
    path: `/${opts.service}/`,
    recursive: false,
    history: opts.history,
    label: 'chamber',
    region: opts.region,
    listHistory: opts.listHistory,
  });
}
