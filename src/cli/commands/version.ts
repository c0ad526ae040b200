/** `ecs-secrets version`: what is running, for a bug report (`--version` prints the number alone, for scripts). */
import { BUILD_COMMIT, BUILD_DATE } from '../../core/build-info';
import { VERSION } from '../../core/version';
import { defineCommand } from '../command';

export const versionCommand = defineCommand({
  command: 'version',
  describe:
    'Print the version, the commit and date of the build, and the Node version; prints {"version","commit","built","node"}',
  builder: (c) => c,
  examples: [['$0 version', '{"version":"0.1.0","commit":"0123abcd4567","built":"2026-…","node":"v20.19.0"}']],
  run: async (_args, ctx) =>
    ctx.print({ version: VERSION, commit: BUILD_COMMIT, built: BUILD_DATE, node: process.version }),
});
