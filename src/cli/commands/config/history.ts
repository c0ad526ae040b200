/** `ecs-secrets config history`: the versions of one document, never its content. */
import { validateConfigPath } from '../../../config/documents-service';
import { validateAppName } from '../../../core/names';
import { defineCommand } from '../../command';
import { withBackend } from '../../backend-scope';
import { pathOption } from './document-files';

export const configHistoryCommand = defineCommand<{ path: string }>({
  command: 'history',
  examples: [['$0 config history --path app.yaml', 'the versions of a document']],
  describe: 'List the versions of a document; prints [{"serial","active","createdAt"}]',
  builder: (c) => c.option('path', pathOption),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const path = validateConfigPath(args.path);
    ctx.print(await withBackend(args, ctx, 'existing', (b) => b.config.history(path)));
  },
});
