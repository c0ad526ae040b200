/** `ecs-secrets fetch` (alias `get`): print one version of a secret, the latest active by default. */
import { parseSerial, validateAppName, validateSecretName } from '../../core/names';
import { defineCommand, nameOption, withService } from '../context';

export const fetchCommand = defineCommand<{ name: string; serial?: string }>({
  command: ['fetch', 'get'],
  describe: 'Print a secret: the latest active version, or --serial N; prints {"name","serial","payload","active"}',
  builder: (c) =>
    c
      .option('name', nameOption)
      .option('serial', { type: 'string', describe: 'Version to fetch (default: latest active)' }),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const name = validateSecretName(args.name);
    const serial = args.serial === undefined ? undefined : parseSerial(args.serial);
    const record = await withService(args, ctx, (s) => s.fetch(name, serial));
    ctx.logger.debug({ name: record.name, serial: record.serial, active: record.active }, 'secret fetched');
    ctx.print(record);
  },
});
