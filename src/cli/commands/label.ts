/** `ecs-secrets label set|rm|list`: movable pins on a secret's versions (core/labels.ts). */
import { AppError } from '../../core/errors';
import { parseSerial, validateAppName } from '../../core/names';
import { validateLabel } from '../../core/labels';
import { type SecretArgs, defineCommand, nameOption, secretName, withSecretArg } from '../command';
import { withService } from '../backend-scope';
import { OUTPUT_OPTION, type OutputArgs, formatTable, printResult } from '../output';

const labelOption = {
  type: 'string',
  describe: 'Label: a-z 0-9 -, starting with a letter (e.g. prod)',
  demandOption: true,
} as const;

const labelSetCommand = defineCommand<SecretArgs & { label: string; serial: string }>({
  command: withSecretArg('set'),
  examples: [['$0 label set db.password --label prod --serial 7', 'prod → version 7']],
  describe: 'Point a label at an active version; prints {"name","label","serial","from"}',
  builder: (c) =>
    c
      .option('name', nameOption)
      .option('label', labelOption)
      .option('serial', { type: 'string', describe: 'The version to pin', demandOption: true }),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const name = secretName(args);
    const label = validateLabel(args.label);
    const serial = parseSerial(args.serial);
    ctx.print(await withService(args, ctx, 'existing', (s) => s.setLabel(name, label, serial)));
  },
});

const labelRmCommand = defineCommand<SecretArgs & { label: string }>({
  command: withSecretArg('rm'),
  examples: [['$0 label rm db.password --label prod', 'prod no longer pins a version']],
  describe: 'Remove a label; prints {"name","label","from"}',
  builder: (c) => c.option('name', nameOption).option('label', labelOption),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const name = secretName(args);
    const label = validateLabel(args.label);
    ctx.print(await withService(args, ctx, 'existing', (s) => s.removeLabel(name, label)));
  },
});

const labelListCommand = defineCommand<SecretArgs & OutputArgs>({
  command: withSecretArg('list'),
  describe: 'The labels of a secret and their last 100 moves; prints {"name","labels","events"}',
  builder: (c) =>
    c
      .option('name', nameOption)
      .option('output', OUTPUT_OPTION)
      .example('$0 label list db.password --output table', 'the labels, then their moves'),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const name = secretName(args);
    printResult(
      args,
      ctx,
      await withService(args, ctx, 'existing', (s) => s.labelList(name)),
      (r) =>
        `${formatTable(Object.entries(r.labels), [
          ['LABEL', ([l]) => l],
          ['SERIAL', ([, s]) => s],
        ])}\n${formatTable(r.events, [
          ['AT', (e) => e.at],
          ['LABEL', (e) => e.label],
          ['FROM', (e) => e.from],
          ['TO', (e) => e.to],
          ['BY', (e) => e.by],
        ])}`,
    );
  },
});

export const labelCommand = defineCommand<object>({
  command: 'label',
  describe: 'Labels that pin a version (prod → serial 7): set, rm, list',
  builder: (c) => c.demandCommand(1, 'name a label subcommand: set, rm or list'),
  run: async () => {
    throw new AppError('usage', 'name a label subcommand: set, rm or list');
  },
  subcommands: [labelSetCommand, labelRmCommand, labelListCommand],
});
