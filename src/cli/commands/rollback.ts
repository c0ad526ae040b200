/** `ecs-secrets rollback --name N [--to SERIAL]`: a new version with an earlier one's payload. */
import { parseSerial, validateAppName } from '../../core/names';
import { type SecretArgs, defineCommand, nameOption, secretName, withSecretArg } from '../command';
import { withService } from '../backend-scope';

export const rollbackCommand = defineCommand<SecretArgs & { to?: string }>({
  command: withSecretArg('rollback'),
  examples: [['$0 rollback db.password --to 2', "a new version with version 2's payload"]],
  describe:
    'Store a NEW version holding the payload of --to SERIAL (default: previous, the newest active before the latest); prints {"name","serial","restoredFrom"}',
  builder: (c) =>
    c
      .option('name', nameOption)
      .option('to', { type: 'string', describe: 'The serial to restore (default: previous)' }),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const name = secretName(args);
    const to = args.to === undefined ? undefined : parseSerial(args.to);
    ctx.print(await withService(args, ctx, 'existing', (s) => s.rollback(name, to)));
  },
});
