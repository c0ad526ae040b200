/** `ecs-secrets revoke`: mark one version of a secret inactive (a conditional update: never a phantom item). */
import { parseSerial, validateAppName } from '../../core/names';
import { type SecretArgs, defineCommand, nameOption, secretName, withSecretArg } from '../command';
import { withService } from '../backend-scope';

export const revokeCommand = defineCommand<SecretArgs & { serial: string }>({
  command: withSecretArg('revoke'),
  examples: [['$0 revoke db.password --serial 3', 'version 3 inactive, for good']],
  describe: 'Revoke one version of a secret; prints {"name","serial","active":false}',
  builder: (c) =>
    c
      .option('name', nameOption)
      .option('serial', { type: 'string', describe: 'Version to revoke', demandOption: true }),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const name = secretName(args);
    const serial = parseSerial(args.serial);
    ctx.print(await withService(args, ctx, 'existing', (s) => s.revoke(name, serial)));
  },
});
