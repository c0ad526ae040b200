/** `ecs-secrets export`: the selected secrets as json, dotenv, shell, properties or yaml on stdout. */
import { FORMATS, parseFormat, renderVariables } from '../../delivery/formats';
import { toEnvironment } from '../../delivery/selection';
import { defineCommand } from '../command';
import { type DeliveryArgs, deliveryOptions, withSelectionReader } from '../delivery-options';

export const exportCommand = defineCommand<DeliveryArgs & { format: string }>({
  command: 'export',
  describe: 'Print the selected secrets (latest versions) as json {"VAR":"payload"}, dotenv, shell, properties or yaml',
  builder: (c) =>
    deliveryOptions(c)
      .option('format', {
        type: 'string',
        default: 'json',
        describe: `Output format: ${FORMATS.join(', ')} (dotenv and shell load with: set -a; . FILE)`,
      })
      .example('$0 export --prefix team-a. --format dotenv > app.env', 'team-a.db-password → DB_PASSWORD=...')
      .example('eval "$($0 export --name DB_URL=shop.db-url --format shell)"', 'into the current shell')
      .example('$0 export --daemon-url http://localhost:8080 --prefix shop.', 'through the sidecar'),
  run: async (args, ctx) => {
    const format = parseFormat(args.format);
    const text = await withSelectionReader(args, ctx, async (read) =>
      renderVariables(toEnvironment(await read()), format),
    );
    ctx.write(text);
  },
});
