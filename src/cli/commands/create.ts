/** `ecs-secrets create` (alias `store`): store a new version of a secret. */
import { validateAppName, validateSecretName } from '../../core/names';
import { defineCommand, nameOption, readPayload, withService } from '../context';

export const createCommand = defineCommand<{ name: string; payload?: string; 'payload-location'?: string }>({
  command: ['create', 'store'],
  describe: 'Store a new version of a secret; prints {"name","serial"}',
  builder: (c) =>
    c.option('name', nameOption)
      .option('payload', { type: 'string', describe: 'The secret value (prefer --payload-location: argv is visible to ps)' })
      .option('payload-location', { type: 'string', nargs: 1, describe: 'File holding the secret value; - reads standard input' }),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const name = validateSecretName(args.name);
    const payload = await readPayload(args);
    const created = await withService(args, ctx, (s) => s.create(name, payload));
    ctx.logger.debug({ name: created.name, serial: created.serial }, 'secret created');
    ctx.print(created);
  },
});
