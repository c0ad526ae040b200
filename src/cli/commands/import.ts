/**
 * `ecs-secrets import SOURCE`: bring secrets in from SSM Parameter Store, chamber, Secrets
 * Manager, credstash or a dotenv/JSON/YAML file, with their history, safely re-runnable
 * (src/import/). stdout: the JSON summary (or the plan with --dry-run); progress on stderr.
 */
import { AppError } from '../../core/errors';
import { validateAppName } from '../../core/names';
import { CredstashSource, DEFAULT_CREDSTASH_TABLE } from '../../import/credstash';
import { planNames } from '../../import/plan';
import { createProgress } from '../../import/progress';
import { dryRun, runImport } from '../../import/run';
import type { ImportSource } from '../../import/import-source';
import { withService } from '../backend-scope';
import { OUTPUT_OPTION, formatTable, printResult } from '../output';
import { type GlobalArgs, defineCommand } from '../command';

const SOURCES = ['ssm', 'chamber', 'secretsmanager', 'credstash', 'dotenv', 'json', 'yaml'] as const;

interface ImportArgs {
  source: string;
  file?: string;
  path?: string;
  recursive: boolean;
  service?: string;
  'name-prefix'?: string;
  name?: string[];
  table: string;
  context?: string[];
  history: boolean;
  prefix: string;
  'dry-run': boolean;
  output: string;
}

export const importCommand = defineCommand<ImportArgs>({
  command: 'import <source> [file]',
  describe: `Import secrets with their history from ${SOURCES.join(', ')}; re-runnable, each source version written once`,
  builder: (c) =>
    c
      .positional('source', { type: 'string', describe: `Where from: ${SOURCES.join(', ')}` })
      // Untyped: a typed string positional turns a lone `-` into '' (see openSource).
      .positional('file', { describe: 'dotenv/json/yaml: the file (- reads standard input)' })
      .option('path', { type: 'string', describe: 'ssm: the parameter path, e.g. /prod/' })
      .option('recursive', { type: 'boolean', default: false, describe: 'ssm: also parameters below sub-paths' })
      .option('service', { type: 'string', describe: 'chamber: the service (parameters /SERVICE/KEY)' })
      .option('name-prefix', { type: 'string', describe: 'secretsmanager: every secret whose name starts so' })
      .option('name', { type: 'string', array: true, describe: 'secretsmanager: one secret (repeatable)' })
      .option('table', { type: 'string', default: DEFAULT_CREDSTASH_TABLE, describe: 'credstash: the table' })
      .option('context', { type: 'string', array: true, describe: 'credstash: encryption context K=V (repeatable)' })
      .option('history', {
        type: 'boolean',
        default: false,
        describe: 'Every version, oldest first (else the current)',
      })
      .option('prefix', { type: 'string', default: '', describe: 'Put in front of every imported name' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Print the plan as JSON; write nothing' })
      .option('output', OUTPUT_OPTION)
      .example('$0 import ssm --path /prod/ --recursive --history', '/prod/app/db/password → app.db.password')
      .example('$0 import credstash --context env=prod --history', 'every version of every credstash secret'),
  run: async (args, ctx) => {
    validateAppName(args['application-name']);
    const source = openSource(args);
    try {
      const secrets = await source.list();
      if (secrets.length === 0)
        throw new AppError(
          'not_found',
          `nothing to import: ${describe(args)} holds no secrets (check the name and region)`,
        );
      const planned = planNames(secrets, args.prefix);
      await withService(args, ctx, 'create', async (service) => {
        if (args['dry-run']) {
          ctx.print(await dryRun(service, source, planned));
          return;
        }
        const progress = createProgress(planned.length);
        const summary = await runImport(service, source, planned, progress).finally(() => progress.stop());
        printResult(args, ctx, summary, (s) =>
          formatTable(
            [
              ...s.imported.map((e) => ({ ...e, status: 'imported', detail: e.serials.join(',') })),
              ...s.skipped.map((e) => ({ ...e, status: 'skipped', detail: 'up to date' })),
              ...s.failed.map((e) => ({ ...e, status: 'failed', detail: `${e.error}: ${e.message}` })),
            ],
            [
              ['STATUS', (e) => e.status],
              ['NAME', (e) => e.name],
              ['SOURCE', (e) => e.source],
              ['SERIALS OR ERROR', (e) => e.detail],
            ],
          ),
        );
        if (summary.failed.length > 0) ctx.setExitCode(1);
      });
    } finally {
      source.close();
    }
  },
});

function openSource(args: ImportArgs & GlobalArgs): ImportSource {
  const history = args.history;
  const region = args.region;
  // yargs reads a lone `-` positional as `true`: it means standard input.
  if ((args.file as unknown) === true) args.file = '-';
  const needFile = (): string => {
    if (args.file === undefined || args.file === '')
      throw new AppError('usage', `import ${args.source} needs a FILE (- reads standard input)`);
    return args.file;
  };
  if (args.file !== undefined && !['dotenv', 'json', 'yaml'].includes(args.source))
    throw new AppError('usage', `import ${args.source} takes no FILE argument`);
  // Each source's module is loaded here, not at the top: the SSM and Secrets Manager clients are
  // import's alone, and every other command (the daemon first) starts without them.
  switch (args.source) {
    case 'ssm': {
      if (!args.path) throw new AppError('usage', 'import ssm needs --path /PATH/');
      const { SsmSource } = require('../../import/ssm') as typeof import('../../import/ssm');
      return new SsmSource({
        path: args.path,
        recursive: args.recursive,
        history,
        label: 'ssm',
        region,
        listHistory: args['dry-run'],
      });
    }
    case 'chamber': {
      if (!args.service) throw new AppError('usage', 'import chamber needs --service SERVICE');
      const { chamberSource } = require('../../import/chamber') as typeof import('../../import/chamber');
      return chamberSource({ service: args.service, history, region, listHistory: args['dry-run'] });
    }
    case 'secretsmanager': {
      const { SecretsManagerSource } =
        require('../../import/secrets-manager') as typeof import('../../import/secrets-manager');
      return new SecretsManagerSource({ namePrefix: args['name-prefix'], names: args.name, history, region });
    }
    case 'credstash':
      return new CredstashSource({ table: args.table, context: parseContext(args.context ?? []), history, region });
    case 'dotenv':
    case 'json':
    case 'yaml': {
      const { FileSource } = require('../../import/files') as typeof import('../../import/files');
      return new FileSource(args.source, needFile());
    }
    default:
      throw new AppError(
        'usage',
        `unknown import source ${JSON.stringify(args.source)}: use one of ${SOURCES.join(', ')}`,
      );
  }
}

function parseContext(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new AppError('usage', `invalid --context ${JSON.stringify(pair)}: use KEY=VALUE`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

function describe(args: ImportArgs): string {
  switch (args.source) {
    case 'ssm':
      return `SSM path ${args.path}`;
    case 'chamber':
      return `chamber service ${args.service}`;
    case 'secretsmanager':
      return args['name-prefix'] !== undefined ? `Secrets Manager prefix ${args['name-prefix']}` : 'Secrets Manager';
    case 'credstash':
      return `credstash table ${args.table}`;
    default:
      return args.file === '-' ? 'standard input' : (args.file ?? '');
  }
}
