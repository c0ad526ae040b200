/** `ecs-secrets fetch` (alias `get`): print one version of a secret, the latest active by default. */
import { AppError } from '../../core/errors';
import { validateReadLabel } from '../../core/labels';
import { parseSerial, validateAppName, validateSecretName } from '../../core/names';
import { defineCommand, nameOption } from '../command';
import { withService } from '../backend-scope';

export const fetchCommand = defineCommand<{ name: string; serial?: string; label?: string }>({
  command: ['fetch', 'get'],
  describe: 'Print a secret: the latest active version, or --serial N; prints {"name","serial","payload","active"}',
  builder: (c) =>
    c
      .option('name', nameOption)
      .option('serial', { type: 'string', describe: 'Version to fetch (default: latest active)' })
      .option('label', {
        type: 'string',
        describe: 'Fetch the version a label pins (e.g. prod), or previous: the newest active before the latest',
      }),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const name = validateSecretName(args.name);
    const serial = args.serial === undefined ? undefined : parseSerial(args.serial);
    if (serial !== undefined && args.label !== undefined)
      throw new AppError('usage', 'pass only one of --serial or --label');
    const label = args.label === undefined ? undefined : validateReadLabel(args.label);
    const record = await withService(args, ctx, 'existing', (s) =>
      label === undefined ? s.fetch(name, serial) : s.fetchLabel(name, label),
    );
    ctx.logger.debug({ name: record.name, serial: record.serial, active: record.active }, 'secret fetched');
    ctx.print(record);
  },
});
