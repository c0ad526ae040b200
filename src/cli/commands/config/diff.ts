/** `ecs-secrets config diff`: drift between the stored latest version and a file; key paths only, never values. */
import { validateConfigPath } from '../../../config/documents-service';
import { OUTCOME_EXIT_CODES } from '../../../core/errors';
import { validateAppName } from '../../../core/names';
import { defineCommand } from '../../command';
import { withBackend } from '../../backend-scope';
import { pathOption, readDocument, sourceOf } from './document-files';

export const configDiffCommand = defineCommand<{ path: string; file: string }>({
  command: 'diff',
  examples: [['$0 config diff --path app.yaml --file app.yaml', 'key paths that differ; exit 3 on drift']],
  describe:
    'Compare the stored latest version with FILE: prints {"added","removed","changed","notCompared"} (key paths), exit 3 on drift',
  builder: (c) =>
    c.option('path', pathOption).option('file', {
      type: 'string',
      demandOption: true,
      nargs: 1,
      describe: 'The document to compare (- reads standard input)',
    }),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const path = validateConfigPath(args.path);
    const text = await readDocument(sourceOf(args, args.file));
    const result = await withBackend(args, ctx, 'existing', (b) => b.config.diff(path, text));
    ctx.print(result);
    if (result.added.length + result.removed.length + result.changed.length > 0)
      ctx.setExitCode(OUTCOME_EXIT_CODES.drift);
  },
});
