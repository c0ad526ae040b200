/** `ecs-secrets config push`: store a new version of a configuration document, its `_ecs_secret` fields encrypted. */
import { validateConfigPath } from '../../../config/documents-service';
import { validateAppName } from '../../../core/names';
import { defineCommand } from '../../command';
import { withBackend } from '../../backend-scope';
import { pathOption, readDocument, sourceOf } from './document-files';

export const configPushCommand = defineCommand<{ path: string; file?: string; source?: string }>({
  command: 'push [source]',
  examples: [['$0 config push --path app.yaml --file app.yaml', 'a new version, _ecs_secret fields encrypted']],
  describe: 'Store a new version (YAML or JSON; - reads standard input); prints {"path","serial"}',
  builder: (c) =>
    c
      .option('path', pathOption)
      .option('file', { type: 'string', nargs: 1, describe: 'The document; - reads standard input' })
      .positional('source', { type: 'string', describe: '- to read standard input' }),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const path = validateConfigPath(args.path);
    const text = await readDocument(sourceOf(args, args.file, args.source));
    ctx.print(await withBackend(args, ctx, 'create', (b) => b.config.push(path, text)));
  },
});
