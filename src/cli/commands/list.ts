/** `ecs-secrets list`: every secret name with its latest serial. */
import { defineCommand } from '../command';
import { withService } from '../backend-scope';
import { OUTPUT_OPTION, type OutputArgs, formatTable, printResult } from '../output';

export const listCommand = defineCommand<OutputArgs>({
  command: 'list',
  describe: 'List secret names with their latest serial; prints [{"name","latestSerial"}]',
  builder: (c) => c.option('output', OUTPUT_OPTION).example('$0 list --output table', 'NAME and LATEST columns'),
  run: async (args, ctx) =>
    printResult(args, ctx, await withService(args, ctx, 'existing', (s) => s.list()), (rows) =>
      formatTable(rows, [
        ['NAME', (r) => r.name],
        ['LATEST', (r) => r.latestSerial],
      ]),
    ),
});
