/** `ecs-secrets history`: the versions of one secret, never their payloads. */
import { validateAppName, validateSecretName } from '../../core/names';
import { defineCommand, nameOption } from '../command';
import { withService } from '../backend-scope';

export const historyCommand = defineCommand<{ name: string }>({
  command: 'history',
  describe:
    'List the versions of a secret, never payloads; prints [{"serial","active","createdAt"}] plus, when known, createdBy, revokedAt, revokedBy, source, sourceAuthor, sourceCreatedAt, restoredFrom, labels',
  builder: (c) => c.option('name', nameOption),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const name = validateSecretName(args.name);
    ctx.print(await withService(args, ctx, 'existing', (s) => s.history(name)));
  },
});
