/** `ecs-secrets config list`: the configuration paths with their latest serial. */
import { validateAppName } from '../../../core/names';
import { defineCommand } from '../../command';
import { withBackend } from '../../backend-scope';

export const configListCommand = defineCommand<{ prefix?: string }>({
  command: 'list',
  examples: [['$0 config list --prefix prod/', 'paths and latest serials']],
  describe: 'List configuration paths; prints [{"path","latestSerial"}]',
  builder: (c) => c.option('prefix', { type: 'string', describe: 'Only paths starting with this (e.g. team-a/)' }),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    ctx.print(await withBackend(args, ctx, 'existing', (b) => b.config.list(args.prefix ?? '')));
  },
});
