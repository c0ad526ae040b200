/** `ecs-secrets label set|rm|list`: movable pins on a secret's versions (core/labels.ts). */
import { AppError } from '../../core/errors';
import { parseSerial, validateAppName, validateSecretName } from '../../core/names';
import { validateLabel } from '../../core/labels';
import { defineCommand, nameOption } from '../command';
import { withService } from '../backend-scope';

const labelOption = {
  type: 'string',
  describe: 'Label: a-z 0-9 -, starting with a letter (e.g. prod)',
  demandOption: true,
} as const;

const labelSetCommand = defineCommand<{ name: string; label: string; serial: string }>({
  command: 'set',
  describe: 'Point a label at an active version; prints {"name","label","serial","from"}',
  builder: (c) =>
    c
      .option('name', nameOption)
      .option('label', labelOption)
      .option('serial', { type: 'string', describe: 'The version to pin', demandOption: true }),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const name = validateSecretName(args.name);
    const label = validateLabel(args.label);
    const serial = parseSerial(args.serial);
    ctx.print(await withService(args, ctx, 'existing', (s) => s.setLabel(name, label, serial)));
  },
});

const labelRmCommand = defineCommand<{ name: string; label: string }>({
  command: 'rm',
  describe: 'Remove a label; prints {"name","label","from"}',
  builder: (c) => c.option('name', nameOption).option('label', labelOption),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const name = validateSecretName(args.name);
    const label = validateLabel(args.label);
    ctx.print(await withService(args, ctx, 'existing', (s) => s.removeLabel(name, label)));
  },
});

const labelListCommand = defineCommand<{ name: string }>({
  command: 'list',
  describe: 'The labels of a secret and their last 100 moves; prints {"name","labels","events"}',
  builder: (c) => c.option('name', nameOption),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const name = validateSecretName(args.name);
    ctx.print(await withService(args, ctx, 'existing', (s) => s.labelList(name)));
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
