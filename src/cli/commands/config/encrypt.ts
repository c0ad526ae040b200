/** `ecs-secrets config encrypt`: a local file to a SOPS file (for git), no table involved. */
import { encryptConfigText, validateConfigPath } from '../../../config/documents-service';
import { AppError } from '../../../core/errors';
import { defineCommand } from '../../command';
import { readDocument, sourceOf, withConfigKeys, writeDocument } from './document-files';

export const configEncryptCommand = defineCommand<{ file?: string; path?: string; out?: string; 'in-place': boolean }>({
  command: 'encrypt [file]',
  examples: [['$0 config encrypt app.yaml --out app.enc.yaml', 'a SOPS file, no table involved']],
  describe: 'Encrypt the _ecs_secret fields of a local file (SOPS format) to stdout, --out or --in-place',
  builder: (c) =>
    c
      .positional('file', { type: 'string', describe: 'The document (- reads standard input)' })
      .option('path', {
        type: 'string',
        describe: 'Bind the data key to this configuration path (needed to push it as it is)',
      })
      .option('out', { type: 'string', describe: 'Write here instead of stdout' })
      .option('in-place', { type: 'boolean', default: false, describe: 'Replace FILE' }),
  run: async (args, ctx) => {
    if (args.out !== undefined && args['in-place']) throw new AppError('usage', 'pass only one of --out or --in-place');
    if (args['in-place'] && (args.file ?? '-') === '-')
      throw new AppError('usage', '--in-place needs a FILE, not standard input');
    const path = args.path === undefined ? undefined : validateConfigPath(args.path);
    const text = await readDocument(sourceOf(args, args.file));
    const out = await withConfigKeys(args, (keys, app) => encryptConfigText(keys, app, text, path));
    const target = args['in-place'] ? (args.file as string) : args.out;
    if (target !== undefined) await writeDocument(target, out, 0o644);
    else ctx.write(out);
  },
});
