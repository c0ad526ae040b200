/** `ecs-secrets fetch` (alias `get`): print one version of a secret, the latest active by default. */
import { AppError } from '../../core/errors';
import { validateReadLabel } from '../../core/labels';
import { parseSerial, validateAppName } from '../../core/names';
import { type SecretArgs, defineCommand, nameOption, secretName, withSecretArg } from '../command';
import { withService } from '../backend-scope';
import { payloadBytes } from '../../core/secrets-service';

export const fetchCommand = defineCommand<SecretArgs & { serial?: string; label?: string; raw: boolean }>({
  command: [withSecretArg('fetch'), 'get'],
  examples: [
    ['$0 fetch db.password', 'the latest active version, as JSON'],
    ['$0 fetch db.password --raw > pw.txt', 'the value alone, byte for byte'],
  ],
  describe: 'Print a secret: the latest active version, or --serial N; prints {"name","serial","payload","active"}',
  builder: (c) =>
    c
      .option('name', nameOption)
      .option('serial', { type: 'string', describe: 'Version to fetch (default: latest active)' })
      .option('label', {
        type: 'string',
        describe: 'Fetch the version a label pins (e.g. prod), or previous: the newest active before the latest',
      })
      .option('raw', {
        type: 'boolean',
        default: false,
        describe: 'Print the payload alone, byte for byte (binary too), no newline added; a revoked version exits 1',
      }),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const name = secretName(args);
    const serial = args.serial === undefined ? undefined : parseSerial(args.serial);
    if (serial !== undefined && args.label !== undefined)
      throw new AppError('usage', 'pass only one of --serial or --label');
    const label = args.label === undefined ? undefined : validateReadLabel(args.label);
    const record = await withService(args, ctx, 'existing', (s) =>
      label === undefined ? s.fetch(name, serial) : s.fetchLabel(name, label),
    );
    ctx.logger.debug({ secret: record.name, serial: record.serial, active: record.active }, 'secret fetched');
    const revoked = `serial ${record.serial} of ${record.name} is revoked: it has no payload`;
    if (args.raw) {
      // A revoked version's empty payload must not pass for an empty password.
      if (!record.active) throw new AppError('not_found', revoked);
      ctx.write(payloadBytes(record));
      return;
    }
    // The JSON keeps the original's shape and exit code (scripts test "active"); people get told.
    if (!record.active) ctx.logger.warn(revoked);
    ctx.print(record);
  },
});
