/** `ecs-secrets config build`: print a stored document; secret values decrypted only with --show-secrets. */
import { validateConfigPath, validateOutputFormat } from '../../../config/documents-service';
import { parseSerial, validateAppName } from '../../../core/names';
import { defineCommand } from '../../command';
import { withBackend } from '../../backend-scope';
import { pathOption } from './document-files';

export const configBuildCommand = defineCommand<{
  path: string;
  serial?: string;
  'show-secrets': boolean;
  format?: string;
  'strip-suffix': boolean;
}>({
  command: 'build',
  examples: [['$0 config build --path app.yaml --show-secrets', 'the latest version, decrypted']],
  describe: 'Print a document (secret values as stored, ENC[...], unless --show-secrets)',
  builder: (c) =>
    c
      .option('path', pathOption)
      .option('serial', { type: 'string', describe: 'A version (default: the latest active)' })
      .option('show-secrets', {
        type: 'boolean',
        default: false,
        describe: 'Decrypt the _ecs_secret values (needs KMS Decrypt for this path) and check the MAC',
      })
      .option('format', {
        type: 'string',
        choices: ['yaml', 'json', 'dotenv'],
        describe: 'Output format (default: as pushed)',
      })
      .option('strip-suffix', { type: 'boolean', default: false, describe: 'Drop _ecs_secret from key names' }),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const path = validateConfigPath(args.path);
    const serial = args.serial === undefined ? undefined : parseSerial(args.serial);
    const format = validateOutputFormat(args.format);
    const text = await withBackend(args, ctx, 'existing', (b) =>
      b.config.build(path, { serial, showSecrets: args['show-secrets'], format, stripSuffix: args['strip-suffix'] }),
    );
    ctx.write(text);
  },
});
