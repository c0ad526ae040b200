/** `ecs-secrets create` (alias `store`): store a new version of a secret. */
import { AppError } from '../../core/errors';
import { generateValue } from '../../core/generate';
import { validateAppName } from '../../core/names';
import { GENERATE_OPTIONS, type SecretArgs, defineCommand, nameOption, secretName, withSecretArg } from '../command';
import { readBinaryPayload, readPayload } from '../payload-input';
import { withService } from '../backend-scope';

interface CreateArgs extends SecretArgs {
  payload?: string;
  'payload-location'?: string;
  binary: boolean;
  'payload-encoding'?: string;
  generate: boolean;
  length?: string;
  charset?: string;
}

export const createCommand = defineCommand<CreateArgs>({
  command: [withSecretArg('create'), 'store'],
  examples: [
    ['$0 create db.password --payload-location ./password.txt', 'a new version from a file'],
    ['$0 create api.key --generate --length 40', 'a random value, never printed'],
  ],
  describe: 'Store a new version of a secret; prints {"name","serial"}',
  builder: (c) =>
    c
      .option('name', nameOption)
      .option('payload', {
        type: 'string',
        describe: 'The secret value (prefer --payload-location: argv is visible to ps)',
      })
      .option('payload-location', {
        type: 'string',
        nargs: 1,
        describe: 'File holding the secret value; - reads standard input',
      })
      .option('binary', {
        type: 'boolean',
        default: false,
        describe: 'Store the bytes of --payload-location as they are (a binary secret, shown as base64)',
      })
      .option('payload-encoding', {
        type: 'string',
        describe: 'base64: the payload is base64 text, decoded and stored as a binary secret',
      })
      .options(GENERATE_OPTIONS),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const name = secretName(args);
    const encoding = args['payload-encoding'];
    if (encoding !== undefined && encoding !== 'base64')
      throw new AppError('usage', `unknown --payload-encoding ${JSON.stringify(encoding)}: the one encoding is base64`);
    const binary = args.binary || encoding === 'base64';
    if (args.generate && (binary || args.payload !== undefined || args['payload-location'] !== undefined))
      throw new AppError('usage', 'pass --generate or a payload (--payload, --payload-location, --binary), not both');
    if (!args.generate && (args.length !== undefined || args.charset !== undefined))
      throw new AppError('usage', '--length and --charset go with --generate');
    // A generated value is never printed: fetch it.
    const payload = args.generate
      ? generateValue(args)
      : binary
        ? await readBinaryPayload(args)
        : await readPayload(args);
    const created = await withService(args, ctx, 'create', (s) => s.create(name, payload, { binary }));
    ctx.logger.debug({ secret: created.name, serial: created.serial }, 'secret created');
    ctx.print(created);
  },
});
