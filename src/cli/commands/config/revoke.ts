/** `ecs-secrets config revoke`: mark one version of a document revoked. */
import { validateConfigPath } from '../../../config/documents-service';
import { parseSerial, validateAppName } from '../../../core/names';
import { defineCommand } from '../../command';
import { withBackend } from '../../backend-scope';
import { pathOption } from './document-files';

export const configRevokeCommand = defineCommand<{ path: string; serial: string }>({
  command: 'revoke',
  examples: [['$0 config revoke --path app.yaml --serial 2', 'version 2 inactive']],
  describe: 'Revoke a version of a document; prints {"path","serial","active":false}',
  builder: (c) =>
    c
      .option('path', pathOption)
      .option('serial', { type: 'string', demandOption: true, describe: 'The version to revoke' }),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const path = validateConfigPath(args.path);
    const serial = parseSerial(args.serial);
    ctx.print(await withBackend(args, ctx, 'existing', (b) => b.config.revoke(path, serial)));
  },
});
