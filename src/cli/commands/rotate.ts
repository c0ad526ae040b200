/** `ecs-secrets rotate --name N (--generate [...] | --payload-location FILE) [--move-label L] -- HOOK [ARGS]`. */
import { AppError } from '../../core/errors';
import { generateValue, validateGenerateOptions } from '../../core/generate';
import { validateLabel } from '../../core/labels';
import { validateAppName } from '../../core/names';
import { rotate } from '../../lifecycle/rotate';
import { GENERATE_OPTIONS, defineCommand, nameOption, secretName } from '../command';
import { readPayload } from '../payload-input';
import { withService } from '../backend-scope';

interface RotateArgs {
  name: string;
  generate: boolean;
  length?: string;
  charset?: string;
  'payload-location'?: string;
  'move-label'?: string | string[];
  '--'?: Array<string | number>;
  _: Array<string | number>;
}

export const rotateCommand = defineCommand<RotateArgs>({
  command: 'rotate',
  describe:
    'Make a new value, give it to HOOK on stdin to set in the target system, store it only if HOOK exits 0; prints {"name","serial"}',
  builder: (c) =>
    c
      .usage(
        'Usage: $0 rotate --name NAME (--generate [--length N] [--charset C] | --payload-location FILE) [--move-label L]... -- HOOK [ARG...]',
      )
      .option('name', {
        ...nameOption,
        describe: 'Name of the secret (A-Z a-z 0-9 . _ -, dots for namespaces)',
        demandOption: true,
      })
      .options(GENERATE_OPTIONS)
      .option('payload-location', {
        type: 'string',
        nargs: 1,
        describe: 'File holding the new value; - reads standard input',
      })
      .option('move-label', {
        type: 'string',
        array: true,
        describe: 'Move this label to the new version once it is stored (repeatable)',
      })
      .example(
        '$0 rotate --name shop.db-password --generate --move-label prod -- ./set-db-password.sh',
        'the hook reads {"name","serial","payload","previousPayload"} from stdin',
      ),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const name = secretName(args);
    const hook = (args['--'] ?? args._.slice(1)).map(String);
    if (hook.length === 0 || hook[0] === '')
      throw new AppError(
        'usage',
        'name the hook to run after --, e.g. ecs-secrets rotate --name N --generate -- ./set.sh',
      );
    const location = args['payload-location'];
    if (args.generate === (location !== undefined))
      throw new AppError('usage', 'pass one of --generate or --payload-location FILE');
    if (!args.generate && (args.length !== undefined || args.charset !== undefined))
      throw new AppError('usage', '--length and --charset go with --generate');
    if (args.generate) validateGenerateOptions(args);
    const moveLabels = [...new Set([args['move-label'] ?? []].flat().map(validateLabel))];
    const payload = args.generate ? generateValue(args) : await readPayload({ 'payload-location': location });
    const outcome = await withService(args, ctx, 'create', (service) =>
      rotate(service, {
        name,
        payload,
        hook: { command: hook[0], args: hook.slice(1) },
        moveLabels,
        logger: ctx.logger,
      }),
    );
    if (!outcome.stored) return outcome.exitCode;
    ctx.print(outcome.result);
  },
});
