/** `ecs-secrets list`: every secret name with its latest serial. */
import { defineCommand } from '../command';
import { withService } from '../backend-scope';

export const listCommand = defineCommand({
  command: 'list',
  describe: 'List secret names with their latest serial; prints [{"name","latestSerial"}]',
  builder: (c) => c,
  run: async (args, ctx) => ctx.print(await withService(args, ctx, 'existing', (s) => s.list())),
});
