/** `ecs-secrets history`: the versions of one secret, never their payloads. */
import { validateAppName } from '../../core/names';
import { type SecretArgs, defineCommand, nameOption, secretName, withSecretArg } from '../command';
import { withService } from '../backend-scope';
import { OUTPUT_OPTION, type OutputArgs, formatTable, printResult } from '../output';

export const historyCommand = defineCommand<SecretArgs & OutputArgs>({
  command: withSecretArg('history'),
  describe:
    'List the versions of a secret, never payloads; prints [{"serial","active","createdAt"}] plus, when known, createdBy, revokedAt, revokedBy, source, sourceAuthor, sourceCreatedAt, restoredFrom, labels',
  builder: (c) =>
    c
      .option('name', nameOption)
      .option('output', OUTPUT_OPTION)
      .example('$0 history db.password --output table', 'one line per version'),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const name = secretName(args);
    printResult(args, ctx, await withService(args, ctx, 'existing', (s) => s.history(name)), (rows) =>
      formatTable(rows, [
        ['SERIAL', (r) => r.serial],
        ['ACTIVE', (r) => r.active],
        ['CREATED', (r) => r.createdAt],
        ['BY', (r) => r.createdBy],
        ['REVOKED', (r) => r.revokedAt],
        ['SOURCE', (r) => r.source],
        ['LABELS', (r) => r.labels],
      ]),
    );
  },
});
